import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import fc from 'fast-check'
import { JsonSchemas, SCHEMA_LIMITS } from '../../src/domain/json-schema'
import { type Queue, queueSettings } from '../../src/domain/queues'
import { ErrorSchema } from '../../src/http/schemas/common'
import { call, newTenant, sharedDeps, testApp } from '../helpers/harness'

/*
 * Issue 20 items 1–3: a queue's JSON Schema is tenant code the service runs. It resolves
 * `$id` / `$ref` only inside itself, its patterns run in linear time, it is bounded in size and
 * depth, and it is compiled once per version into a bounded cache.
 */

const BASE = '/api/v1/mq'
const Q = `${BASE}/queues`

type App = Awaited<ReturnType<typeof testApp>>
type Answer = Awaited<ReturnType<typeof call>>

function expectError(res: Answer, status: number, code: string) {
  expect(res.status).toBe(status)
  const body = ErrorSchema.parse(res.body)
  expect(body.code).toBe(code as typeof body.code)
  return body
}

const publish = (app: App, tenant: string, queue: string, payload: unknown) =>
  call(app, 'POST', `${BASE}/publish`, { tenant, body: { queue, payload } })

const PAYMENTS = {
  $id: 'urn:tenantA:payments',
  type: 'object',
  required: ['secretAccountField', 'iban'],
  properties: { iban: { type: 'string', pattern: '^SECRETPATTERN[0-9]{4}$' } },
}

describe('schemas resolve only inside themselves', () => {
  let app: App
  beforeAll(async () => {
    app = await testApp()
  })

  test('regression: a $ref to another tenant’s $id is refused and reveals nothing of it', async () => {
    const a = newTenant()
    const b = newTenant()
    expect(
      (await call(app, 'POST', Q, { tenant: a, body: { name: 'pay', schema: PAYMENTS } })).status
    ).toBe(201)
    const refused = await call(app, 'POST', Q, {
      tenant: b,
      body: { name: 'probe', schema: { $ref: 'urn:tenantA:payments' } },
    })
    expectError(refused, 400, 'MQ_VALIDATION_FAILED')
    const text = JSON.stringify(refused.body)
    expect(text).not.toContain('secretAccountField')
    expect(text).not.toContain('SECRETPATTERN')
    // Nor through a queue of the same tenant: every schema is on its own.
    const own = await call(app, 'POST', Q, {
      tenant: a,
      body: { name: 'pay-ref', schema: { $ref: 'urn:tenantA:payments' } },
    })
    expectError(own, 400, 'MQ_VALIDATION_FAILED')
    // And not by changing an existing queue's schema either.
    expect((await call(app, 'POST', Q, { tenant: b, body: { name: 'later' } })).status).toBe(201)
    const changed = await call(app, 'PUT', `${Q}/later`, {
      tenant: b,
      body: { schema: { properties: { x: { $ref: 'urn:tenantA:payments#/properties/iban' } } } },
    })
    expectError(changed, 400, 'MQ_VALIDATION_FAILED')
    expect(JSON.stringify(changed.body)).not.toContain('SECRETPATTERN')
  })

  test('regression: another tenant may reuse an $id, and each queue keeps its own schema', async () => {
    const a = newTenant()
    const b = newTenant()
    expect(
      (await call(app, 'POST', Q, { tenant: a, body: { name: 'pay', schema: PAYMENTS } })).status
    ).toBe(201)
    const mine = { $id: 'urn:tenantA:payments', type: 'object', required: ['amount'] }
    expect(
      (await call(app, 'POST', Q, { tenant: b, body: { name: 'pay', schema: mine } })).status
    ).toBe(201)
    // The same tenant twice, too.
    expect(
      (await call(app, 'POST', Q, { tenant: b, body: { name: 'pay2', schema: mine } })).status
    ).toBe(201)
    expect((await publish(app, b, 'pay', { amount: 1 })).status).toBe(201)
    const wrong = expectError(await publish(app, b, 'pay2', {}), 400, 'MQ_VALIDATION_FAILED')
    expect(JSON.stringify(wrong)).not.toContain('secretAccountField')
    expect(
      (await publish(app, a, 'pay', { secretAccountField: 1, iban: 'SECRETPATTERN1234' })).status
    ).toBe(201)
  })

  test('regression: a schema with $id takes every publish, not only the first (it was 500)', async () => {
    const tenant = newTenant()
    const schema = {
      $id: 'https://schemas.example/order.json',
      type: 'object',
      required: ['n'],
      properties: { n: { $ref: 'https://schemas.example/order.json#/$defs/count' } },
      $defs: { count: { type: 'integer', minimum: 0 } },
    }
    expect((await call(app, 'POST', Q, { tenant, body: { name: 'orders', schema } })).status).toBe(
      201
    )
    for (let n = 0; n < 3; n++)
      expect((await publish(app, tenant, 'orders', { n })).status).toBe(201)
    expectError(await publish(app, tenant, 'orders', { n: -1 }), 400, 'MQ_VALIDATION_FAILED')
    // A new version with the same $id replaces the old one.
    const next = { ...schema, $defs: { count: { type: 'integer', maximum: -1 } } }
    expect((await call(app, 'PUT', `${Q}/orders`, { tenant, body: { schema: next } })).status).toBe(
      200
    )
    expect((await publish(app, tenant, 'orders', { n: -5 })).status).toBe(201)
    expectError(await publish(app, tenant, 'orders', { n: 1 }), 400, 'MQ_VALIDATION_FAILED')
  })

  test('a remote $ref is never fetched: the schema is refused at create', async () => {
    const tenant = newTenant()
    let asked = 0
    const server = Bun.serve({
      hostname: '127.0.0.1',
      port: 0,
      fetch: () => {
        asked++
        return Response.json({ type: 'string' })
      },
    })
    try {
      const res = await call(app, 'POST', Q, {
        tenant,
        body: { name: 'remote', schema: { $ref: `http://127.0.0.1:${server.port}/s.json` } },
      })
      expectError(res, 400, 'MQ_VALIDATION_FAILED')
      expect(asked).toBe(0)
    } finally {
      server.stop(true)
    }
  })
})

