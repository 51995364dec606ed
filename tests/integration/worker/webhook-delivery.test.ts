import { afterEach, describe, expect, test } from 'bun:test'
import { Webhook } from 'standardwebhooks'
import { SubscriptionRepository } from '../../../src/db/subscription-repository'
import type { MessageStore } from '../../../src/domain/ports'
import type { Connector } from '../../../src/egress/pinned-fetch'
import { type HostResolver, WebhookUrlGuard } from '../../../src/egress/ssrf'
import { createWebhookDelivery } from '../../../src/wiring/worker'
import type {
  WebhookDeliveryDeps,
  WebhookDeliveryOptions,
} from '../../../src/worker/webhook-delivery'
import { retryAfterMs, signWebhook, webhookId } from '../../../src/worker/webhook-request'
import { call, newTenant, sharedDeps, testAppWithGuard } from '../../helpers/harness'
import { startLedgerWriter } from '../../helpers/ledger'
import { ALL_BLOCKED_URLS, ssrfResolver } from '../../helpers/ssrf-vectors'

const B = '/api/v1/mq'
const cleanups: Array<() => unknown> = []

afterEach(async () => {
  // Last in, first out: the worker stops before its subscriptions and receivers go.
  for (const fn of cleanups.splice(0).reverse()) await fn()
})

interface Hit {
  at: number
  /** Aborts when the worker gives up on the request. */
  signal: AbortSignal
  method: string
  host: string | null
  headers: Record<string, string>
  body: string
}

/** A loopback HTTP endpoint that records every request and answers with `answer`. */
function receiver(answer: (n: number, hit: Hit) => Response | Promise<Response> = () => ok()) {
  const hits: Hit[] = []
  const server = Bun.serve({
    hostname: '127.0.0.1',
    port: 0,
    fetch: async (req) => {
      const hit: Hit = {
        at: Date.now(),
        signal: req.signal,
        method: req.method,
        host: req.headers.get('host'),
        headers: Object.fromEntries(req.headers),
        body: await req.text(),
      }
      hits.push(hit)
      return answer(hits.length, hit)
    },
  })
  // Not awaited: a handler still waiting must not hold the test's clean-up.
  cleanups.push(() => {
    void server.stop(true)
  })
  return { url: `http://127.0.0.1:${server.port}/hook`, port: server.port, hits }
}

const ok = () => new Response('ok')
const status = (code: number, headers: Record<string, string> = {}) =>
  new Response('', { status: code, headers })

/** Polls `probe` until it returns something truthy, and returns that. */
async function waitFor<T>(
  what: string,
  probe: () => Promise<T> | T,
  timeoutMs = 5000
): Promise<Exclude<T, false | null | undefined | 0 | ''>> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const value = await probe()
    if (value) return value as Exclude<T, false | null | undefined | 0 | ''>
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await Bun.sleep(10)
  }
}

/**
 * A tenant with queue `orders`, an app whose create/update check and a worker whose delivery
 * check share one guard over a stub resolver, and a connector that records every connection
 * and refuses anything but loopback.
 */
