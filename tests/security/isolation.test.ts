import { beforeAll, describe, expect, test } from 'bun:test'
import { randomBytes } from 'node:crypto'
import fc from 'fast-check'
import { ErrorSchema } from '../../src/http/schemas/common'
import { Keys, PARTITION_PARTS, type PartitionPart } from '../../src/streams/keys'
import { type Answer, BASE, call } from '../helpers/api'
import { newTenant, SERVICE_TOKEN, sharedDeps, testApp } from '../helpers/harness'
import { mountedRoutes } from '../helpers/routes'

/*
 * S3 (RELIABILITY.md): tenant B calls every route the app mounts with tenant A's names and
 * ids. Object routes answer 404 exactly as they do for objects nobody has, collections never
 * list A's objects, and no answer carries anything of A's that B did not send itself.
 */

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$/

type App = Awaited<ReturnType<typeof testApp>>

/** The names and ids a probe can point at; A's real ones, or ghosts nobody owns. */
interface Ids {
  queue: string
  dlq: string
  pullSub: string
  hookSub: string
  scheduleId: string
  messageId: string
  delayedId: string
}

/** Everything tenant A owns, with the strings that must never reach B. */
interface World extends Ids {
  tenant: string
  queueId: string
  receipt: string
  signingSecret: string
  marker: string
  webhookPath: string
}

interface Probe {
  method: string
  path: string
  body?: unknown
}

/**
 * How each mounted route is checked:
 * - `object`: names one of A's objects (in the path, the query or the body) → 404, the same
 *   answer a ghost id gets;
 * - `collection`: B's own lists and views → 2xx (or 404 for a filter naming A's queue) without
 *   a trace of A;
 * - `create`: makes B's own object under A's name (checked in "same names" below);
 * - `public`: answers without credentials and shows no tenant's objects;
 * - `operator`: all-tenant views for operators (queue names allowed, payloads and ids not);
 * - `service`: the internal API, where B's JWT is 401.
 */
type Entry =
  | { kind: 'object' | 'collection'; probes: (ids: Ids, w: World) => Probe[] }
  | { kind: 'create' | 'public' | 'redirect' | 'operator' | 'service' }

const Q = `${BASE}/queues`
const S = `${BASE}/subscriptions`
const SCH = `${BASE}/schedules`
const subs = (ids: Ids) => [ids.pullSub, ids.hookSub]
const message = (ids: Ids) => ({ queue: ids.queue, payload: { probe: true } })