describe('patterns run in linear time', () => {
  let server: ReturnType<typeof Bun.serve>
  let base: string
  beforeAll(async () => {
    const app = await testApp()
    server = Bun.serve({ hostname: '127.0.0.1', port: 0, fetch: app.fetch })
    base = `http://127.0.0.1:${server.port}`
  })
  afterAll(() => server.stop(true))

  /** Over real HTTP, so requests are served side by side by the one event loop. */
  async function send(tenant: string, method: string, path: string, body: unknown) {
    const { token } = await import('../helpers/harness')
    const res = await fetch(`${base}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${await token(tenant)}`,
        'content-type': 'application/json',
      },
      body: JSON.stringify(body),
    })
    return { status: res.status, body: (await res.json()) as Record<string, unknown> }
  }

  test('regression: a catastrophic pattern does not stall another tenant’s publish', async () => {
    const hostile = newTenant()
    const victim = newTenant()
    const schema = { type: 'array', items: { type: 'string', pattern: '^(a+)+$' } }
    expect((await send(hostile, 'POST', Q, { name: 'evil', schema })).status).toBe(201)
    expect((await send(victim, 'POST', Q, { name: 'plain' })).status).toBe(201)
    // Warm both paths so the timing below is of validation, not of first use.
    await send(victim, 'POST', `${BASE}/publish`, { queue: 'plain', payload: 0 })
    await send(hostile, 'POST', `${BASE}/publish`, { queue: 'evil', payload: ['aa'] })

    const evil = Array.from({ length: 6 }, () => `${'a'.repeat(36)}!`)
    const hostilePublishes = Array.from({ length: 4 }, () =>
      send(hostile, 'POST', `${BASE}/publish`, { queue: 'evil', payload: evil })
    )
    const started = performance.now()
    const victimPublish = await send(victim, 'POST', `${BASE}/publish`, {
      queue: 'plain',
      payload: { n: 1 },
    })
    const victimMs = performance.now() - started
    const answers = await Promise.all(hostilePublishes)
    expect(victimPublish.status).toBe(201)
    expect(victimMs).toBeLessThan(100)
    for (const answer of answers) {
      expect(answer.status).toBe(400)
      expect(answer.body.code).toBe('MQ_VALIDATION_FAILED')
    }
  })

  test('regression: uniqueItems over a large array of arrays is linear, not quadratic', async () => {
    const tenant = newTenant()
    const schema = { type: 'array', uniqueItems: true }
    expect((await send(tenant, 'POST', Q, { name: 'unique', schema })).status).toBe(201)
    // 100,000 one-element arrays (~0.8 MB): every pair compared was minutes of event loop.
    const items = Array.from({ length: 100_000 }, (_, i) => [i])
    const started = performance.now()
    const stored = await send(tenant, 'POST', `${BASE}/publish`, {
      queue: 'unique',
      payload: items,
    })
    expect(stored.status).toBe(201)
    expect(performance.now() - started).toBeLessThan(2000)
    items.push([0])
    const duplicated = await send(tenant, 'POST', `${BASE}/publish`, {
      queue: 'unique',
      payload: items,
    })
    expect(duplicated.status).toBe(400)
    expect(JSON.stringify(duplicated.body)).toContain('duplicate items')
    // Key order does not make two objects different; 1 and "1" are different.
    for (const [payload, status] of [
      [
        [
          { a: 1, b: 2 },
          { b: 2, a: 1 },
        ],
        400,
      ],
      [[1, '1', null, 'null'], 201],
    ] as const) {
      const res = await send(tenant, 'POST', `${BASE}/publish`, { queue: 'unique', payload })
      expect({ payload, status: res.status }).toEqual({ payload, status })
    }
  })

  test('a pattern the linear-time engine cannot compile is 400 at create and at update', async () => {
    const tenant = newTenant()
    for (const pattern of ['(a)\\1', 'a(?=b)', '(?<!x)y', '[']) {
      const created = await send(tenant, 'POST', Q, {
        name: 'lookaround',
        schema: { type: 'string', pattern },
      })
      expect({ pattern, status: created.status, code: created.body.code }).toEqual({
        pattern,
        status: 400,
        code: 'MQ_VALIDATION_FAILED',
      })
    }
    const props = { type: 'object', patternProperties: { '^(?=x)': { type: 'string' } } }
    expect((await send(tenant, 'POST', Q, { name: 'props', schema: props })).status).toBe(400)
    expect((await send(tenant, 'POST', Q, { name: 'ok' })).status).toBe(201)
    const updated = await send(tenant, 'PUT', `${Q}/ok`, {
      schema: { type: 'string', pattern: '(a)\\1' },
    })
    expect(updated.status).toBe(400)
  })

  test('ECMA-262 spellings RE2 lacks still work, and patternProperties matches', async () => {
    const tenant = newTenant()
    const schema = {
      type: 'object',
      properties: { name: { type: 'string', pattern: '^[\\u0041-\\u005A][a-z]+$' } },
      patternProperties: { '^x-': { type: 'integer' } },
    }
    expect((await send(tenant, 'POST', Q, { name: 'spelled', schema })).status).toBe(201)
    const ok = await send(tenant, 'POST', `${BASE}/publish`, {
      queue: 'spelled',
      payload: { name: 'Ada', 'x-n': 1 },
    })
    expect(ok.status).toBe(201)
    for (const payload of [{ name: 'ada' }, { 'x-n': 'one' }]) {
      const res = await send(tenant, 'POST', `${BASE}/publish`, { queue: 'spelled', payload })
      expect(res.status).toBe(400)
    }
  })
})