async function setup(opts: { allowed?: string[]; resolver?: HostResolver } = {}) {
  const deps = await sharedDeps()
  const guard = new WebhookUrlGuard(opts.allowed ?? ['127.0.0.1'], opts.resolver ?? ssrfResolver())
  const app = await testAppWithGuard(guard)
  const tenant = newTenant()
  expect(
    (await call(app, 'POST', `${B}/queues`, { tenant, body: { name: 'orders' } })).status
  ).toBe(201)
  const checked: string[] = []
  const dialled: string[] = []
  /** When each request left and when its answer (or failure) came back, as the worker saw it. */
  const attempts: Array<{ start: number; end: number }> = []
  const connect: Connector = (url, init) => {
    dialled.push(url)
    const host = new URL(url).hostname
    if (host !== '127.0.0.1' && host !== '[::1]') {
      return Promise.reject(new Error(`the test refused to dial ${host}`))
    }
    const attempt = { start: Date.now(), end: 0 }
    attempts.push(attempt)
    return fetch(url, init).finally(() => {
      attempt.end = Date.now()
    })
  }

  const repository = new SubscriptionRepository(deps.database.db)
  const start = (
    options: Partial<WebhookDeliveryOptions> = {},
    overrides: Partial<WebhookDeliveryDeps> = {}
  ) => {
    const loop = createWebhookDelivery(
      deps,
      {
        // Only this test's subscriptions: other files leave webhook subscriptions behind.
        listActiveWebhooks: async () =>
          (await repository.listActiveWebhooks()).filter((sub) => sub.tenantId === tenant),
        guard: {
          check: (url) => {
            checked.push(url)
            return guard.check(url)
          },
        },
        connect,
        ...overrides,
      },
      { stopDeadlineMs: 2000, ...options }
    )
    loop.start()
    cleanups.push(() => loop.stop())
    return loop
  }

  const subscribe = async (
    url: string,
    body: Record<string, unknown> = {},
    handlerConfig: Record<string, unknown> = {}
  ) => {
    const res = await call(app, 'POST', `${B}/subscriptions`, {
      tenant,
      body: {
        queue: 'orders',
        consumerGroup: `g-${crypto.randomUUID().slice(0, 8)}`,
        consumerName: 'c',
        subscriptionType: 'webhook',
        offsetResetPolicy: 'earliest',
        retryDelayMs: 50,
        handlerConfig: { url, ...handlerConfig },
        ...body,
      },
    })
    expect(res.status).toBe(201)
    cleanups.push(() => call(app, 'DELETE', `${B}/subscriptions/${res.body.id}`, { tenant }))
    return { id: res.body.id as string, secret: res.body.signingSecret as string }
  }

  const publish = async (payloads: unknown[], extra: Record<string, unknown> = {}) => {
    const res = await call(app, 'POST', `${B}/publish/batch`, {
      tenant,
      body: { queue: 'orders', messages: payloads.map((payload) => ({ payload, ...extra })) },
    })
    expect(res.status).toBe(201)
    return res.body.results.map((r: { messageId: string }) => r.messageId) as string[]
  }

  const subscription = async (id: string) =>
    (await call(app, 'GET', `${B}/subscriptions/${id}`, { tenant })).body

  const deadLetters = async (): Promise<
    Array<{ messageId: string; headers: Record<string, string> }>
  > => {
    const res = await call(app, 'GET', `${B}/queues/orders.dlq/messages?limit=1000`, { tenant })
    return res.status === 200 ? res.body.items : []
  }

  return {
    deps,
    app,
    tenant,
    start,
    subscribe,
    publish,
    subscription,
    deadLetters,
    checked,
    dialled,
    attempts,
  }
}

/** Gaps between consecutive hits, in ms. */
/** The real store, with `before` run (and awaited) ahead of every `settle` call. */
const beforeSettle = <T extends MessageStore>(messages: T, before: () => unknown): T =>
  new Proxy(messages, {
    get: (target, key) =>
      key === 'settle'
        ? async (...args: Parameters<MessageStore['settle']>) => {
            await before()
            return target.settle(...args)
          }
        : Reflect.get(target, key, target),
  })

const gaps = (hits: Hit[]) => hits.slice(1).map((h, i) => h.at - hits[i]!.at)

/** How long the worker waited between an answer and the next attempt, in ms. */
const waits = (attempts: Array<{ start: number; end: number }>) =>
  attempts.slice(1).map((a, i) => a.start - attempts[i]!.end)

