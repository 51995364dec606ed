import { describe, expect, test } from 'bun:test'
import { createApp } from '../../../src/app'
import { createLogger } from '../../../src/observability/logger'
import { BASE } from '../../helpers/api'
import { newTenant, SERVICE_TOKEN, sharedDeps, token } from '../../helpers/harness'

const MARKER = 'payload-marker-7f3a'

/** An app whose logger writes to memory at `level`; @returns it and the lines written. */
async function capturing(level: string) {
  const raw: string[] = []
  const logger = createLogger(level, { write: (line: string) => raw.push(line) })
  const app = createApp({ ...(await sharedDeps()), logger })
  const requestLines = () =>
    raw.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.msg === 'request')
  return { app, raw, requestLines }
}

async function send(
  app: { request: (path: string, init?: RequestInit) => Response | Promise<Response> },
  method: string,
  path: string,
  headers: Record<string, string> = {},
  body?: unknown
) {
  const res = await app.request(path, {
    method,
    headers: body === undefined ? headers : { 'content-type': 'application/json', ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  })
  await res.arrayBuffer()
  return res
}

describe('request logs', () => {
  test('one JSON line per request with id, tenant, route pattern, method, status and duration', async () => {
    const { app, requestLines } = await capturing('info')
    const tenant = newTenant()
    const jwt = await token(tenant)
    const auth = { authorization: `Bearer ${jwt}` }
    const queue = `q-${MARKER}`

    const created = await send(app, 'POST', `${BASE}/queues`, auth, { name: queue })
    const published = await send(app, 'POST', `${BASE}/publish`, auth, {
      queue,
      payload: { note: MARKER },
      headers: { 'x-secret': MARKER },
    })
    const internal = await send(
      app,
      'POST',
      '/internal/mq/user-events',
      { 'x-service-token': SERVICE_TOKEN },
      { tenantId: tenant, payload: MARKER }
    )
    const refused = await send(app, 'GET', `${BASE}/queues/${queue}`, {
      authorization: 'Bearer not-a-token',
    })
    const invalid = await send(app, 'POST', `${BASE}/publish`, auth, {
      queue,
      payload: 1,
      [MARKER]: 1,
    })
    const unmatched = await send(app, 'GET', `/nowhere/${MARKER}`)

    const lines = requestLines()
    expect(lines).toHaveLength(6)
    const expected = [
      [created, tenant, 'POST', '/api/v1/mq/queues', 201],
      [published, tenant, 'POST', '/api/v1/mq/publish', 201],
      [internal, tenant, 'POST', '/internal/mq/user-events', 201],
      [refused, null, 'GET', '/api/v1/mq/queues/:name', 401],
      [invalid, tenant, 'POST', '/api/v1/mq/publish', 400],
      [unmatched, null, 'GET', 'unmatched', 404],
    ] as const
    expected.forEach(([res, tenantId, method, route, status], i) => {
      expect(res.status).toBe(status)
      expect(lines[i]).toMatchObject({
        level: 30,
        service: 'message-queue-service',
        requestId: res.headers.get('x-request-id'),
        tenantId,
        method,
        route,
        status,
        durationMs: expect.any(Number),
      })
      expect(Date.parse(String(lines[i]?.time))).not.toBeNaN()
    })
  })

  test('never a payload, header value, queue name from the path, token or service token', async () => {
    const { app, raw } = await capturing('trace')
    const tenant = newTenant()
    const jwt = await token(tenant)
    const auth = { authorization: `Bearer ${jwt}` }
    await send(app, 'POST', `${BASE}/queues`, auth, { name: 'orders' })
    await send(app, 'POST', `${BASE}/publish`, auth, {
      queue: 'orders',
      payload: { card: MARKER },
      headers: { authorization: MARKER },
    })
    await send(app, 'GET', `${BASE}/queues/${MARKER}`, auth)
    await send(
      app,
      'POST',
      '/internal/mq/audit-logs',
      { 'x-service-token': SERVICE_TOKEN, 'x-tenant-id': tenant },
      { payload: MARKER }
    )
    await send(app, 'GET', '/internal/mq/metrics', { 'x-service-token': `${SERVICE_TOKEN}-wrong` })

    const text = raw.join('')
    expect(raw.length).toBeGreaterThanOrEqual(5)
    expect(text).not.toContain(MARKER)
    expect(text).not.toContain(jwt)
    expect(text).not.toContain(jwt.split('.')[2]!)
    expect(text).not.toContain(SERVICE_TOKEN)
    expect(text.toLowerCase()).not.toContain('bearer')
  })

  test('LOG_LEVEL is respected: warn drops request lines; probes show only at debug', async () => {
    const quiet = await capturing('warn')
    await send(quiet.app, 'GET', `${BASE}/queues`, {
      authorization: `Bearer ${await token(newTenant())}`,
    })
    await send(quiet.app, 'GET', '/nowhere')
    expect(quiet.raw).toEqual([])

    const info = await capturing('info')
    await send(info.app, 'GET', '/health')
    await send(info.app, 'GET', '/metrics')
    expect(info.requestLines()).toEqual([])

    const debug = await capturing('debug')
    await send(debug.app, 'GET', '/health')
    expect(debug.requestLines()).toEqual([
      expect.objectContaining({ level: 20, route: '/health', status: 200 }),
    ])
  })
})
