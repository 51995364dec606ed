import { afterAll, afterEach, beforeAll, describe, expect, test } from 'bun:test'
import { connect } from 'node:net'
import { createApp } from '../../src/app'
import { buildDeps, type Deps } from '../../src/deps'
import { ErrorSchema } from '../../src/http/schemas/common'
import { BUN_HEADER_CAP, bunServeLimits, MAX_HEADER_BYTES } from '../../src/http/server'
import { createLogger } from '../../src/observability/logger'
import { BASE, call, expectError } from '../helpers/api'
import {
  newTenant,
  SERVICE_TOKEN,
  sharedDeps,
  testApp,
  testConfig,
  testResolver,
  token,
} from '../helpers/harness'
import { mountedRoutes } from '../helpers/routes'

/*
 * S7 (RELIABILITY.md): request bodies over MAX_REQUEST_SIZE, messages over MAX_MESSAGE_SIZE,
 * batches over MAX_BATCH_SIZE and oversized headers. The basic body-limit cases (declared and
 * chunked, a route that never reads its body, CL+TE smuggling) are in
 * tests/integration/http/errors.test.ts; these go over every route and every publishing path.
 */

const Q = `${BASE}/queues`

type App = Awaited<ReturnType<typeof testApp>>

/** A payload whose JSON text is exactly `bytes` long (a string: two bytes of quotes). */
const payloadOf = (bytes: number) => 'x'.repeat(bytes - 2)

describe('message size: MAX_MESSAGE_SIZE on every publishing path', () => {
  const LIMIT = 1000
  let deps: Deps
  let app: App
  const tenant = newTenant()
  const headers = { 'x-service-token': SERVICE_TOKEN, 'x-tenant-id': tenant }

  beforeAll(async () => {
    deps = await buildDeps(
      testConfig({ MAX_MESSAGE_SIZE: String(LIMIT) }),
      createLogger('silent'),
      {
        resolveHost: testResolver,
      }
    )
    app = createApp(deps)
    expect((await call(app, 'POST', Q, { tenant, body: { name: 'sized' } })).status).toBe(201)
  })
  afterAll(() => deps.close())

  /** Every way a payload gets into the service, each with the payload given. */
  const paths = (payload: unknown): Array<[string, string, string, unknown]> => [
    ['publish', 'POST', `${BASE}/publish`, { queue: 'sized', payload }],
    [
      'batch',
      'POST',
      `${BASE}/publish/batch`,
      { queue: 'sized', messages: [{ payload: 1 }, { payload }] },
    ],
    ['delayed', 'POST', `${BASE}/publish/delayed`, { queue: 'sized', payload, delayMs: 60_000 }],
    [
      'scheduled once',
      'POST',
      `${BASE}/publish/scheduled`,
      { queue: 'sized', payload, deliverAt: new Date(Date.now() + 60_000).toISOString() },
    ],
    [
      'scheduled cron',
      'POST',
      `${BASE}/publish/scheduled`,
      { queue: 'sized', payload, cron: '0 0 1 1 *' },
    ],
    ['topic', 'POST', `${BASE}/topics/sized/publish`, { payload }],
  ]

  test('a payload one byte over is 413 MQ_MESSAGE_TOO_LARGE everywhere; at the limit it is taken', async () => {
    for (const [what, method, path, body] of paths(payloadOf(LIMIT + 1))) {
      const err = expectError(
        await call(app, method, path, { tenant, body }),
        413,
        'MQ_MESSAGE_TOO_LARGE',
        what
      )
      expect({ what, details: err.details }).toMatchObject({
        what,
        details: { size: LIMIT + 1, limit: LIMIT },
      })
    }
    const internal = await call(app, 'POST', '/internal/mq/user-events', {
      headers,
      body: { payload: payloadOf(LIMIT + 1) },
    })
    expectError(internal, 413, 'MQ_MESSAGE_TOO_LARGE', 'internal')

    for (const [what, method, path, body] of paths(payloadOf(LIMIT))) {
      const res = await call(app, method, path, { tenant, body })
      expect({ what, status: res.status }).toEqual({ what, status: 201 })
    }
  })

  test('size is counted in UTF-8 bytes, not characters', async () => {
    // 400 characters of two bytes each and the quotes: 802 bytes fit, 1002 do not.
    const fits = await call(app, 'POST', `${BASE}/publish`, {
      tenant,
      body: { queue: 'sized', payload: 'é'.repeat(400) },
    })
    expect(fits.status).toBe(201)
    const over = await call(app, 'POST', `${BASE}/publish`, {
      tenant,
      body: { queue: 'sized', payload: 'é'.repeat(500) },
    })
    expect(expectError(over, 413, 'MQ_MESSAGE_TOO_LARGE').details).toMatchObject({ size: 1002 })
  })

  test('a batch with one message over the limit stores none of it and names its index', async () => {
    const before = (await call(app, 'GET', `${Q}/sized`, { tenant })).body.stats.length
    const res = await call(app, 'POST', `${BASE}/publish/batch`, {
      tenant,
      body: {
        queue: 'sized',
        messages: [{ payload: 'a' }, { payload: 'b' }, { payload: payloadOf(LIMIT + 1) }],
      },
    })
    expect(expectError(res, 413, 'MQ_MESSAGE_TOO_LARGE').details).toMatchObject({ index: 2 })
    expect((await call(app, 'GET', `${Q}/sized`, { tenant })).body.stats.length).toBe(before)
  })

  test('regression: a recurring schedule’s payload is held to the limit when made and when changed', async () => {
    const created = await call(app, 'POST', `${BASE}/publish/scheduled`, {
      tenant,
      body: { queue: 'sized', payload: 'small', cron: '0 0 1 1 *' },
    })
    expect(created.status).toBe(201)
    const path = `${BASE}/schedules/${created.body.id}`
    const grown = await call(app, 'PUT', path, { tenant, body: { payload: payloadOf(LIMIT + 1) } })
    expectError(grown, 413, 'MQ_MESSAGE_TOO_LARGE')
    expect((await call(app, 'GET', path, { tenant })).body.payload).toBe('small')
  })
})