describe('webhook delivery: happy', () => {
  test('a delivery is signed (verified by standardwebhooks) and carries the x-mq headers', async () => {
    const { start, subscribe, publish, subscription } = await setup()
    const rx = receiver()
    const { id, secret } = await subscribe(
      rx.url,
      {},
      { method: 'PUT', headers: { 'x-env': 'test', 'x-mq-queue': 'spoofed', 'webhook-id': 'no' } }
    )
    start()
    const payload = { order: 42, items: ['a', 'b'], note: 'ünïcode' }
    const [messageId] = await publish([payload], {
      correlationId: 'corr-1',
      headers: { 'x-source': 'shop', 'x-env': 'from-message', 'content-type': 'text/plain' },
    })
    await waitFor('the delivery', () => rx.hits.length === 1)
    const hit = rx.hits[0]!
    expect(hit.method).toBe('PUT')
    expect(JSON.parse(hit.body)).toEqual(payload)
    expect(hit.headers).toMatchObject({
      'content-type': 'application/json',
      'webhook-id': messageId!,
      'x-mq-queue': 'orders',
      'x-mq-delivery-count': '1',
      'x-mq-correlation-id': 'corr-1',
      'x-source': 'shop',
      'x-env': 'test',
    })
    expect(Math.abs(Number(hit.headers['webhook-timestamp']) - Date.now() / 1000)).toBeLessThan(5)

    const wh = new Webhook(secret)
    expect(wh.verify(hit.body, hit.headers)).toEqual(payload)
    // One byte changed anywhere signed fails verification.
    const flip = (s: string) => s.slice(0, -1) + (s.endsWith('0') ? '1' : '0')
    expect(() => wh.verify(hit.body.replace('42', '43'), hit.headers)).toThrow()
    expect(() => wh.verify(hit.body, { ...hit.headers, 'webhook-id': flip(messageId!) })).toThrow()
    expect(() =>
      wh.verify(hit.body, {
        ...hit.headers,
        'webhook-timestamp': String(Number(hit.headers['webhook-timestamp']) - 1),
      })
    ).toThrow()

    await waitFor('the ack', async () => (await subscription(id)).stats.acked === 1)
    expect((await subscription(id)).stats).toMatchObject({ pending: 0, lag: 0, delivered: 1 })
  })

  test('regression: a messageId with dots goes out escaped in webhook-id, verbatim in x-mq-message-id', async () => {
    const { start, subscribe, publish } = await setup()
    const rx = receiver()
    const { secret } = await subscribe(rx.url)
    start()
    const payload = { dotted: true }
    const [messageId] = await publish([payload], { messageId: 'order.2026.12' })
    await waitFor('the delivery', () => rx.hits.length === 1)
    const hit = rx.hits[0]!
    // Standard Webhooks signs `id.timestamp.body`: a `.` in the id is forbidden.
    expect(hit.headers['webhook-id']).toBe('order%2E2026%2E12')
    expect(decodeURIComponent(hit.headers['webhook-id']!)).toBe(messageId!)
    expect(hit.headers['x-mq-message-id']).toBe(messageId!)
    expect(new Webhook(secret).verify(hit.body, hit.headers)).toEqual(payload)
    // Ids from before `%` was refused stay apart from escaped ones.
    expect(webhookId('a%2E')).not.toBe(webhookId('a.'))
  })

  test('pinning: a name resolving to loopback is dialled by IP with its Host header', async () => {
    const rx = receiver()
    const HOST = 'hooks.example.test'
    const lookups: string[] = []
    const resolver: HostResolver = async (host) => {
      lookups.push(host)
      if (host !== HOST) throw new Error(`getaddrinfo ENOTFOUND ${host}`)
      return [{ address: '127.0.0.1', family: 4 }]
    }
    const { start, subscribe, publish, dialled } = await setup({ allowed: [HOST], resolver })
    await subscribe(`http://${HOST}:${rx.port}/hook?x=1`)
    start()
    await publish([{ pinned: true }])
    await waitFor('the delivery', () => rx.hits.length === 1)
    expect(rx.hits[0]!.host).toBe(`${HOST}:${rx.port}`)
    expect(dialled).toEqual([`http://127.0.0.1:${rx.port}/hook?x=1`])
    // Once at create, once at the delivery attempt.
    expect(lookups).toEqual([HOST, HOST])
  })

  test('pause stops deliveries within a second; resume restarts them', async () => {
    const { app, tenant, start, subscribe, publish } = await setup()
    const rx = receiver()
    const { id } = await subscribe(rx.url)
    start()
    await publish([1])
    await waitFor('the first delivery', () => rx.hits.length === 1)
    expect((await call(app, 'POST', `${B}/subscriptions/${id}/pause`, { tenant })).status).toBe(200)
    await Bun.sleep(1200)
    await publish([2, 3])
    await Bun.sleep(1000)
    expect(rx.hits).toHaveLength(1)
    const resumed = Date.now()
    expect((await call(app, 'POST', `${B}/subscriptions/${id}/resume`, { tenant })).status).toBe(
      200
    )
    await waitFor('deliveries after resume', () => rx.hits.length === 3, 3000)
    expect(rx.hits.at(-1)!.at - resumed).toBeLessThan(2000)
    expect(rx.hits.map((h) => JSON.parse(h.body)).toSorted()).toEqual([1, 2, 3])
  })
})