/** Every route × method the app mounts; a route missing here fails the coverage test. */
const MATRIX: Record<string, Entry> = {
  'GET /health': { kind: 'public' },
  'GET /api/v1/mq/health': { kind: 'public' },
  'GET /api/v1/mq/health/ping': { kind: 'public' },
  'GET /openapi.json': { kind: 'public' },
  'GET /docs': { kind: 'public' },
  'GET /docs/scalar.js': { kind: 'public' },
  'GET /docs/': { kind: 'redirect' },
  'GET /': { kind: 'redirect' },
  'GET /console': { kind: 'public' },
  'GET /console/': { kind: 'public' },
  'GET /console/app.js': { kind: 'public' },
  'GET /console/app.css': { kind: 'public' },
  'GET /metrics': { kind: 'operator' },
  'GET /api/v1/mq/status': {
    kind: 'collection',
    probes: () => [{ method: 'GET', path: `${BASE}/status` }],
  },

  'POST /api/v1/mq/queues': { kind: 'create' },
  'GET /api/v1/mq/queues': {
    kind: 'collection',
    probes: (ids) => [
      { method: 'GET', path: Q },
      { method: 'GET', path: `${Q}?prefix=${ids.queue.slice(0, 4)}` },
    ],
  },
  'GET /api/v1/mq/queues/:name': {
    kind: 'object',
    probes: (ids) => [ids.queue, ids.dlq].map((n) => ({ method: 'GET', path: `${Q}/${n}` })),
  },
  'PUT /api/v1/mq/queues/:name': {
    kind: 'object',
    probes: (ids) => [
      {
        method: 'PUT',
        path: `${Q}/${ids.queue}`,
        body: { description: 'taken over', status: 'paused' },
      },
    ],
  },
  'DELETE /api/v1/mq/queues/:name': {
    kind: 'object',
    probes: (ids) => [ids.queue, ids.dlq].map((n) => ({ method: 'DELETE', path: `${Q}/${n}` })),
  },
  'POST /api/v1/mq/queues/:name/purge': {
    kind: 'object',
    probes: (ids) => [ids.queue, ids.dlq].map((n) => ({ method: 'POST', path: `${Q}/${n}/purge` })),
  },
  'GET /api/v1/mq/queues/:name/messages': {
    kind: 'object',
    probes: (ids) =>
      [ids.queue, ids.dlq].map((n) => ({ method: 'GET', path: `${Q}/${n}/messages?limit=100` })),
  },
  'POST /api/v1/mq/queues/:name/redrive': {
    kind: 'object',
    probes: (ids) => [
      { method: 'POST', path: `${Q}/${ids.dlq}/redrive`, body: {} },
      { method: 'POST', path: `${Q}/${ids.dlq}/redrive`, body: { toQueue: ids.queue } },
    ],
  },
  'GET /api/v1/mq/queues/:name/messages/:messageId': {
    kind: 'object',
    probes: (ids) =>
      [ids.messageId, ids.delayedId].map((m) => ({
        method: 'GET',
        path: `${Q}/${ids.queue}/messages/${m}`,
      })),
  },
  'DELETE /api/v1/mq/queues/:name/messages/:messageId': {
    kind: 'object',
    probes: (ids) =>
      [ids.messageId, ids.delayedId].map((m) => ({
        method: 'DELETE',
        path: `${Q}/${ids.queue}/messages/${m}`,
      })),
  },
  'POST /api/v1/mq/queues/:name/messages/:messageId/redrive': {
    kind: 'object',
    probes: (ids) => [
      { method: 'POST', path: `${Q}/${ids.dlq}/messages/${ids.messageId}/redrive` },
    ],
  },

  'POST /api/v1/mq/subscriptions': {
    kind: 'object',
    probes: (ids) => [
      {
        method: 'POST',
        path: S,
        body: {
          queue: ids.queue,
          consumerGroup: 'billing',
          consumerName: 'intruder',
          subscriptionType: 'redis_consumer',
        },
      },
    ],
  },
  'GET /api/v1/mq/subscriptions': {
    kind: 'collection',
    probes: (ids) => [
      { method: 'GET', path: S },
      { method: 'GET', path: `${S}?queue=${ids.queue}` },
    ],
  },
  'GET /api/v1/mq/subscriptions/:id': {
    kind: 'object',
    probes: (ids) => subs(ids).map((id) => ({ method: 'GET', path: `${S}/${id}` })),
  },
  'PUT /api/v1/mq/subscriptions/:id': {
    kind: 'object',
    probes: (ids) => [
      { method: 'PUT', path: `${S}/${ids.pullSub}`, body: { maxRetryAttempts: 9 } },
      {
        method: 'PUT',
        path: `${S}/${ids.hookSub}`,
        body: { handlerConfig: { url: 'https://example.com/stolen' } },
      },
    ],
  },
  'DELETE /api/v1/mq/subscriptions/:id': {
    kind: 'object',
    probes: (ids) => subs(ids).map((id) => ({ method: 'DELETE', path: `${S}/${id}` })),
  },
  'POST /api/v1/mq/subscriptions/:id/pause': {
    kind: 'object',
    probes: (ids) => subs(ids).map((id) => ({ method: 'POST', path: `${S}/${id}/pause` })),
  },
  'POST /api/v1/mq/subscriptions/:id/resume': {
    kind: 'object',
    probes: (ids) => subs(ids).map((id) => ({ method: 'POST', path: `${S}/${id}/resume` })),
  },
  'POST /api/v1/mq/subscriptions/:id/pull': {
    kind: 'object',
    probes: (ids) => subs(ids).map((id) => ({ method: 'POST', path: `${S}/${id}/pull`, body: {} })),
  },
  'POST /api/v1/mq/subscriptions/:id/ack': {
    kind: 'object',
    probes: (ids, w) => [
      { method: 'POST', path: `${S}/${ids.pullSub}/ack`, body: { receipts: [w.receipt] } },
    ],
  },
  'POST /api/v1/mq/subscriptions/:id/nack': {
    kind: 'object',
    probes: (ids, w) => [
      { method: 'POST', path: `${S}/${ids.pullSub}/nack`, body: { receipts: [w.receipt] } },
    ],
  },
  'POST /api/v1/mq/subscriptions/:id/seek': {
    kind: 'object',
    probes: (ids) =>
      subs(ids).map((id) => ({ method: 'POST', path: `${S}/${id}/seek`, body: { to: 'latest' } })),
  },

  'GET /api/v1/mq/messages/:messageId': {
    kind: 'object',
    probes: (ids) =>
      [ids.messageId, ids.delayedId].map((m) => ({
        method: 'GET',
        path: `${BASE}/messages/${m}?queue=${ids.queue}`,
      })),
  },
  'DELETE /api/v1/mq/messages/:messageId': {
    kind: 'object',
    probes: (ids) => [
      { method: 'DELETE', path: `${BASE}/messages/${ids.delayedId}?queue=${ids.queue}` },
    ],
  },

  'GET /api/v1/mq/schedules': {
    kind: 'collection',
    probes: (ids) => [
      { method: 'GET', path: SCH },
      { method: 'GET', path: `${SCH}?queue=${ids.queue}` },
    ],
  },
  'GET /api/v1/mq/schedules/:id': {
    kind: 'object',
    probes: (ids) => [{ method: 'GET', path: `${SCH}/${ids.scheduleId}` }],
  },
  'PUT /api/v1/mq/schedules/:id': {
    kind: 'object',
    probes: (ids) => [{ method: 'PUT', path: `${SCH}/${ids.scheduleId}`, body: { maxRuns: 1 } }],
  },
  'DELETE /api/v1/mq/schedules/:id': {
    kind: 'object',
    probes: (ids) => [{ method: 'DELETE', path: `${SCH}/${ids.scheduleId}` }],
  },
  'POST /api/v1/mq/schedules/:id/pause': {
    kind: 'object',
    probes: (ids) => [{ method: 'POST', path: `${SCH}/${ids.scheduleId}/pause` }],
  },
  'POST /api/v1/mq/schedules/:id/resume': {
    kind: 'object',
    probes: (ids) => [{ method: 'POST', path: `${SCH}/${ids.scheduleId}/resume` }],
  },

  'POST /api/v1/mq/publish': {
    kind: 'object',
    probes: (ids) => [
      { method: 'POST', path: `${BASE}/publish`, body: message(ids) },
      // A's message id too: a dedup marker shared across tenants would answer "duplicate".
      {
        method: 'POST',
        path: `${BASE}/publish`,
        body: { ...message(ids), messageId: ids.messageId },
      },
    ],
  },
  'POST /api/v1/mq/publish/batch': {
    kind: 'object',
    probes: (ids) => [
      {
        method: 'POST',
        path: `${BASE}/publish/batch`,
        body: { queue: ids.queue, messages: [{ payload: 1 }] },
      },
    ],
  },
  'POST /api/v1/mq/publish/delayed': {
    kind: 'object',
    probes: (ids) => [
      {
        method: 'POST',
        path: `${BASE}/publish/delayed`,
        body: { ...message(ids), delayMs: 60_000 },
      },
    ],
  },
  'POST /api/v1/mq/publish/scheduled': {
    kind: 'object',
    probes: (ids) => [
      {
        method: 'POST',
        path: `${BASE}/publish/scheduled`,
        body: { ...message(ids), deliverAt: new Date(Date.now() + 3_600_000).toISOString() },
      },
      {
        method: 'POST',
        path: `${BASE}/publish/scheduled`,
        body: { ...message(ids), cron: '0 0 1 1 *' },
      },
    ],
  },
  'POST /api/v1/mq/topics/:name/publish': {
    kind: 'object',
    probes: (ids) => [
      { method: 'POST', path: `${BASE}/topics/${ids.queue}/publish`, body: { payload: 1 } },
    ],
  },

  'GET /api/v1/mq/metrics': {
    kind: 'collection',
    probes: () => [{ method: 'GET', path: `${BASE}/metrics` }],
  },
  'GET /api/v1/mq/metrics/topics': {
    kind: 'collection',
    probes: () => [{ method: 'GET', path: `${BASE}/metrics/topics` }],
  },
  'GET /api/v1/mq/metrics/consumers': {
    kind: 'collection',
    probes: () => [{ method: 'GET', path: `${BASE}/metrics/consumers` }],
  },

  'POST /internal/mq/user-events': { kind: 'service' },
  'POST /internal/mq/user-notifications': { kind: 'service' },
  'POST /internal/mq/audit-logs': { kind: 'service' },
  'GET /internal/mq/audit-queue-status': { kind: 'service' },
  'POST /internal/mq/notifications': { kind: 'service' },
  'GET /internal/mq/notification-queue': { kind: 'service' },
  'GET /internal/mq/metrics': { kind: 'service' },
  'GET /internal/mq/health-detailed': { kind: 'service' },
}