describe('recurring schedules', () => {
  test('regression: a schedule’s payload must match the queue’s schema, as each occurrence’s will', async () => {
    const app = await testApp()
    const tenant = newTenant()
    const schema = {
      type: 'object',
      required: ['total'],
      properties: { total: { type: 'number' } },
    }
    await call(app, 'POST', Q, { tenant, body: { name: 'typed', schema } })
    const wrong = await call(app, 'POST', `${BASE}/publish/scheduled`, {
      tenant,
      body: { queue: 'typed', payload: { total: 'many' }, cron: '0 0 1 1 *' },
    })
    expect(expectError(wrong, 400, 'MQ_VALIDATION_FAILED').details).toMatchObject({
      issues: [{ path: '/total' }],
    })
    const right = await call(app, 'POST', `${BASE}/publish/scheduled`, {
      tenant,
      body: { queue: 'typed', payload: { total: 1 }, cron: '0 0 1 1 *' },
    })
    expect(right.status).toBe(201)
    const path = `${BASE}/schedules/${right.body.id}`
    expectError(
      await call(app, 'PUT', path, { tenant, body: { payload: { total: null } } }),
      400,
      'MQ_VALIDATION_FAILED'
    )
    expect((await call(app, 'GET', path, { tenant })).body.payload).toEqual({ total: 1 })
  })
})

describe('batch size: MAX_BATCH_SIZE', () => {
  test('one message over MAX_BATCH_SIZE is 400 and stores nothing; exactly at it is 201', async () => {
    const app = await testApp({ MAX_BATCH_SIZE: 5 })
    const tenant = newTenant()
    await call(app, 'POST', Q, { tenant, body: { name: 'batched' } })
    const batch = (n: number) => ({
      queue: 'batched',
      messages: Array.from({ length: n }, (_, i) => ({ payload: i })),
    })
    const over = await call(app, 'POST', `${BASE}/publish/batch`, { tenant, body: batch(6) })
    const err = expectError(over, 400, 'MQ_VALIDATION_FAILED')
    expect(err.message).toContain('messages')
    expect((await call(app, 'GET', `${Q}/batched`, { tenant })).body.stats.length).toBe(0)
    const at = await call(app, 'POST', `${BASE}/publish/batch`, { tenant, body: batch(5) })
    expect(at.status).toBe(201)
    expect(at.body.published).toBe(5)
  })

  test('the default of 1,000: 1,001 messages are 400', async () => {
    const app = await testApp()
    const tenant = newTenant()
    await call(app, 'POST', Q, { tenant, body: { name: 'batched' } })
    const messages = Array.from({ length: 1001 }, (_, i) => ({ payload: i }))
    const over = await call(app, 'POST', `${BASE}/publish/batch`, {
      tenant,
      body: { queue: 'batched', messages },
    })
    expectError(over, 400, 'MQ_VALIDATION_FAILED')
    expect((await call(app, 'GET', `${Q}/batched`, { tenant })).body.stats.length).toBe(0)
  })
})