describe('webhook delivery: failures (R12)', () => {
  test('500 ×3 then 200: delivered on the 4th attempt, same webhook-id, delays follow the backoff', async () => {
    const { start, subscribe, publish, subscription, attempts } = await setup()
    const rx = receiver((n) => (n <= 3 ? status(500) : ok()))
    const { id, secret } = await subscribe(rx.url, { retryDelayMs: 100, maxRetryAttempts: 5 })
    start()
    const [messageId] = await publish([{ retry: true }])
    await waitFor('four attempts', () => rx.hits.length === 4)
    expect(rx.hits.map((h) => h.headers['webhook-id'])).toEqual(Array(4).fill(messageId))
    expect(rx.hits.map((h) => h.headers['x-mq-delivery-count'])).toEqual(['1', '2', '3', '4'])
    expect(rx.hits.every((h) => h.method === 'POST')).toBe(true)
    const wh = new Webhook(secret)
    for (const hit of rx.hits) expect(wh.verify(hit.body, hit.headers)).toEqual({ retry: true })
    // retryDelay: 100 × 2^(attempt−1) ± 20 % jitter; R12 allows 10 % more, plus scheduling slack.
    for (const [i, wait] of waits(attempts).entries()) {
      const base = 100 * 2 ** i
      expect(wait).toBeGreaterThanOrEqual(base * 0.8)
      expect(wait).toBeLessThanOrEqual(base * 1.2 * 1.1 + 100)
    }
    await waitFor('the ack', async () => (await subscription(id)).stats.acked === 1)
    await Bun.sleep(300)
    expect(rx.hits).toHaveLength(4)
    expect((await subscription(id)).stats).toMatchObject({
      delivered: 4,
      failed: 3,
      acked: 1,
      pending: 0,
      deadLettered: 0,
    })
  })

  test('410 Gone pauses the subscription with a reason; no further attempts', async () => {
    const { start, subscribe, publish, subscription } = await setup()
    const rx = receiver(() => status(410))
    const { id } = await subscribe(rx.url)
    start()
    await publish([{ gone: true }])
    const paused = await waitFor('the pause', async () => {
      const sub = await subscription(id)
      return sub.status === 'paused' && sub
    })
    expect(paused.statusReason).toContain('410 Gone')
    await Bun.sleep(1500)
    expect(rx.hits).toHaveLength(1)
  })

  test('302 is a failure and Location is never fetched', async () => {
    const { start, subscribe, publish, deadLetters, dialled } = await setup()
    const elsewhere = receiver()
    const rx = receiver(() => status(302, { location: elsewhere.url }))
    await subscribe(rx.url, { maxRetryAttempts: 2 })
    start()
    await publish([{ redirect: true }])
    const [dead] = await waitFor('the dead letter', async () => {
      const items = await deadLetters()
      return items.length === 1 && items
    })
    expect(dead!.headers['x-mq-dead-letter-reason']).toContain('302')
    expect(rx.hits).toHaveLength(2)
    expect(elsewhere.hits).toHaveLength(0)
    expect(dialled.every((url) => url === rx.url)).toBe(true)
  })

  test('a receiver slower than timeoutMs fails the attempt at the timeout', async () => {
    const { start, subscribe, publish, attempts } = await setup()
    const rx = receiver(async () => {
      await Bun.sleep(3000)
      return ok()
    })
    await subscribe(
      rx.url,
      { retryBackoff: 'fixed', retryDelayMs: 0, maxRetryAttempts: 2 },
      { timeoutMs: 500 }
    )
    start()
    await publish([{ slow: true }])
    await waitFor('the second attempt', () => rx.hits.length === 2)
    // The attempt's deadline also covers checking the URL, so the connection gets a little less.
    const first = attempts[0]!
    expect(first.end - first.start).toBeGreaterThanOrEqual(400)
    expect(first.end - first.start).toBeLessThan(1000)
    // Retried at once (fixed backoff of 0), long before the receiver's 3 s answer.
    expect(gaps(rx.hits)[0]).toBeLessThan(1500)
  })

  test('after maxRetryAttempts the message is dead-lettered exactly once', async () => {
    const { start, subscribe, publish, subscription, deadLetters } = await setup()
    const rx = receiver(() => status(500))
    const { id } = await subscribe(rx.url, { maxRetryAttempts: 3 })
    start()
    const [messageId] = await publish([{ poison: true }])
    await waitFor('the dead letter', async () => (await deadLetters()).length > 0)
    await Bun.sleep(500)
    const dead = await deadLetters()
    expect(dead.map((d) => d.messageId)).toEqual([messageId!])
    expect(dead[0]!.headers).toMatchObject({
      'x-mq-delivery-count': '3',
      'x-mq-dead-letter-reason': 'webhook: endpoint answered 500',
    })
    expect(rx.hits).toHaveLength(3)
    expect((await subscription(id)).stats).toMatchObject({
      pending: 0,
      lag: 0,
      acked: 0,
      deadLettered: 1,
    })
  })

  test("a message's attempts record each failed push's status code, and the last one's reason", async () => {
    const { deps, app, tenant, start, subscribe, publish } = await setup()
    const rx = receiver((n) => (n === 1 ? status(503) : n === 2 ? status(404) : ok()))
    const { id } = await subscribe(rx.url, { retryDelayMs: 20, maxRetryAttempts: 5 })
    const ledger = startLedgerWriter(deps, [tenant])
    cleanups.push(() => ledger.stop())
    start()
    const [messageId] = await publish([{ n: 1 }])
    type Seen = { attempts: Array<{ status: string; statusCode: number | null; error: string }> }
    const seen = await waitFor('three recorded attempts', async () => {
      const res = await call(app, 'GET', `${B}/queues/orders/messages/${messageId}`, { tenant })
      const m = res.body as Seen
      return m.attempts?.length === 3 && m
    })
    expect(seen.attempts.map((a) => [a.status, a.statusCode, a.error])).toEqual([
      ['retrying', 503, 'webhook: endpoint answered 503'],
      ['retrying', 404, 'webhook: endpoint answered 404'],
      ['success', null, null],
    ])
    expect((await call(app, 'GET', `${B}/subscriptions/${id}`, { tenant })).body.stats.acked).toBe(
      1
    )
  })

  test('429 with Retry-After: 1 is retried no sooner than a second later', async () => {
    const { start, subscribe, publish, attempts } = await setup()
    const rx = receiver((n) => (n === 1 ? status(429, { 'retry-after': '1' }) : ok()))
    await subscribe(rx.url, { retryDelayMs: 50 })
    start()
    await publish([{ limited: true }])
    await waitFor('the retry', () => rx.hits.length === 2, 4000)
    const [wait] = waits(attempts)
    expect(wait).toBeGreaterThanOrEqual(1000)
    expect(wait).toBeLessThan(1600)
  })

  test('Retry-After is read as seconds or an HTTP date', () => {
    const now = Date.parse('2026-01-01T00:00:00Z')
    expect(retryAfterMs('2', now)).toBe(2000)
    expect(retryAfterMs('Thu, 01 Jan 2026 00:00:05 GMT', now)).toBe(5000)
    expect(retryAfterMs('Wed, 31 Dec 2025 23:00:00 GMT', now)).toBe(0)
    expect(retryAfterMs('soon', now)).toBeNull()
    expect(retryAfterMs(null, now)).toBeNull()
    expect(retryAfterMs('99999999', now)).toBe(12 * 60 * 60 * 1000)
  })

  test('signWebhook is what standardwebhooks computes', () => {
    const secret = `whsec_${Buffer.from('0123456789abcdef0123456789abcdef').toString('base64')}`
    const at = new Date(1_767_225_600_000)
    expect(signWebhook(secret, 'msg_1', at.getTime() / 1000, '{"a":1}')).toBe(
      new Webhook(secret).sign('msg_1', at, '{"a":1}')
    )
  })
})