describe('schema size and depth are bounded at create', () => {
  test('a schema over the byte limit or nested too deep is 400; at the limits it is taken', async () => {
    const app = await testApp()
    const tenant = newTenant()
    const padded = (bytes: number) => {
      const base = { type: 'object', description: '' }
      return { ...base, description: 'x'.repeat(bytes - JSON.stringify(base).length) }
    }
    expect(JSON.stringify(padded(SCHEMA_LIMITS.maxBytes)).length).toBe(SCHEMA_LIMITS.maxBytes)
    const big = await call(app, 'POST', Q, {
      tenant,
      body: { name: 'big', schema: padded(SCHEMA_LIMITS.maxBytes + 1) },
    })
    expect(expectError(big, 400, 'MQ_VALIDATION_FAILED').details).toMatchObject({
      issues: [{ path: 'schema' }],
    })
    expect(
      (
        await call(app, 'POST', Q, {
          tenant,
          body: { name: 'fits', schema: padded(SCHEMA_LIMITS.maxBytes) },
        })
      ).status
    ).toBe(201)
    // Each level is one more object, in `items`: nested(n) is n + 1 levels of JSON.
    const nested = (levels: number): Record<string, unknown> =>
      levels === 0 ? { type: 'string' } : { type: 'array', items: nested(levels - 1) }
    const deep = await call(app, 'POST', Q, {
      tenant,
      body: { name: 'deep', schema: nested(SCHEMA_LIMITS.maxDepth) },
    })
    expectError(deep, 400, 'MQ_VALIDATION_FAILED')
    const shallow = await call(app, 'POST', Q, {
      tenant,
      body: { name: 'shallow', schema: nested(SCHEMA_LIMITS.maxDepth - 1) },
    })
    expect(shallow.status).toBe(201)
    expectError(
      await call(app, 'PUT', `${Q}/shallow`, {
        tenant,
        body: { schema: nested(SCHEMA_LIMITS.maxDepth) },
      }),
      400,
      'MQ_VALIDATION_FAILED'
    )
  })
})