describe('request size: MAX_REQUEST_SIZE on every route that takes a body', () => {
  const LIMIT = 2048

  /** A stream of `size` bytes in chunks, so the request has no Content-Length. */
  function chunked(size: number): ReadableStream<Uint8Array> {
    let sent = 0
    return new ReadableStream({
      pull(controller) {
        if (sent >= size) return controller.close()
        controller.enqueue(new TextEncoder().encode('x'.repeat(Math.min(512, size - sent))))
        sent += 512
      },
    })
  }

  test('a body over the limit, declared or chunked, is 413 on every POST, PUT and DELETE route, and nothing changes', async () => {
    const app = await testApp({ MAX_REQUEST_SIZE: LIMIT })
    const tenant = newTenant()
    await call(app, 'POST', Q, { tenant, body: { name: 'kept' } })
    const sub = await call(app, 'POST', `${BASE}/subscriptions`, {
      tenant,
      body: {
        queue: 'kept',
        consumerGroup: 'g',
        consumerName: 'c',
        subscriptionType: 'redis_consumer',
      },
    })
    const schedule = await call(app, 'POST', `${BASE}/publish/scheduled`, {
      tenant,
      body: { queue: 'kept', payload: 1, cron: '0 0 1 1 *' },
    })
    const delayed = await call(app, 'POST', `${BASE}/publish/delayed`, {
      tenant,
      body: { queue: 'kept', payload: 1, delayMs: 3_600_000 },
    })
    const snapshot = async () =>
      JSON.stringify([
        (await call(app, 'GET', `${Q}/kept`, { tenant })).body,
        (await call(app, 'GET', `${BASE}/subscriptions/${sub.body.id}`, { tenant })).body,
        (await call(app, 'GET', `${BASE}/schedules/${schedule.body.id}`, { tenant })).body,
        (await call(app, 'GET', `${Q}`, { tenant })).body.items.length,
      ])
    const before = await snapshot()
    const auth = `Bearer ${await token(tenant)}`
    const routes = mountedRoutes(app).filter((r) => /^(POST|PUT|DELETE) /.test(r))
    expect(routes.length).toBeGreaterThan(20)
    for (const route of routes) {
      const [method, pattern] = route.split(' ') as [string, string]
      const path = pattern
        .replace(':name', 'kept')
        .replace(':messageId', `${delayed.body.messageId}?queue=kept`)
        .replace(':id', pattern.includes('/schedules/') ? schedule.body.id : sub.body.id)
      const headers: Record<string, string> = path.startsWith('/internal/')
        ? {
            'x-service-token': SERVICE_TOKEN,
            'x-tenant-id': tenant,
            'content-type': 'application/json',
          }
        : { authorization: auth, 'content-type': 'application/json' }
      const declared = await app.request(path, {
        method,
        headers: { ...headers, 'content-length': String(LIMIT + 1) },
        body: 'x'.repeat(LIMIT + 1),
      })
      const streamed = await app.request(path, {
        method,
        headers,
        body: chunked(4 * LIMIT),
        duplex: 'half',
      } as RequestInit)
      for (const res of [declared, streamed]) {
        expect({ route, status: res.status }).toEqual({ route, status: 413 })
        expect(ErrorSchema.parse(await res.json()).code).toBe('MQ_MESSAGE_TOO_LARGE')
      }
    }
    expect(await snapshot()).toBe(before)
    const status = await call(app, 'GET', `${BASE}/messages/${delayed.body.messageId}?queue=kept`, {
      tenant,
    })
    expect(status.body.status).toBe('scheduled')
  })

  describe('over real HTTP', () => {
    let server: ReturnType<typeof Bun.serve> | undefined
    afterEach(() => {
      server?.stop(true)
      server = undefined
    })

    /** The app behind Bun.serve with the limits src/index.ts gives it. */
    async function serve() {
      const deps = await sharedDeps()
      const app = createApp({ ...deps, config: { ...deps.config, MAX_REQUEST_SIZE: LIMIT } })
      server = Bun.serve({
        hostname: '127.0.0.1',
        port: 0,
        ...bunServeLimits(),
        fetch: app.fetch,
      })
      return server.port!
    }

    /** Sends `request` as raw bytes and returns the raw answer. */
    function raw(port: number, request: string): Promise<string> {
      return new Promise((resolve, reject) => {
        let out = ''
        const socket = connect(port, '127.0.0.1', () => socket.end(request))
        socket.setEncoding('utf8')
        socket.on('data', (d) => {
          out += d
        })
        socket.on('close', () => resolve(out))
        // The server may answer and close before the whole request is written (EPIPE).
        socket.on('error', (err) => (out ? resolve(out) : reject(err)))
      })
    }

    /** The status, X-Request-Id and parsed error body of a raw HTTP/1.1 answer. */
    function envelope(answer: string) {
      const [head = '', body = ''] = answer.split('\r\n\r\n')
      const status = Number(head.match(/^HTTP\/1\.1 (\d{3}) /)?.[1])
      const requestId = head.match(/^x-request-id: (.+)$/im)?.[1]?.trim()
      return { status, requestId, error: ErrorSchema.parse(JSON.parse(body)) }
    }

    test('a body over the limit is 413 in the envelope at any size, declared or chunked', async () => {
      const port = await serve()
      const tenant = newTenant()
      const authorization = `Bearer ${await token(tenant)}`
      const headers = { authorization, 'content-type': 'application/json' }
      const over = await fetch(`http://127.0.0.1:${port}${Q}`, {
        method: 'POST',
        headers,
        body: JSON.stringify({ name: 'big', description: 'x'.repeat(LIMIT) }),
      })
      expect(over.status).toBe(413)
      expect(ErrorSchema.parse(await over.json()).code).toBe('MQ_MESSAGE_TOO_LARGE')

      // Regression: past MAX_REQUEST_SIZE + 64 KiB, Bun used to answer a bare 413 itself.
      const size = LIMIT + 4 * 1024 * 1024
      const declared = envelope(
        await raw(
          port,
          `POST ${Q} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: ${authorization}\r\n` +
            `Content-Type: application/json\r\nContent-Length: ${size}\r\nConnection: close\r\n\r\n` +
            'x'.repeat(size)
        )
      )
      expect(declared.status).toBe(413)
      expect(declared.error.code).toBe('MQ_MESSAGE_TOO_LARGE')
      expect(declared.requestId).toBeTruthy()
      expect(declared.error.requestId).toBe(declared.requestId!)

      const chunk = 'x'.repeat(64 * 1024)
      const chunked = envelope(
        await raw(
          port,
          `POST ${Q} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: ${authorization}\r\n` +
            'Content-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n' +
            `${chunk.length.toString(16)}\r\n${chunk}\r\n`.repeat(64) +
            '0\r\n\r\n'
        )
      )
      expect(chunked.status).toBe(413)
      expect(chunked.error.code).toBe('MQ_MESSAGE_TOO_LARGE')
      expect(chunked.error.requestId).toBe(chunked.requestId!)
      expect((await call(await testApp(), 'GET', `${Q}/big`, { tenant })).status).toBe(404)
    })

    test('headers over 16 KiB are 431 in the envelope with the request id; the server keeps serving', async () => {
      const port = await serve()
      for (const padding of [MAX_HEADER_BYTES, BUN_HEADER_CAP - 1024]) {
        const answer = envelope(
          await raw(
            port,
            `GET ${BASE}/health/ping HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Request-Id: pad-${padding}\r\n` +
              `X-Padding: ${'a'.repeat(padding)}\r\nConnection: close\r\n\r\n`
          )
        )
        expect({ padding, status: answer.status }).toEqual({ padding, status: 431 })
        expect(answer.error.code).toBe('MQ_HEADERS_TOO_LARGE')
        expect(answer.requestId).toBe(`pad-${padding}`)
        expect(answer.error.requestId).toBe(`pad-${padding}`)
      }
      const under = await fetch(`http://127.0.0.1:${port}${BASE}/health/ping`, {
        headers: { 'x-padding': 'a'.repeat(MAX_HEADER_BYTES - 1024) },
      })
      expect(under.status).toBe(200)
      // Past Bun's own cap Bun answers before the app: the bound on what a connection buffers.
      const huge = await raw(
        port,
        `GET ${BASE}/health/ping HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Padding: ${'a'.repeat(BUN_HEADER_CAP)}\r\nConnection: close\r\n\r\n`
      )
      expect(huge).toMatch(/^HTTP\/1\.1 431 /)
      const after = await fetch(`http://127.0.0.1:${port}${BASE}/health/ping`)
      expect(after.status).toBe(200)
    })
  })
})
