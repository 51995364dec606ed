import { describe, expect, test } from 'bun:test'
import { ErrorSchema } from '../../src/http/schemas/common'
import { BASE, call, expectError } from '../helpers/api'
import { fuzzRoutes } from '../helpers/fuzz'
import { newTenant, SERVICE_TOKEN, testApp, token } from '../helpers/harness'

/** Cases per route; `FUZZ_RUNS` raises it (the chaos suite runs 1,000). */
const RUNS = Number(process.env.FUZZ_RUNS ?? 200)

describe('fuzzing every route (S6)', () => {
  test(`${RUNS} cases per route: no 5xx, every error in the envelope, nothing internal shown`, async () => {
    const app = await testApp()
    const escaped: unknown[] = []
    const onEscape = (err: unknown) => escaped.push(err)
    process.on('unhandledRejection', onEscape)
    process.on('uncaughtException', onEscape)
    const prototypeKeys = Object.getOwnPropertyNames(Object.prototype)
    const started = performance.now()
    try {
      const reports = await fuzzRoutes(app, { runs: RUNS })
      const requests = reports.reduce(
        (n, r) => n + Object.values(r.statuses).reduce((a, b) => a + b, 0),
        0
      )
      const seconds = ((performance.now() - started) / 1000).toFixed(1)
      console.log(`S6: ${reports.length} routes, ${requests} requests, ${seconds} s`)
      expect(reports.filter((r) => r.failure)).toEqual([])
    } finally {
      process.off('unhandledRejection', onEscape)
      process.off('uncaughtException', onEscape)
    }
    expect(escaped).toEqual([])
    expect(Object.getOwnPropertyNames(Object.prototype)).toEqual(prototypeKeys)
    expect(({} as Record<string, unknown>).polluted).toBeUndefined()
  }, 600_000)
})

/** Shrunk counter-examples the fuzzer found, each a 500 before its fix. */
describe('regressions found by fuzzing', () => {
  test('a NUL character PostgreSQL cannot store is 400, not 500 (query, path and body)', async () => {
    const app = await testApp()
    const tenant = newTenant()
    await call(app, 'POST', `${BASE}/queues`, { tenant, body: { name: 'fz' } })
    const body = expectError(
      await call(app, 'GET', `${BASE}/queues?prefix=%00`, { tenant }),
      400,
      'MQ_VALIDATION_FAILED'
    )
    expect(body.message).not.toMatch(/select|message_topics|\$1/)
    const described = await call(app, 'POST', `${BASE}/queues`, {
      tenant,
      body: { name: 'nul', description: 'a\u0000b' },
    })
    expectError(described, 400, 'MQ_VALIDATION_FAILED')
    expect((await call(app, 'GET', `${BASE}/queues/nul`, { tenant })).status).toBe(404)
    const lookedUp = await call(app, 'GET', `${BASE}/messages/%00?queue=fz`, { tenant })
    expect([400, 404]).toContain(lookedUp.status)
    ErrorSchema.parse(lookedUp.body)
  })

  test('maxRuns past PostgreSQL’s integer range is 400 naming maxRuns', async () => {
    const app = await testApp()
    const tenant = newTenant()
    await call(app, 'POST', `${BASE}/queues`, { tenant, body: { name: 'fz' } })
    const schedule = { queue: 'fz', payload: 1, cron: '0 0 1 1 *' }
    const created = await call(app, 'POST', `${BASE}/publish/scheduled`, {
      tenant,
      body: { ...schedule, maxRuns: 3_000_000_000 },
    })
    expect(expectError(created, 400, 'MQ_VALIDATION_FAILED').message).toStartWith('maxRuns')
    const ok = await call(app, 'POST', `${BASE}/publish/scheduled`, { tenant, body: schedule })
    const updated = await call(app, 'PUT', `${BASE}/schedules/${ok.body.id}`, {
      tenant,
      body: { maxRuns: 1_000_000_000_000 },
    })
    expect(expectError(updated, 400, 'MQ_VALIDATION_FAILED').message).toStartWith('maxRuns')
    const fits = await call(app, 'PUT', `${BASE}/schedules/${ok.body.id}`, {
      tenant,
      body: { maxRuns: 2_147_483_647 },
    })
    expect(fits.status).toBe(200)
  })

  test('JSON nested past 1,000 levels is 400 at once (JSON.stringify took seconds, then overflowed)', async () => {
    const app = await testApp()
    const tenant = newTenant()
    const bearer = { authorization: `Bearer ${await token(tenant)}` }
    await call(app, 'POST', `${BASE}/queues`, { tenant, body: { name: 'fz' } })
    const nested = (n: number) => `${'{"a":'.repeat(n)}1${'}'.repeat(n)}`
    const arrays = (n: number) => `${'['.repeat(n)}${']'.repeat(n)}`
    const send = (path: string, body: string, headers: Record<string, string> = bearer) =>
      app.request(path, {
        method: 'POST',
        headers: { ...headers, 'content-type': 'application/json' },
        body,
      })
    const service = { 'x-service-token': SERVICE_TOKEN, 'x-tenant-id': tenant }
    for (const [path, body, headers] of [
      [`${BASE}/publish`, `{"queue":"fz","payload":${nested(50_000)}}`, bearer],
      [`${BASE}/publish`, `{"queue":"fz","payload":${arrays(1001)}}`, bearer],
      ['/internal/mq/user-events', `{"payload":${arrays(100_000)}}`, service],
      [`${BASE}/queues`, `{"name":"deep","schema":{"a":${arrays(50_000)}}}`, bearer],
    ] as const) {
      const started = performance.now()
      const res = await send(path, body, headers)
      const answer = ErrorSchema.parse(await res.json())
      expect({ path, status: res.status, code: answer.code }).toEqual({
        path,
        status: 400,
        code: 'MQ_VALIDATION_FAILED',
      })
      // A queue's schema has a bound of its own, far below (issue 20).
      expect(answer.message).toMatch(/nested deeper than (1000|64) levels/)
      expect(performance.now() - started).toBeLessThan(1000)
    }
    expect((await send(`${BASE}/publish`, `{"queue":"fz","payload":${arrays(1000)}}`)).status).toBe(
      201
    )
  })
})
