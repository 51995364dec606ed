import { describe, expect, test } from 'bun:test'
import { createApp } from '../../src/app'
import { call, newTenant, sharedDeps } from '../helpers/harness'

/*
 * Issue 20 items 5 and 6: TENANT_MAX_QUEUES holds under concurrent creates, and a tenant at
 * its limit can still dead-letter.
 */

const BASE = '/api/v1/mq'
const Q = `${BASE}/queues`

async function cappedApp(maxQueuesPerTenant: number) {
  const deps = await sharedDeps()
  return createApp({ ...deps, queueDeps: { ...deps.queueDeps, maxQueuesPerTenant } })
}

describe('TENANT_MAX_QUEUES under concurrency', () => {
  test('regression: twice the limit created at once makes exactly the limit', async () => {
    const LIMIT = 20
    const app = await cappedApp(LIMIT)
    const tenant = newTenant()
    const other = newTenant()
    const answers = await Promise.all(
      Array.from({ length: 2 * LIMIT }, (_, i) =>
        call(app, 'POST', Q, { tenant, body: { name: `q${i}` } })
      ).concat(
        // Another tenant's creates at the same time are not counted against this one.
        Array.from({ length: 5 }, (_, i) =>
          call(app, 'POST', Q, { tenant: other, body: { name: `o${i}` } })
        )
      )
    )
    const mine = answers.slice(0, 2 * LIMIT)
    expect(mine.filter((a) => a.status === 201)).toHaveLength(LIMIT)
    const refused = mine.filter((a) => a.status !== 201)
    expect(refused).toHaveLength(LIMIT)
    for (const r of refused) {
      expect(r.status).toBe(429)
      expect(r.body).toMatchObject({ code: 'MQ_RATE_LIMITED', retryAfter: 60 })
    }
    expect(answers.slice(2 * LIMIT).every((a) => a.status === 201)).toBe(true)
    const listed = await call(app, 'GET', `${Q}?limit=100`, { tenant })
    expect(listed.body.items).toHaveLength(LIMIT)
    // Room again after a delete, and only for one.
    expect((await call(app, 'DELETE', `${Q}/q0`, { tenant })).status).toBe(204)
    const again = await Promise.all(
      ['x', 'y', 'z'].map((name) => call(app, 'POST', Q, { tenant, body: { name } }))
    )
    expect(again.map((a) => a.status).sort()).toEqual([201, 429, 429])
  })
})