/** The matrix's entries for the routes `app` mounts (the matrix may name routes still to come). */
function mountedEntries(app: App): Array<[string, Entry]> {
  const mounted = new Set(mountedRoutes(app))
  return Object.entries(MATRIX).filter(([route]) => mounted.has(route))
}

/** The concrete path a route pattern takes for a request with no object (for public routes). */
const plainPath = (route: string) => route.slice(route.indexOf(' ') + 1)

const random = () => randomBytes(4).toString('hex')

/** Ids no tenant has: what a 404 for one of A's must be indistinguishable from. */
function ghostIds(): Ids {
  const queue = `iso-ghost-${random()}`
  return {
    queue,
    dlq: `${queue}.dlq`,
    pullSub: crypto.randomUUID(),
    hookSub: crypto.randomUUID(),
    scheduleId: crypto.randomUUID(),
    messageId: `m-ghost-${random()}`,
    delayedId: `d-ghost-${random()}`,
  }
}

async function send(app: App, tenant: string, probe: Probe): Promise<Answer> {
  return call(app, probe.method, probe.path, { tenant, body: probe.body })
}

/** The strings of A's that an answer to `probe` may not contain (those B sent are allowed). */
function secretsNotSent(w: World, probe: Probe): string[] {
  const sent = probe.path + JSON.stringify(probe.body ?? null)
  const secrets = [
    w.tenant,
    w.queueId,
    w.queue,
    w.pullSub,
    w.hookSub,
    w.scheduleId,
    w.messageId,
    w.delayedId,
    w.receipt,
    w.signingSecret,
    w.marker,
    w.webhookPath,
  ]
  return secrets.filter((s) => !sent.includes(s))
}