describe('compiled validators: once per version, in a bounded cache', () => {
  const queueAt = (id: string, version: number, schema: Record<string, unknown>): Queue => ({
    ...queueSettings({ name: id, schema }, { retentionMs: 60_000, maxLength: 10 }),
    id,
    tenantId: 't',
    type: 'redis_stream',
    createdAt: new Date(0),
    updatedAt: new Date(version),
  })

  test('10,000 schema versions leave the cache at its capacity and the heap near where it was', () => {
    const CAPACITY = 100
    const schemas = new JsonSchemas(CAPACITY)
    const schemaOf = (i: number) => ({
      $id: 'urn:same:id',
      type: 'object',
      properties: { n: { type: 'integer', maximum: i } },
    })
    const round = (from: number, to: number) => {
      for (let i = from; i < to; i++) {
        // A queue updated 20 times, 500 queues: as updates arrive from other processes.
        const queue = queueAt(`q${i % 500}`, i, schemaOf(i))
        expect(schemas.check(queue, { n: i })).toEqual([])
      }
    }
    round(0, 1000)
    Bun.gc(true)
    const heapAfterFirst = process.memoryUsage().heapUsed
    round(1000, 10_000)
    Bun.gc(true)
    expect(schemas.size).toBe(CAPACITY)
    // Ajv's own cache kept every compiled schema: 20,000 compiles took 70 MB.
    expect(process.memoryUsage().heapUsed - heapAfterFirst).toBeLessThan(16 * 1024 * 1024)
  }, 120_000)

  test('updates and deletes through the API drop what they replace', async () => {
    const deps = await sharedDeps()
    const app = await testApp()
    const tenant = newTenant()
    const schemas = deps.queueDeps.schemas as JsonSchemas
    const before = schemas.size
    const schema = (max: number) => ({ type: 'object', properties: { n: { maximum: max } } })
    expect(
      (await call(app, 'POST', Q, { tenant, body: { name: 'v', schema: schema(1) } })).status
    ).toBe(201)
    expect(schemas.size).toBe(before + 1)
    for (let max = 2; max <= 40; max++) {
      expect(
        (await call(app, 'PUT', `${Q}/v`, { tenant, body: { schema: schema(max) } })).status
      ).toBe(200)
      expect((await publish(app, tenant, 'v', { n: max })).status).toBe(201)
      expectError(await publish(app, tenant, 'v', { n: max + 1 }), 400, 'MQ_VALIDATION_FAILED')
    }
    expect(schemas.size).toBe(before + 1)
    expect((await call(app, 'DELETE', `${Q}/v`, { tenant })).status).toBe(204)
    expect(schemas.size).toBe(before)
  })

  test('model: whatever the order of changes, deletes, evictions and other processes’ updates, a publish meets its queue’s current schema', () => {
    const CAPACITY = 2
    type Model = Map<string, { version: number; max: number }>
    type Real = { schemas: JsonSchemas; queues: Map<string, Queue>; clock: number }
    const schemaOf = (max: number) => ({ type: 'integer', maximum: max })
    class Change implements fc.Command<Model, Real> {
      constructor(
        readonly id: string,
        readonly max: number,
        /** Changed by this process (compiled and kept) or by another (seen at publish). */
        readonly here: boolean
      ) {}
      check = () => true
      run(model: Model, real: Real) {
        real.clock++
        const queue = queueAt(this.id, real.clock, schemaOf(this.max))
        real.queues.set(this.id, queue)
        if (this.here) real.schemas.remember(queue, real.schemas.compile(schemaOf(this.max)))
        model.set(this.id, { version: real.clock, max: this.max })
        expect(real.schemas.size).toBeLessThanOrEqual(CAPACITY)
      }
      toString = () => `change(${this.id}, ${this.max}, ${this.here ? 'here' : 'elsewhere'})`
    }
    class Delete implements fc.Command<Model, Real> {
      constructor(readonly id: string) {}
      check = (model: Readonly<Model>) => model.has(this.id)
      run(model: Model, real: Real) {
        real.schemas.forget(this.id)
        real.queues.delete(this.id)
        model.delete(this.id)
      }
      toString = () => `delete(${this.id})`
    }
    class Publish implements fc.Command<Model, Real> {
      constructor(
        readonly id: string,
        readonly n: number
      ) {}
      check = (model: Readonly<Model>) => model.has(this.id)
      run(model: Model, real: Real) {
        const issues = real.schemas.check(real.queues.get(this.id)!, this.n)
        expect(issues.length === 0).toBe(this.n <= model.get(this.id)!.max)
        expect(real.schemas.size).toBeLessThanOrEqual(CAPACITY)
      }
      toString = () => `publish(${this.id}, ${this.n})`
    }
    const ids = fc.constantFrom('a', 'b', 'c', 'd')
    const commands = [
      fc
        .tuple(ids, fc.integer({ min: 0, max: 9 }), fc.boolean())
        .map(([id, max, here]) => new Change(id, max, here)),
      ids.map((id) => new Delete(id)),
      fc.tuple(ids, fc.integer({ min: 0, max: 9 })).map(([id, n]) => new Publish(id, n)),
    ]
    fc.assert(
      fc.property(fc.commands(commands, { maxCommands: 40, size: 'max' }), (cmds) => {
        fc.modelRun(
          () => ({
            model: new Map(),
            real: { schemas: new JsonSchemas(CAPACITY), queues: new Map(), clock: 0 },
          }),
          cmds
        )
      }),
      { numRuns: 100 }
    )
  }, 60_000)

  test('a stored schema that no longer compiles answers publishes 400, never 500', () => {
    const schemas = new JsonSchemas()
    const queue = queueAt('old', 1, { type: 'string', pattern: '(?=x)' })
    const issues = schemas.check(queue, 'x')
    expect(issues).toHaveLength(1)
    expect(issues[0]!.message).toContain('not usable')
    expect(schemas.check(queue, 'y')).toEqual(issues)
  })
})