describe('webhook delivery: isolation and accounting', () => {
  test('a hanging endpoint holds only its own slots and never delays another subscription (R13)', async () => {
    const { start, subscribe, publish, subscription } = await setup()
    const hanging = receiver(
      (_, hit) =>
        new Promise<Response>((resolve) =>
          hit.signal.addEventListener('abort', () => resolve(new Response('too late')))
        )
    )
    const healthy = receiver()
    await subscribe(hanging.url, {}, { timeoutMs: 5000 })
    const { id } = await subscribe(healthy.url)
    start({ perSubscription: 2 })
    const sent: number[] = []
    for (let i = 0; i < 5; i++) {
      sent.push(Date.now())
      await publish([{ i }])
      await Bun.sleep(100)
    }
    await waitFor('healthy deliveries', () => healthy.hits.length === 5)
    const latency = healthy.hits.map((h) => h.at - sent[(JSON.parse(h.body) as { i: number }).i]!)
    // Well inside the hanging endpoint's 5 s timeout: nothing waited behind it.
    expect(Math.max(...latency)).toBeLessThan(1000)
    // At most MAX_CONCURRENT_CONSUMERS (here 2) requests wait on the hanging endpoint.
    expect(hanging.hits).toHaveLength(2)
    await waitFor('the acks', async () => (await subscription(id)).stats.acked === 5)
  })

  test('one subscription has its whole limit in flight at once, and answers that come back together are acked together', async () => {
    const { deps, start, subscribe, publish, subscription } = await setup()
    const LIMIT = 20
    // No answer until all LIMIT requests are in: fewer at once would never be answered.
    const allIn = Promise.withResolvers<void>()
    const rx = receiver(async (n) => {
      if (n === LIMIT) allIn.resolve()
      await allIn.promise
      return ok()
    })
    const { id } = await subscribe(rx.url)
    let settleCalls = 0
    const messages = beforeSettle(deps.consumeDeps.messages, () => {
      settleCalls++
    })
    start({ perSubscription: LIMIT }, { consume: { ...deps.consumeDeps, messages } })
    await publish(Array.from({ length: LIMIT }, (_, i) => i))
    await waitFor('every request in flight', () => rx.hits.length === LIMIT)
    await waitFor('the acks', async () => (await subscription(id)).stats.acked === LIMIT)
    // The first ack goes out alone at once; the others wait for it and share the next calls.
    expect(settleCalls).toBeLessThan(LIMIT / 2)
    expect(rx.hits).toHaveLength(LIMIT)
  })

  test('ordering key: each key in publish order, one request of a key at a time, keys side by side, a failure retried before the next', async () => {
    const { app, tenant, start, subscribe } = await setup()
    const KEYS = ['a', 'b', 'c', 'd']
    const ROUNDS = 6
    const open = new Map<string, number>()
    const done: Array<{ key: string; seq: number }> = []
    let busiest = 0
    let overlaps = 0
    const failed = new Set<string>()
    const rx = receiver(async (_, hit) => {
      const { key, seq } = JSON.parse(hit.body) as { key: string; seq: number }
      open.set(key, (open.get(key) ?? 0) + 1)
      busiest = Math.max(
        busiest,
        [...open.values()].reduce((x, y) => x + y, 0)
      )
      await Bun.sleep(5 + ((seq * 7) % 20))
      const overlapping = open.get(key)!
      open.set(key, overlapping - 1)
      if (overlapping > 1) overlaps++
      // Each key's second message fails once: its retry must come before the third.
      if (seq === 1 && !failed.has(key)) {
        failed.add(key)
        return status(500)
      }
      done.push({ key, seq })
      return ok()
    })
    await subscribe(rx.url, { ordering: 'key', maxRetryAttempts: 5, retryDelayMs: 20 })
    start({ perSubscription: 8 })
    for (let seq = 0; seq < ROUNDS; seq++) {
      const messages = KEYS.map((key) => ({ payload: { key, seq }, key }))
      const res = await call(app, 'POST', `${B}/publish/batch`, {
        tenant,
        body: { queue: 'orders', messages },
      })
      expect(res.status).toBe(201)
    }
    await waitFor('every message', () => done.length === KEYS.length * ROUNDS, 15_000)
    for (const key of KEYS) {
      expect(done.filter((d) => d.key === key).map((d) => d.seq)).toEqual([0, 1, 2, 3, 4, 5])
    }
    expect(overlaps).toBe(0)
    expect(busiest).toBeGreaterThan(1)
  })

  test('a slot is free again once its request is answered, and answered deliveries waiting on a slow ack hold back new ones at twice the limit', async () => {
    const { deps, start, subscribe, publish, subscription } = await setup()
    const LIMIT = 2
    const rx = receiver()
    const { id } = await subscribe(rx.url)
    // Every ack takes a second: before, each slot stayed taken for it.
    const messages = beforeSettle(deps.consumeDeps.messages, () => Bun.sleep(1000))
    start({ perSubscription: LIMIT }, { consume: { ...deps.consumeDeps, messages } })
    const started = Date.now()
    await publish(Array.from({ length: 3 * LIMIT }, (_, i) => i))
    await waitFor('twice the limit delivered', () => rx.hits.length >= 2 * LIMIT)
    expect(Date.now() - started).toBeLessThan(900)
    // No ack can be done before a second has passed: until then the rest waits for them
    // rather than piling up more.
    await Bun.sleep(950 - (Date.now() - started))
    expect(rx.hits).toHaveLength(2 * LIMIT)
    await waitFor('the acks', async () => (await subscription(id)).stats.acked === 3 * LIMIT)
    expect(rx.hits).toHaveLength(3 * LIMIT)
  })

  test('published = acked + pending + deadLettered, at every sample and when drained', async () => {
    const { start, subscribe, publish, subscription, deadLetters } = await setup()
    // Odd payloads are accepted, even ones always fail.
    const rx = receiver((_, hit) => (Number(hit.body) % 2 === 1 ? ok() : status(500)))
    const { id } = await subscribe(rx.url, { maxRetryAttempts: 2 })
    start()
    const published = (await publish(Array.from({ length: 20 }, (_, i) => i))).length
    const drained = await waitFor('draining', async () => {
      const { stats } = await subscription(id)
      const accounted = stats.acked + stats.pending + stats.lag + stats.deadLettered
      expect(accounted).toBeLessThanOrEqual(published)
      return stats.pending === 0 && stats.lag === 0 && accounted === published && stats
    })
    expect(drained).toMatchObject({ acked: 10, deadLettered: 10 })
    expect(await deadLetters()).toHaveLength(10)
  })

  test('a dispatcher that idles between messages holds no more wake-ups than its one wait', async () => {
    const { start, subscribe, publish } = await setup()
    const rx = receiver()
    await subscribe(rx.url)
    const loop = start()
    // Each message alone, acked before the next: every one ends a wait and a pause.
    for (let i = 1; i <= 30; i++) {
      await publish([i])
      await waitFor(`delivery ${i}`, () => rx.hits.length === i)
      await Bun.sleep(20)
      expect(loop.heldWakers()).toBeLessThanOrEqual(1)
    }
  })
})

