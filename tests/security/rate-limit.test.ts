import { afterEach, describe, expect, test } from 'bun:test'
import { createApp } from '../../src/app'
import { buildDeps, type Deps } from '../../src/deps'
import { ErrorSchema } from '../../src/http/schemas/common'
import { createLogger } from '../../src/observability/logger'
import { BASE, call } from '../helpers/api'
import {
  newTenant,
  SERVICE_TOKEN,
  sharedDeps,
  testApp,
  testConfig,
  testResolver,
  token,
} from '../helpers/harness'
import { type OutageDeps, startOutageDeps, timed } from '../helpers/outage'

const Q = `${BASE}/queues`

type AppLike = Parameters<typeof call>[0]

describe('per-tenant rate limit (S8)', () => {
  let second: Deps | undefined
  let outage: OutageDeps | undefined
  afterEach(async () => {
    await second?.close()
    await outage?.close()
    second = undefined
    outage = undefined
  })

  test('over the limit is 429 MQ_RATE_LIMITED with retryAfter, Retry-After and RateLimit fields', async () => {
    const app = await testApp({ TENANT_RATE_LIMIT: 2 })
    const tenant = newTenant()
    const first = await call(app, 'GET', Q, { tenant })
    expect(first.status).toBe(200)
    expect(first.headers.get('ratelimit-policy')).toBe('"tenant";q=2;w=1')
    expect(first.headers.get('ratelimit')).toMatch(/^"tenant";r=1;t=1$/)
    expect((await call(app, 'GET', Q, { tenant })).status).toBe(200)

    const refused = await call(app, 'GET', Q, { tenant })
    expect(refused.status).toBe(429)
    const body = ErrorSchema.parse(refused.body)
    expect(body.code).toBe('MQ_RATE_LIMITED')
    expect(body.retryAfter).toBe(1)
    expect(body.details).toEqual({ limit: 2 })
    expect(body.requestId).toBe(refused.headers.get('x-request-id')!)
    expect(refused.headers.get('retry-after')).toBe('1')
    expect(refused.headers.get('ratelimit')).toBe('"tenant";r=0;t=1')

    // Two tokens a second: one is back within half a second.
    await Bun.sleep(550)
    expect((await call(app, 'GET', Q, { tenant })).status).toBe(200)
  })

  test('a refused request takes no token: a client retrying in a loop still gets its rate', async () => {
    const app = await testApp({ TENANT_RATE_LIMIT: 5 })
    const tenant = newTenant()
    const jwt = await token(tenant)
    const started = performance.now()
    let accepted = 0
    while (performance.now() - started < 1200) {
      const res = await app.request(Q, { headers: { authorization: `Bearer ${jwt}` } })
      if (res.status === 200) accepted++
      else expect(res.status).toBe(429)
    }
    // The burst of 5, then 5 a second for 1.2 s: 11, give or take the last token's timing.
    expect(accepted).toBeGreaterThanOrEqual(10)
    expect(accepted).toBeLessThanOrEqual(12)
  })

  test('health and the service token’s all-tenant views are not counted', async () => {
    const app = await testApp({ TENANT_RATE_LIMIT: 1 })
    for (let i = 0; i < 5; i++) {
      expect((await call(app, 'GET', `${BASE}/health/ping`)).status).toBe(200)
      const status = await call(app, 'GET', `${BASE}/status`, {
        headers: { 'x-service-token': SERVICE_TOKEN },
      })
      expect(status.status).toBe(200)
      expect(status.headers.get('ratelimit')).toBeNull()
    }
    // The same service token acting for a tenant draws from that tenant's bucket.
    const tenant = { 'x-service-token': SERVICE_TOKEN, 'x-tenant-id': newTenant() }
    expect((await call(app, 'GET', Q, { headers: tenant })).status).toBe(200)
    expect((await call(app, 'GET', Q, { headers: tenant })).status).toBe(429)
  })

  test('regression: /internal/mq publishes draw from the tenant’s bucket, shared with its API calls', async () => {
    const app = await testApp({ TENANT_RATE_LIMIT: 2 })
    const tenant = newTenant()
    const other = newTenant()
    const headers = { 'x-service-token': SERVICE_TOKEN }
    const publish = (t: string, path: string) =>
      call(app, 'POST', `/internal/mq/${path}`, { headers, body: { tenantId: t, payload: 1 } })
    expect((await publish(tenant, 'user-events')).status).toBe(201)
    expect((await call(app, 'GET', Q, { tenant })).status).toBe(200)
    const refused = await publish(tenant, 'notifications')
    expect(refused.status).toBe(429)
    expect(ErrorSchema.parse(refused.body).code).toBe('MQ_RATE_LIMITED')
    expect(refused.headers.get('retry-after')).toBe('1')
    // Another tenant's bucket is its own; the status views are not counted.
    expect((await publish(other, 'user-events')).status).toBe(201)
    for (let i = 0; i < 3; i++) {
      const status = await call(app, 'GET', `/internal/mq/audit-queue-status?tenantId=${other}`, {
        headers,
      })
      expect(status.status).toBe(404)
    }
    // The refused call stored nothing, not even the queue it would have created.
    await Bun.sleep(1100)
    const listed = await call(app, 'GET', Q, { tenant })
    expect(listed.body.items.map((q: { name: string }) => q.name)).toEqual(['user-events'])
  })

  test('with TENANT_RATE_LIMIT=0 (the default) nothing is limited and no fields are sent', async () => {
    const app = await testApp()
    const tenant = newTenant()
    for (let i = 0; i < 20; i++) {
      const res = await call(app, 'GET', Q, { tenant })
      expect(res.status).toBe(200)
      expect(res.headers.get('ratelimit')).toBeNull()
    }
  })

  test('a tenant at 10× its quota through two api instances is held to it ±10 %; others see no 429', async () => {
    const RATE = 50
    const shared = await sharedDeps()
    // A second process's worth of connections and pools on the same Redis and key prefix.
    second = await buildDeps(
      testConfig({ REDIS_KEY_PREFIX: shared.config.REDIS_KEY_PREFIX }),
      createLogger('silent'),
      { resolveHost: testResolver }
    )
    const apps = [shared, second].map((deps) =>
      createApp({ ...deps, config: { ...deps.config, TENANT_RATE_LIMIT: RATE } })
    )
    const hot = newTenant()
    const others = [newTenant(), newTenant(), newTenant()]
    const WINDOW_MS = 4000
    const WARMUP_MS = 1000

    const [hotLog, ...otherLogs] = await Promise.all([
      drive(apps, await token(hot), RATE * 10, WARMUP_MS + WINDOW_MS),
      ...others.map(async (t) => drive(apps, await token(t), RATE / 2, WARMUP_MS + WINDOW_MS)),
    ])

    // Measured from the first refusal, when the burst is spent and only the refill is left.
    const firstRefusal = hotLog!.find((r) => r.status === 429)!.sentAt
    const inWindow = hotLog!.filter(
      (r) => r.sentAt >= firstRefusal && r.sentAt < firstRefusal + WINDOW_MS
    )
    const acceptedRate = inWindow.filter((r) => r.status === 200).length / (WINDOW_MS / 1000)
    const statuses = new Set(hotLog!.map((r) => r.status))
    const otherRefused = otherLogs.flat().filter((r) => r.status === 429).length
    console.log(
      `S8: hot tenant offered ${(inWindow.length / (WINDOW_MS / 1000)).toFixed(0)}/s, ` +
        `accepted ${acceptedRate.toFixed(1)}/s (quota ${RATE}/s, 2 instances); ` +
        `${inWindow.filter((r) => !r.decided).length} let by undecided; ` +
        `${others.length} tenants at ${RATE / 2}/s: ${otherLogs.flat().length} requests, ${otherRefused} × 429`
    )
    expect([...statuses].sort()).toEqual([200, 429])
    expect(acceptedRate).toBeGreaterThanOrEqual(RATE * 0.9)
    expect(acceptedRate).toBeLessThanOrEqual(RATE * 1.1)
    expect(otherRefused).toBe(0)
    expect(otherLogs.flat().every((r) => r.status === 200)).toBe(true)
    // Both instances refused: the bucket is one, not one per instance.
    for (const i of [0, 1]) expect(hotLog!.some((r) => r.app === i && r.status === 429)).toBe(true)
  }, 30_000)

  test('with Redis down or frozen the limiter lets requests through instead of failing them', async () => {
    outage = await startOutageDeps()
    const app = createApp({
      ...outage.deps,
      config: { ...outage.deps.config, TENANT_RATE_LIMIT: 1 },
    })
    const tenant = newTenant()
    // Listing queues needs only PostgreSQL: any refusal here would be the limiter's own.
    outage.freeze()
    const frozen = await timed(() => call(app, 'GET', Q, { tenant }))
    expect(frozen.result.status).toBe(200)
    expect(frozen.ms).toBeLessThan(1000)
    outage.kill()
    await Bun.sleep(100)
    for (let i = 0; i < 3; i++) expect((await call(app, 'GET', Q, { tenant })).status).toBe(200)
  })
})

interface Sent {
  app: number
  sentAt: number
  status: number
  /** Whether the limiter decided (false: it did not answer in time and let the request by). */
  decided: boolean
}

/**
 * Open-loop load: `perSecond` requests a second for `durationMs`, alternating between `apps`,
 * each sent on schedule whether or not earlier ones have answered (a closed loop would slow
 * down with the server and never exceed the quota).
 */
async function drive(
  apps: AppLike[],
  jwt: string,
  perSecond: number,
  durationMs: number
): Promise<Sent[]> {
  const started = performance.now()
  const pending: Promise<Sent>[] = []
  let sent = 0
  while (performance.now() - started < durationMs) {
    const due = Math.floor(((performance.now() - started) * perSecond) / 1000)
    for (; sent < due; sent++) {
      const app = sent % apps.length
      const sentAt = performance.now()
      pending.push(
        Promise.resolve(
          apps[app]!.request(`${Q}?limit=1`, { headers: { authorization: `Bearer ${jwt}` } })
        ).then(async (res) => {
          await res.arrayBuffer()
          return { app, sentAt, status: res.status, decided: res.headers.has('ratelimit') }
        })
      )
    }
    await Bun.sleep(5)
  }
  return Promise.all(pending)
}