function expectNoLeak(res: Answer, secrets: string[], what: string) {
  const text = `${typeof res.body === 'string' ? res.body : JSON.stringify(res.body)} ${res.headers.get('location') ?? ''}`
  for (const s of secrets)
    expect({ what, leaked: text.includes(s) ? s : null }).toEqual({ what, leaked: null })
}

/** The answer with the probe's own ids blanked, so A's and a ghost's can be compared. */
function shape(res: Answer, ids: Ids) {
  let message = String(res.body?.message ?? '')
  for (const id of Object.values(ids)) message = message.replaceAll(id, '<id>')
  return { status: res.status, code: res.body?.code, message }
}

describe('tenant isolation matrix (S3)', () => {
  let app: App
  let a: World
  let b: string

  beforeAll(async () => {
    app = await testApp()
    const tenant = newTenant()
    const queue = `iso-${random()}`
    const marker = `A-PAYLOAD-${random()}`
    const webhookPath = `hook-${random()}`
    const as = (method: string, path: string, body?: unknown) =>
      call(app, method, path, { tenant, body })
    const created = await as('POST', Q, { name: queue, partitionCount: 2 })
    expect(created.status).toBe(201)
    const pull = await as('POST', S, {
      queue,
      consumerGroup: 'billing',
      consumerName: 'billing-1',
      subscriptionType: 'redis_consumer',
      offsetResetPolicy: 'earliest',
      maxRetryAttempts: 1,
    })
    const hook = await as('POST', S, {
      queue,
      consumerGroup: 'hooks',
      consumerName: 'hooks-1',
      subscriptionType: 'webhook',
      handlerConfig: { url: `https://example.com/${webhookPath}` },
    })
    expect([pull.status, hook.status]).toEqual([201, 201])
    const messages = Array.from({ length: 4 }, (_, i) => ({
      messageId: `m-${random()}-${i}`,
      payload: { secret: `${marker}-${i}` },
    }))
    expect((await as('POST', `${BASE}/publish/batch`, { queue, messages })).status).toBe(201)
    const delayed = await as('POST', `${BASE}/publish/delayed`, {
      queue,
      messageId: `d-${random()}`,
      payload: { secret: `${marker}-delayed` },
      delayMs: 3_600_000,
    })
    const schedule = await as('POST', `${BASE}/publish/scheduled`, {
      queue,
      payload: { secret: `${marker}-schedule` },
      cron: '0 0 1 1 *',
    })
    expect([delayed.status, schedule.status]).toEqual([201, 201])
    // One delivery goes to the dead-letter queue (one attempt allowed), one stays in flight.
    const pulled = await as('POST', `${S}/${pull.body.id}/pull`, { max: 2 })
    expect(pulled.body.messages).toHaveLength(2)
    const [dead, inFlight] = pulled.body.messages as Array<{ receipt: string }>
    const nacked = await as('POST', `${S}/${pull.body.id}/nack`, { receipts: [dead!.receipt] })
    expect(nacked.body).toEqual({ requeued: 0, deadLettered: 1 })

    a = {
      tenant,
      queue,
      dlq: `${queue}.dlq`,
      queueId: created.body.id,
      pullSub: pull.body.id,
      hookSub: hook.body.id,
      signingSecret: hook.body.signingSecret,
      scheduleId: schedule.body.id,
      messageId: messages[0]!.messageId,
      delayedId: delayed.body.messageId,
      receipt: inFlight!.receipt,
      marker,
      webhookPath,
    }
    b = newTenant()
  })

  test('the matrix covers every route the app mounts', () => {
    const uncovered = mountedRoutes(app).filter((r) => !(r in MATRIX))
    expect(uncovered).toEqual([])
  })

  test('every object route answers 404 to B for A’s names and ids, exactly as for ids nobody has', async () => {
    let probes = 0
    for (const [route, entry] of mountedEntries(app)) {
      if (entry.kind !== 'object') continue
      const ghost = ghostIds()
      const real = entry.probes(a, a)
      const twins = entry.probes(ghost, a)
      for (const [i, probe] of real.entries()) {
        const res = await send(app, b, probe)
        const what = `${route} #${i}`
        expect({ what, status: res.status }).toEqual({ what, status: 404 })
        expect(ErrorSchema.safeParse(res.body).success).toBe(true)
        expectNoLeak(res, secretsNotSent(a, probe), what)
        const twin = await send(app, b, twins[i]!)
        expect({ what, ...shape(res, a) }).toEqual({ what, ...shape(twin, ghost) })
        probes++
      }
    }
    console.log(`S3: ${probes} cross-tenant object requests, all 404`)
  })

  test('B’s collections and views list nothing of A’s', async () => {
    for (const [route, entry] of mountedEntries(app)) {
      if (entry.kind !== 'collection') continue
      for (const probe of entry.probes(a, a)) {
        const res = await send(app, b, probe)
        const what = `${route} ${probe.path}`
        expect({ what, ok: res.status === 200 || res.status === 404 }).toEqual({ what, ok: true })
        expectNoLeak(res, secretsNotSent(a, probe), what)
        const items = res.body?.items ?? res.body?.queues
        if (Array.isArray(items)) expect({ what, items }).toEqual({ what, items: [] })
      }
    }
  })

  test('public routes need no tenant and show no tenant’s objects; operator views no payloads', async () => {
    const all = secretsNotSent(a, { method: 'GET', path: '' })
    for (const [route, entry] of mountedEntries(app)) {
      if (entry.kind !== 'public' && entry.kind !== 'operator' && entry.kind !== 'redirect')
        continue
      const res = await call(app, 'GET', plainPath(route))
      const status = entry.kind === 'redirect' ? 302 : 200
      expect({ route, status: res.status }).toEqual({ route, status })
      // Operators may see tenant and queue names (Prometheus labels); never payloads or ids.
      const secrets =
        entry.kind !== 'operator' ? all : [a.marker, a.messageId, a.receipt, a.signingSecret]
      expectNoLeak(res, secrets, route)
    }
  })

  test('the internal API refuses B’s JWT', async () => {
    for (const [route, entry] of mountedEntries(app)) {
      if (entry.kind !== 'service') continue
      const [method, path] = route.split(' ') as [string, string]
      const res = await call(app, method, path, {
        tenant: b,
        body: method === 'POST' ? { tenantId: a.tenant, payload: 1 } : undefined,
      })
      expect({ route, status: res.status }).toEqual({ route, status: 401 })
      expect(ErrorSchema.parse(res.body).code).toBe('MQ_UNAUTHORIZED')
    }
  })

  test('after all of B’s attempts A’s objects are exactly as they were', async () => {
    const as = (method: string, path: string, body?: unknown) =>
      call(app, method, path, { tenant: a.tenant, body })
    const queue = await as('GET', `${Q}/${a.queue}`)
    expect(queue.body).toMatchObject({ status: 'active', description: '', stats: { scheduled: 1 } })
    expect((await as('GET', `${Q}/${a.dlq}/messages`)).body.items).toHaveLength(1)
    const peek = await as('GET', `${Q}/${a.queue}/messages?limit=100`)
    expect(
      peek.body.items.map((m: { payload: { secret: string } }) => m.payload.secret).sort()
    ).toEqual([0, 1, 2, 3].map((i) => `${a.marker}-${i}`))
    const pull = await as('GET', `${S}/${a.pullSub}`)
    expect(pull.body).toMatchObject({ status: 'active', maxRetryAttempts: 1 })
    const hook = await as('GET', `${S}/${a.hookSub}`)
    expect(hook.body.handlerConfig.url).toBe(`https://example.com/${a.webhookPath}`)
    const schedule = await as('GET', `${SCH}/${a.scheduleId}`)
    expect(schedule.body).toMatchObject({ status: 'active', maxRuns: null })
    expect((await as('GET', `${BASE}/messages/${a.delayedId}?queue=${a.queue}`)).body.status).toBe(
      'scheduled'
    )
    // A's in-flight delivery is still A's to acknowledge.
    expect((await as('POST', `${S}/${a.pullSub}/ack`, { receipts: [a.receipt] })).body).toEqual({
      acked: 1,
    })
  })

  describe('random ids (fast-check)', () => {
    type IdRoute = [method: string, template: string, body?: unknown]
    type Case = [IdRoute, fc.Arbitrary<string>, (status: number) => boolean]
    const byUuid: IdRoute[] = [
      ['GET', `${S}/:id`],
      ['PUT', `${S}/:id`, { maxRetryAttempts: 2 }],
      ['DELETE', `${S}/:id`],
      ['POST', `${S}/:id/pause`],
      ['POST', `${S}/:id/pull`, {}],
      ['POST', `${S}/:id/ack`, { receipts: ['x'] }],
      ['POST', `${S}/:id/seek`, { to: 'earliest' }],
      ['GET', `${SCH}/:id`],
      ['PUT', `${SCH}/:id`, { maxRuns: 2 }],
      ['DELETE', `${SCH}/:id`],
      ['POST', `${SCH}/:id/resume`],
    ]
    const byName: IdRoute[] = [
      ['GET', `${Q}/:id`],
      ['PUT', `${Q}/:id`, { description: 'x' }],
      ['DELETE', `${Q}/:id`],
      ['POST', `${Q}/:id/purge`],
      ['GET', `${Q}/:id/messages`],
      ['POST', `${Q}/:id/redrive`, {}],
      ['POST', `${BASE}/topics/:id/publish`, { payload: 1 }],
    ]
    const at = (template: string, id: string) => template.replace(':id', encodeURIComponent(id))

    test('a well-formed id nobody owns is 404; anything else is 400 or 404, never 2xx or 5xx', async () => {
      const name = fc.stringMatching(NAME).filter((n) => n.length <= 200)
      const cases: Case[] = [
        ...byUuid.map((r): Case => [r, fc.uuid(), (s) => s === 404]),
        ...byName.map((r): Case => [r, name, (s) => s === 404]),
        ...[...byUuid, ...byName].map(
          (r): Case => [r, fc.string({ maxLength: 300 }), (s) => s === 400 || s === 404]
        ),
      ]
      for (const [[method, template, body], ids, expected] of cases) {
        await fc.assert(
          fc.asyncProperty(ids, async (id) => {
            const res = await call(app, method, at(template, id), {
              tenant: b,
              body,
            })
            return expected(res.status) && ErrorSchema.safeParse(res.body).success
          }),
          { numRuns: 25 }
        )
      }
    })

    test('A’s message ids and random ones are 404 in A’s queue for B', async () => {
      await fc.assert(
        fc.asyncProperty(
          fc.oneof(
            fc.constant(a.messageId),
            fc.constant(a.delayedId),
            fc.string({ minLength: 1, maxLength: 200 })
          ),
          async (id) => {
            const path = `${BASE}/messages/${encodeURIComponent(id)}?queue=${a.queue}`
            const res = await call(app, 'GET', path, { tenant: b })
            return res.status === 404 || (res.status === 400 && !/^[\x21-\x7e]+$/.test(id))
          }
        ),
        { numRuns: 50 }
      )
    })
  })

  test('same names in two tenants share nothing: messages, dedup markers, groups, dead letters', async () => {
    const c = newTenant()
    const as = (method: string, path: string, body?: unknown) =>
      call(app, method, path, { tenant: c, body })
    // The one `create` route: C makes its own queue under A's name.
    expect(MATRIX['POST /api/v1/mq/queues']!.kind).toBe('create')
    expect((await as('POST', Q, { name: a.queue, partitionCount: 2 })).status).toBe(201)
    const own = await as('POST', `${BASE}/publish`, {
      queue: a.queue,
      messageId: a.messageId,
      payload: { mine: 'c' },
    })
    expect(own.status).toBe(201)
    expect(own.body.duplicate).toBeUndefined()
    const sub = await as('POST', S, {
      queue: a.queue,
      consumerGroup: 'billing',
      consumerName: 'billing-1',
      subscriptionType: 'redis_consumer',
      offsetResetPolicy: 'earliest',
    })
    expect(sub.status).toBe(201)
    const pulled = await as('POST', `${S}/${sub.body.id}/pull`, { max: 10 })
    expect(pulled.body.messages.map((m: { payload: unknown }) => m.payload)).toEqual([
      { mine: 'c' },
    ])
    // A's receipt on C's subscription of the same group name acknowledges nothing: it is 400.
    const foreign = await as('POST', `${S}/${sub.body.id}/ack`, { receipts: [a.receipt] })
    expect([foreign.status, foreign.body.code]).toEqual([400, 'MQ_VALIDATION_FAILED'])
    // A dead letter naming A's dead-letter queue as its origin is redriven within C only, where
    // no queue has that name: it stays, and A's queue gets nothing.
    await as('POST', Q, { name: 'c-dead' })
    const forged = await as('POST', `${BASE}/publish`, {
      queue: 'c-dead',
      payload: 'forged',
      headers: { 'x-mq-original-queue': a.dlq },
    })
    expect(forged.status).toBe(201)
    expect((await as('POST', `${Q}/c-dead/redrive`, {})).body).toEqual({ redriven: 0 })
    const aDead = await call(app, 'GET', `${Q}/${a.dlq}/messages`, { tenant: a.tenant })
    expect(aDead.body.items).toHaveLength(1)

    const deps = await sharedDeps()
    const keysOf = async (tenant: string) =>
      (await deps.redis.keys(`${deps.config.REDIS_KEY_PREFIX}:*${tenant}*`)).sort()
    const [aKeys, cKeys] = [await keysOf(a.tenant), await keysOf(c)]
    expect(aKeys.length).toBeGreaterThan(0)
    expect(cKeys.filter((k) => aKeys.includes(k))).toEqual([])
    expect(cKeys.every((k) => !k.includes(a.tenant))).toBe(true)

    expect((await as('DELETE', `${Q}/${a.queue}`)).status).toBe(204)
    const peek = await call(app, 'GET', `${Q}/${a.queue}/messages`, { tenant: a.tenant })
    expect(peek.body.items).toHaveLength(4)
    expect(JSON.stringify(peek.body)).not.toContain('"mine"')
  })

  test('queue, group and consumer names with :, *, {, }, .., / or unicode are refused', async () => {
    const bad = [
      'a:b',
      'a*',
      '{a}',
      'a{b',
      'a}b',
      '..',
      '.a',
      '../a',
      'a/b',
      'ä',
      '队列',
      'a b',
      '',
      'a\u0000b',
      'x'.repeat(201),
    ]
    for (const name of bad) {
      const queue = await call(app, 'POST', Q, { tenant: b, body: { name } })
      expect({ name, status: queue.status }).toEqual({ name, status: 400 })
      const publish = await call(app, 'POST', `${BASE}/publish`, {
        tenant: b,
        body: { queue: name, payload: 1 },
      })
      expect({ name, status: publish.status }).toEqual({ name, status: 400 })
      const sub = await call(app, 'POST', S, {
        tenant: b,
        body: {
          queue: 'q',
          consumerGroup: name,
          consumerName: name,
          subscriptionType: 'redis_consumer',
        },
      })
      expect({ name, status: sub.status }).toEqual({ name, status: 400 })
    }
  })

  test('no two (tenant, queue, partition) triples share a Redis key or hash tag', () => {
    const keys = new Keys('mq')
    const name = fc.stringMatching(NAME).filter((n) => n.length <= 200)
    const triple = fc.tuple(fc.uuid(), name, fc.integer({ min: 0, max: 63 }))
    const part = fc.constantFrom(...(Object.keys(PARTITION_PARTS) as PartitionPart[]))
    /** What Redis Cluster hashes: the text between the first `{` and the next `}`. */
    const hashTag = (key: string) =>
      key.slice(key.indexOf('{') + 1, key.indexOf('}', key.indexOf('{')))
    fc.assert(
      fc.property(
        triple,
        triple,
        part,
        fc.string({ maxLength: 50 }),
        ([t1, q1, p1], [t2, q2, p2], kind, id) => {
          const same = t1 === t2 && q1 === q2 && p1 === p2
          const k1 = [
            keys.partition(t1, q1, p1, kind),
            keys.dedup(t1, q1, p1, id),
            keys.inflight(t1, q1, p1, q1),
          ]
          const k2 = [
            keys.partition(t2, q2, p2, kind),
            keys.dedup(t2, q2, p2, id),
            keys.inflight(t2, q2, p2, q1),
          ]
          return (
            k1.every((k, i) => (k === k2[i]) === same) &&
            k1.every((k) => hashTag(k) === `${t1}:${q1}:${p1}`) &&
            hashTag(keys.tenantRateBucket(t1)) !== hashTag(k1[0]!)
          )
        }
      ),
      { numRuns: 2000 }
    )
  })
})

/** The service token acting for B is B: it sees none of A's objects either. */
describe('tenant isolation through the service token', () => {
  test('X-Tenant-Id names the only tenant a service call can reach', async () => {
    const app = await testApp()
    const owner = newTenant()
    await call(app, 'POST', Q, { tenant: owner, body: { name: 'svc-owned' } })
    const headers = { 'x-service-token': SERVICE_TOKEN, 'x-tenant-id': newTenant() }
    expect((await call(app, 'GET', `${Q}/svc-owned`, { headers })).status).toBe(404)
    const list = await call(app, 'GET', Q, { headers })
    expect(list.body.items).toEqual([])
    const publish = await call(app, 'POST', `${BASE}/publish`, {
      headers,
      body: { queue: 'svc-owned', payload: 1 },
    })
    expect(publish.status).toBe(404)
  })
})