/** A receiver that holds each request `holdMs` and records how many were open at once. */
function concurrencyReceiver(holdMs: number) {
  let open = 0
  const peak = { open: 0 }
  const rx = receiver(async () => {
    open++
    peak.open = Math.max(peak.open, open)
    await Bun.sleep(holdMs)
    open--
    return ok()
  })
  return { ...rx, peak }
}

/** The most hits in any window of `windowMs`. */
const busiestWindow = (hits: Hit[], windowMs: number) => {
  let most = 0
  for (let i = 0, j = 0; j < hits.length; j++) {
    while (hits[j]!.at - hits[i]!.at >= windowMs) i++
    most = Math.max(most, j - i + 1)
  }
  return most
}

describe('webhook delivery: flow control (issue 25)', () => {
  test('parallelism and rateLimitPerSecond hold across two workers; stats.flow shows them', async () => {
    const { start, subscribe, publish, subscription, tenant, app } = await setup()
    const rx = concurrencyReceiver(40)
    const { id } = await subscribe(rx.url, {}, { parallelism: 3, rateLimitPerSecond: 40 })
    // Two delivery loops: two worker processes as far as Redis can tell.
    start({ perSubscription: 10 })
    start({ perSubscription: 10 })
    await publish(Array.from({ length: 60 }, (_, i) => i))
    await waitFor('a few in flight', async () => (await subscription(id)).stats.flow.inFlight > 0)
    await waitFor('every delivery', () => rx.hits.length >= 60, 8000)
    const elapsedMs = rx.hits.at(-1)!.at - rx.hits[0]!.at
    expect(rx.peak.open).toBeLessThanOrEqual(3)
    // burst 2 (40/20) + 40 a second, and the 60 need at least (60 − 2) / 40 s.
    expect(busiestWindow(rx.hits, 1000)).toBeLessThanOrEqual(42)
    expect(elapsedMs).toBeGreaterThanOrEqual(((60 - 2) / 40) * 1000 - 50)
    const { stats } = await subscription(id)
    expect(stats.flow).toMatchObject({ rateLimitPerSecond: 40, parallelism: 3, pausedUntil: null })
    expect(stats.flow.throttled).toBeGreaterThan(0)
    const consumers = await call(app, 'GET', `${B}/metrics/consumers`, { tenant })
    const row = consumers.body.items.find(
      (c: { subscriptionId: string }) => c.subscriptionId === id
    )
    expect(row.flow).toMatchObject({ rateLimitPerSecond: 40, parallelism: 3 })
  })

  test('a 429 with Retry-After: 1 holds the whole subscription for a second, then it resumes', async () => {
    const { start, subscribe, publish, subscription } = await setup()
    const rx = receiver((n) => (n === 1 ? status(429, { 'retry-after': '1' }) : ok()))
    const other = receiver()
    const { id } = await subscribe(rx.url, { retryDelayMs: 50 }, { parallelism: 1 })
    await subscribe(other.url)
    start()
    start()
    await publish(Array.from({ length: 5 }, (_, i) => i))
    await waitFor('the 429', () => rx.hits.length === 1)
    await waitFor('the pause in stats', async () => (await subscription(id)).stats.flow.pausedUntil)
    // Meanwhile the other subscription of the queue is delivered as usual.
    await waitFor('the other subscription', () => other.hits.length === 5, 900)
    await waitFor('every delivery after the pause', () => rx.hits.length === 6, 4000)
    const after = rx.hits.slice(1).map((h) => h.at - rx.hits[0]!.at)
    expect(Math.min(...after)).toBeGreaterThanOrEqual(950)
    expect(Math.min(...after)).toBeLessThan(1600)
    const { flow } = (await subscription(id)).stats
    expect(flow.pausedUntil).toBeNull()
    expect(flow.throttled).toBeGreaterThanOrEqual(1)
  })

  test('limits out of bounds, or on a pull subscription, are a 400 in the contract’s shape', async () => {
    const { app, tenant, subscribe } = await setup()
    const rx = receiver()
    const body = (handlerConfig: Record<string, unknown>, type = 'webhook') => ({
      tenant,
      body: {
        queue: 'orders',
        consumerGroup: 'v',
        consumerName: 'c',
        subscriptionType: type,
        handlerConfig: { url: rx.url, ...handlerConfig },
      },
    })
    for (const bad of [
      { rateLimitPerSecond: 0 },
      { rateLimitPerSecond: 10_001 },
      { rateLimitPerSecond: 1.5 },
      { parallelism: 0 },
      { parallelism: 1001 },
      { parallelism: '5' },
    ]) {
      const res = await call(app, 'POST', `${B}/subscriptions`, body(bad))
      expect(res.status).toBe(400)
      expect(res.body.code).toBe('MQ_VALIDATION_FAILED')
      expect(JSON.stringify(res.body.details)).toContain(Object.keys(bad)[0]!)
    }
    const pull = await call(app, 'POST', `${B}/subscriptions`, {
      ...body({ parallelism: 2 }, 'redis_consumer'),
    })
    expect(pull.status).toBe(400)
    expect(pull.body).toMatchObject({ code: 'MQ_VALIDATION_FAILED' })
    expect(pull.body.message).toContain('handlerConfig.parallelism')
    const { id } = await subscribe(rx.url, {}, { parallelism: 2 })
    const put = await call(app, 'PUT', `${B}/subscriptions/${id}`, {
      tenant,
      body: { handlerConfig: { url: rx.url, parallelism: 5000 } },
    })
    expect(put.status).toBe(400)
    expect(put.body.code).toBe('MQ_VALIDATION_FAILED')
    const changed = await call(app, 'PUT', `${B}/subscriptions/${id}`, {
      tenant,
      body: { handlerConfig: { url: rx.url, rateLimitPerSecond: 7 } },
    })
    expect(changed.status).toBe(200)
    expect(changed.body.handlerConfig).toMatchObject({ rateLimitPerSecond: 7 })
    const shown = await call(app, 'GET', `${B}/subscriptions/${id}`, { tenant })
    expect(shown.body.stats.flow).toEqual({
      rateLimitPerSecond: 7,
      parallelism: null,
      inFlight: null,
      throttled: 0,
      pausedUntil: null,
    })
  })
})

