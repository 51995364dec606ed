import { describe, expect, test } from 'bun:test'
import { Hono } from 'hono'
import type { AppEnv } from '../../src/http/env'
import { createErrorHandler } from '../../src/http/errors'
import { requestDeadline } from '../../src/http/middleware/deadline'
import { createLogger } from '../../src/observability/logger'

/** An app whose handlers take `ms` (from the query) to answer, behind a 100 ms deadline. */
function slowApp() {
  const app = new Hono<AppEnv>()
  app.use('*', requestDeadline(100, 300))
  const slow = async (c: {
    req: { query(k: string): string | undefined }
    text(t: string): Response
  }) => {
    await Bun.sleep(Number(c.req.query('ms')))
    return c.text('done')
  }
  app.get('/x', slow)
  app.post('/subscriptions/s/pull', slow)
  app.onError(createErrorHandler(createLogger('silent')))
  return app
}

describe('request deadline', () => {
  test('a request past its deadline is 503 MQ_UNAVAILABLE with Retry-After; one in time is not', async () => {
    const app = slowApp()
    const started = performance.now()
    const late = await app.request('/x?ms=2000')
    expect(performance.now() - started).toBeLessThan(1000)
    expect(late.status).toBe(503)
    expect(late.headers.get('retry-after')).toBe('1')
    expect(await late.json()).toMatchObject({ code: 'MQ_UNAVAILABLE', retryAfter: 1 })
    expect((await app.request('/x?ms=10')).status).toBe(200)
  })

  test('requests in flight together each meet their own deadline, whichever answers first', async () => {
    const app = slowApp()
    const started = performance.now()
    const statuses = await Promise.all(
      [2000, 10, 2000, 50].map(async (ms) => (await app.request(`/x?ms=${ms}`)).status)
    )
    expect(performance.now() - started).toBeLessThan(1000)
    expect(statuses).toEqual([503, 200, 503, 200])
    // A request after the others expired is timed from its own start.
    expect((await app.request('/x?ms=60')).status).toBe(200)
  })

  test('a pull has its longest wait on top of the deadline', async () => {
    const app = slowApp()
    expect((await app.request('/subscriptions/s/pull?ms=250', { method: 'POST' })).status).toBe(200)
    expect((await app.request('/subscriptions/s/pull?ms=600', { method: 'POST' })).status).toBe(503)
  })
})