describe('webhook delivery: subscriptions served', () => {
  test('the worker reads active webhook subscriptions of every tenant, not paused or pull ones', async () => {
    const a = await setup()
    const b = await setup()
    const rx = receiver()
    const one = await a.subscribe(rx.url)
    const two = await b.subscribe(rx.url)
    const paused = await b.subscribe(rx.url)
    await call(b.app, 'POST', `${B}/subscriptions/${paused.id}/pause`, { tenant: b.tenant })
    const pull = await call(b.app, 'POST', `${B}/subscriptions`, {
      tenant: b.tenant,
      body: {
        queue: 'orders',
        consumerGroup: 'p',
        consumerName: 'c',
        subscriptionType: 'redis_consumer',
      },
    })
    const listed = await new SubscriptionRepository(a.deps.database.db).listActiveWebhooks()
    const ids = listed.map((sub) => sub.id)
    expect(ids).toEqual(expect.arrayContaining([one.id, two.id]))
    expect(ids).not.toContain(paused.id)
    expect(ids).not.toContain(pull.body.id)
    expect(listed.every((s) => s.subscriptionType === 'webhook' && s.status === 'active')).toBe(
      true
    )
    expect(listed.find((s) => s.id === two.id)).toMatchObject({
      tenantId: b.tenant,
      queue: 'orders',
    })
  })
})

describe('webhook delivery: SSRF at delivery (S2)', () => {
  test('every blocked URL is refused at every attempt with zero connections opened', async () => {
    // No allowed hosts: loopback is as blocked as everything else here.
    const { deps, tenant, start, subscribe, publish, deadLetters, checked, dialled } = await setup({
      allowed: [],
    })
    const stored: string[] = []
    // Rows holding each blocked URL, as if written before a check existed or by a bug.
    for (const url of ALL_BLOCKED_URLS) {
      const { id } = await subscribe('http://public.example.test/', { maxRetryAttempts: 1 })
      await deps.subscriptionDeps.subscriptions.update(tenant, id, {
        handlerConfig: { url, method: 'POST', headers: {}, timeoutMs: 1000 },
      })
      stored.push(url)
    }
    // Public when created, private ever after: the rebinding stub.
    await subscribe('http://rebind.example.test/hook', { maxRetryAttempts: 1 })
    stored.push('http://rebind.example.test/hook')
    await publish([{ ssrf: true }])
    start()
    await waitFor(
      'every attempt to fail',
      async () => (await deadLetters()).length === stored.length,
      15_000
    )
    expect(dialled).toEqual([])
    expect(new Set(checked)).toEqual(new Set(stored))
    const reasons = (await deadLetters()).map((d) => d.headers['x-mq-dead-letter-reason'])
    expect(reasons.every((r) => r?.startsWith('webhook: '))).toBe(true)
  }, 30_000)
})
