import { beforeAll, describe, expect, test } from 'bun:test'
import { ErrorSchema } from '../../src/http/schemas/common'
import { BASE, call } from '../helpers/api'
import { newTenant, testApp } from '../helpers/harness'
import { mountedRoutes } from '../helpers/routes'

/*
 * The scope matrix of API.md ("Scopes, route by route"), route by route: every mounted route is
 * called with a token of each scope, and answers 403 MQ_FORBIDDEN exactly when the scope is
 * short of the route's. `mq:admin` implies every other scope. A route missing from the table
 * fails the coverage test, so a new route must be given its scope here and in API.md.
 */

const ghost = crypto.randomUUID()

type Need = 'mq:read' | 'mq:publish' | 'mq:consume' | 'mq:admin'
/** `none`: answers without credentials; `service`: service token only (a JWT is 401); `metrics-token`: METRICS_TOKEN when set. */
type Rule = Need | 'none' | 'service' | 'metrics-token'

interface Row {
  rule: Rule
  /** A request that passes validation where it can; 404s are fine, only 401/403 are judged. */
  probe: { method: string; path: string; body?: unknown }
}

const msg = { queue: 'orders', payload: 1 }
const pullSub = {
  queue: 'orders',
  consumerGroup: 'g',
  consumerName: 'c',
  subscriptionType: 'redis_consumer',
}

const MATRIX: Record<string, Row> = {
  'GET /health': { rule: 'none', probe: { method: 'GET', path: '/health' } },
  'GET /api/v1/mq/health': { rule: 'none', probe: { method: 'GET', path: `${BASE}/health` } },
  'GET /api/v1/mq/health/ping': {
    rule: 'none',
    probe: { method: 'GET', path: `${BASE}/health/ping` },
  },
  'GET /openapi.json': { rule: 'none', probe: { method: 'GET', path: '/openapi.json' } },
  'GET /docs': { rule: 'none', probe: { method: 'GET', path: '/docs' } },
  'GET /': { rule: 'none', probe: { method: 'GET', path: '/' } },
  'GET /docs/': { rule: 'none', probe: { method: 'GET', path: '/docs/' } },
  'GET /docs/scalar.js': { rule: 'none', probe: { method: 'GET', path: '/docs/scalar.js' } },
  'GET /console': { rule: 'none', probe: { method: 'GET', path: '/console' } },
  'GET /console/': { rule: 'none', probe: { method: 'GET', path: '/console/' } },
  'GET /console/app.js': { rule: 'none', probe: { method: 'GET', path: '/console/app.js' } },
  'GET /console/app.css': { rule: 'none', probe: { method: 'GET', path: '/console/app.css' } },
  'GET /metrics': { rule: 'metrics-token', probe: { method: 'GET', path: '/metrics' } },
  'GET /api/v1/mq/status': { rule: 'mq:admin', probe: { method: 'GET', path: `${BASE}/status` } },

  'POST /api/v1/mq/queues': {
    rule: 'mq:admin',
    probe: { method: 'POST', path: `${BASE}/queues`, body: { name: 'made' } },
  },
  'GET /api/v1/mq/queues': { rule: 'mq:read', probe: { method: 'GET', path: `${BASE}/queues` } },
  'GET /api/v1/mq/queues/:name': {
    rule: 'mq:read',
    probe: { method: 'GET', path: `${BASE}/queues/orders` },
  },
  'PUT /api/v1/mq/queues/:name': {
    rule: 'mq:admin',
    probe: { method: 'PUT', path: `${BASE}/queues/ghost`, body: { description: 'x' } },
  },
  'DELETE /api/v1/mq/queues/:name': {
    rule: 'mq:admin',
    probe: { method: 'DELETE', path: `${BASE}/queues/ghost` },
  },
  'POST /api/v1/mq/queues/:name/purge': {
    rule: 'mq:admin',
    probe: { method: 'POST', path: `${BASE}/queues/ghost/purge` },
  },
  'GET /api/v1/mq/queues/:name/messages': {
    rule: 'mq:read',
    probe: { method: 'GET', path: `${BASE}/queues/orders/messages` },
  },
  'POST /api/v1/mq/queues/:name/redrive': {
    rule: 'mq:admin',
    probe: { method: 'POST', path: `${BASE}/queues/ghost.dlq/redrive`, body: {} },
  },
  'GET /api/v1/mq/queues/:name/messages/:messageId': {
    rule: 'mq:read',
    probe: { method: 'GET', path: `${BASE}/queues/orders/messages/m-1` },
  },
  'DELETE /api/v1/mq/queues/:name/messages/:messageId': {
    rule: 'mq:admin',
    probe: { method: 'DELETE', path: `${BASE}/queues/orders/messages/m-1` },
  },
  'POST /api/v1/mq/queues/:name/messages/:messageId/redrive': {
    rule: 'mq:admin',
    probe: { method: 'POST', path: `${BASE}/queues/ghost.dlq/messages/m-1/redrive` },
  },

  'POST /api/v1/mq/subscriptions': {
    rule: 'mq:consume',
    probe: { method: 'POST', path: `${BASE}/subscriptions`, body: { ...pullSub, queue: 'ghost' } },
  },
  'GET /api/v1/mq/subscriptions': {
    rule: 'mq:read',
    probe: { method: 'GET', path: `${BASE}/subscriptions` },
  },
  'GET /api/v1/mq/subscriptions/:id': {
    rule: 'mq:read',
    probe: { method: 'GET', path: `${BASE}/subscriptions/${ghost}` },
  },
  'PUT /api/v1/mq/subscriptions/:id': {
    rule: 'mq:consume',
    probe: { method: 'PUT', path: `${BASE}/subscriptions/${ghost}`, body: { maxRetryAttempts: 2 } },
  },
  'DELETE /api/v1/mq/subscriptions/:id': {
    rule: 'mq:consume',
    probe: { method: 'DELETE', path: `${BASE}/subscriptions/${ghost}` },
  },
  'POST /api/v1/mq/subscriptions/:id/pause': {
    rule: 'mq:consume',
    probe: { method: 'POST', path: `${BASE}/subscriptions/${ghost}/pause` },
  },
  'POST /api/v1/mq/subscriptions/:id/resume': {
    rule: 'mq:consume',
    probe: { method: 'POST', path: `${BASE}/subscriptions/${ghost}/resume` },
  },
  'POST /api/v1/mq/subscriptions/:id/pull': {
    rule: 'mq:consume',
    probe: { method: 'POST', path: `${BASE}/subscriptions/${ghost}/pull`, body: {} },
  },
  'POST /api/v1/mq/subscriptions/:id/ack': {
    rule: 'mq:consume',
    probe: {
      method: 'POST',
      path: `${BASE}/subscriptions/${ghost}/ack`,
      body: { receipts: ['r'] },
    },
  },
  'POST /api/v1/mq/subscriptions/:id/nack': {
    rule: 'mq:consume',
    probe: {
      method: 'POST',
      path: `${BASE}/subscriptions/${ghost}/nack`,
      body: { receipts: ['r'] },
    },
  },
  'POST /api/v1/mq/subscriptions/:id/seek': {
    rule: 'mq:consume',
    probe: { method: 'POST', path: `${BASE}/subscriptions/${ghost}/seek`, body: { to: 'latest' } },
  },

  'GET /api/v1/mq/messages/:messageId': {
    rule: 'mq:read',
    probe: { method: 'GET', path: `${BASE}/messages/m-1?queue=orders` },
  },
  'DELETE /api/v1/mq/messages/:messageId': {
    rule: 'mq:publish',
    probe: { method: 'DELETE', path: `${BASE}/messages/m-1?queue=orders` },
  },

  'GET /api/v1/mq/schedules': {
    rule: 'mq:read',
    probe: { method: 'GET', path: `${BASE}/schedules` },
  },
  'GET /api/v1/mq/schedules/:id': {
    rule: 'mq:read',
    probe: { method: 'GET', path: `${BASE}/schedules/${ghost}` },
  },
  'PUT /api/v1/mq/schedules/:id': {
    rule: 'mq:publish',
    probe: { method: 'PUT', path: `${BASE}/schedules/${ghost}`, body: { maxRuns: 1 } },
  },
  'DELETE /api/v1/mq/schedules/:id': {
    rule: 'mq:publish',
    probe: { method: 'DELETE', path: `${BASE}/schedules/${ghost}` },
  },
  'POST /api/v1/mq/schedules/:id/pause': {
    rule: 'mq:publish',
    probe: { method: 'POST', path: `${BASE}/schedules/${ghost}/pause` },
  },
  'POST /api/v1/mq/schedules/:id/resume': {
    rule: 'mq:publish',
    probe: { method: 'POST', path: `${BASE}/schedules/${ghost}/resume` },
  },

  'POST /api/v1/mq/publish': {
    rule: 'mq:publish',
    probe: { method: 'POST', path: `${BASE}/publish`, body: msg },
  },
  'POST /api/v1/mq/publish/batch': {
    rule: 'mq:publish',
    probe: {
      method: 'POST',
      path: `${BASE}/publish/batch`,
      body: { queue: 'orders', messages: [{ payload: 1 }] },
    },
  },
  'POST /api/v1/mq/publish/delayed': {
    rule: 'mq:publish',
    probe: { method: 'POST', path: `${BASE}/publish/delayed`, body: { ...msg, delayMs: 60_000 } },
  },
  'POST /api/v1/mq/publish/scheduled': {
    rule: 'mq:publish',
    probe: {
      method: 'POST',
      path: `${BASE}/publish/scheduled`,
      body: { ...msg, cron: '0 8 * * *' },
    },
  },
  'POST /api/v1/mq/topics/:name/publish': {
    rule: 'mq:publish',
    probe: { method: 'POST', path: `${BASE}/topics/orders/publish`, body: { payload: 1 } },
  },

  'GET /api/v1/mq/metrics': { rule: 'mq:read', probe: { method: 'GET', path: `${BASE}/metrics` } },
  'GET /api/v1/mq/metrics/topics': {
    rule: 'mq:read',
    probe: { method: 'GET', path: `${BASE}/metrics/topics` },
  },
  'GET /api/v1/mq/metrics/consumers': {
    rule: 'mq:read',
    probe: { method: 'GET', path: `${BASE}/metrics/consumers` },
  },

  ...Object.fromEntries(
    [
      'POST /internal/mq/user-events',
      'POST /internal/mq/user-notifications',
      'POST /internal/mq/audit-logs',
      'GET /internal/mq/audit-queue-status',
      'POST /internal/mq/notifications',
      'GET /internal/mq/notification-queue',
      'GET /internal/mq/metrics',
      'GET /internal/mq/health-detailed',
    ].map((route): [string, Row] => {
      const [method, path] = route.split(' ') as [string, string]
      return [
        route,
        {
          rule: 'service',
          probe: { method, path, body: method === 'POST' ? { payload: 1 } : undefined },
        },
      ]
    })
  ),
}

const SCOPES = ['', 'mq:read', 'mq:publish', 'mq:consume', 'mq:admin'] as const

/** Whether a token holding `scope` meets `need` (mq:admin implies every scope). */
const meets = (scope: string, need: Need) => scope === 'mq:admin' || scope === need

type App = Awaited<ReturnType<typeof testApp>>

describe('the scope matrix, route by route', () => {
  let app: App
  let tenant: string
  beforeAll(async () => {
    app = await testApp()
    tenant = newTenant()
    expect(
      (await call(app, 'POST', `${BASE}/queues`, { tenant, body: { name: 'orders' } })).status
    ).toBe(201)
  })

  test('the matrix covers every route the app mounts', () => {
    expect(mountedRoutes(app).filter((r) => !(r in MATRIX))).toEqual([])
  })

  test('each route answers 403 to exactly the scopes short of its own', async () => {
    let checked = 0
    for (const [route, { rule, probe }] of Object.entries(MATRIX)) {
      for (const scope of SCOPES) {
        const res = await call(app, probe.method, probe.path, { tenant, scope, body: probe.body })
        const what = `${route} as '${scope}'`
        if (rule === 'service') {
          expect({ what, status: res.status }).toEqual({ what, status: 401 })
        } else if (rule === 'none' || rule === 'metrics-token') {
          expect({ what, forbidden: [401, 403].includes(res.status) }).toEqual({
            what,
            forbidden: false,
          })
        } else if (meets(scope, rule)) {
          expect({ what, forbidden: [401, 403].includes(res.status) }).toEqual({
            what,
            forbidden: false,
          })
        } else {
          expect({ what, status: res.status }).toEqual({ what, status: 403 })
          expect(ErrorSchema.parse(res.body).code).toBe('MQ_FORBIDDEN')
        }
        checked++
      }
    }
    console.log(`scope matrix: ${checked} requests`)
  })
})

describe('subscriptions: what mq:consume alone may not do', () => {
  const S = `${BASE}/subscriptions`
  const hook = {
    ...pullSub,
    consumerName: 'hook',
    subscriptionType: 'webhook',
    handlerConfig: { url: 'https://example.com/hook' },
  }

  async function setup() {
    const app = await testApp()
    const tenant = newTenant()
    expect(
      (await call(app, 'POST', `${BASE}/queues`, { tenant, body: { name: 'orders' } })).status
    ).toBe(201)
    return { app, tenant }
  }

  test('regression: a webhook subscription needs mq:admin to create, change, pause, resume or delete', async () => {
    const { app, tenant } = await setup()
    const refused = await call(app, 'POST', S, { tenant, scope: 'mq:consume', body: hook })
    expect([refused.status, refused.body.code]).toEqual([403, 'MQ_FORBIDDEN'])
    expect(refused.body.message).toContain('mq:admin')
    expect((await call(app, 'GET', S, { tenant })).body.items).toEqual([])

    const made = await call(app, 'POST', S, { tenant, scope: 'mq:admin', body: hook })
    expect(made.status).toBe(201)
    const id = made.body.id
    const changes: Array<[string, string, unknown]> = [
      ['PUT', `${S}/${id}`, { handlerConfig: { url: 'https://example.com/elsewhere' } }],
      ['PUT', `${S}/${id}`, { maxRetryAttempts: 2 }],
      ['POST', `${S}/${id}/pause`, undefined],
      ['POST', `${S}/${id}/resume`, undefined],
      ['DELETE', `${S}/${id}`, undefined],
    ]
    for (const [method, path, body] of changes) {
      const res = await call(app, method, path, { tenant, scope: 'mq:consume', body })
      expect({ method, path, status: res.status }).toEqual({ method, path, status: 403 })
    }
    const kept = await call(app, 'GET', `${S}/${id}`, { tenant })
    expect(kept.body).toMatchObject({
      status: 'active',
      maxRetryAttempts: 3,
      handlerConfig: { url: 'https://example.com/hook' },
    })
    for (const [method, path, body] of changes) {
      const res = await call(app, method, path, { tenant, scope: 'mq:admin', body })
      expect({ method, path, status: res.status }).toEqual({
        method,
        path,
        status: method === 'DELETE' ? 204 : 200,
      })
    }
  })

  test('regression: a dead-letter queue other than <queue>.dlq needs mq:admin; the default does not', async () => {
    const { app, tenant } = await setup()
    const own = await call(app, 'POST', S, {
      tenant,
      scope: 'mq:consume',
      body: { ...pullSub, deadLetterQueue: 'anything-i-like' },
    })
    expect([own.status, own.body.code]).toEqual([403, 'MQ_FORBIDDEN'])
    const dflt = await call(app, 'POST', S, {
      tenant,
      scope: 'mq:consume',
      body: { ...pullSub, deadLetterQueue: 'orders.dlq' },
    })
    expect(dflt.status).toBe(201)
    const id = dflt.body.id
    // Sending back what GET shows is no change of dead-letter queue.
    const same = await call(app, 'PUT', `${S}/${id}`, {
      tenant,
      scope: 'mq:consume',
      body: { deadLetterQueue: 'orders.dlq', maxRetryAttempts: 5 },
    })
    expect(same.status).toBe(200)
    const moved = await call(app, 'PUT', `${S}/${id}`, {
      tenant,
      scope: 'mq:consume',
      body: { deadLetterQueue: 'elsewhere' },
    })
    expect([moved.status, moved.body.code]).toEqual([403, 'MQ_FORBIDDEN'])
    const admin = await call(app, 'PUT', `${S}/${id}`, {
      tenant,
      scope: 'mq:admin',
      body: { deadLetterQueue: 'elsewhere' },
    })
    expect(admin.body.deadLetterQueue).toBe('elsewhere')
    // mq:consume still manages its pull subscription.
    for (const verb of ['pause', 'resume']) {
      expect(
        (await call(app, 'POST', `${S}/${id}/${verb}`, { tenant, scope: 'mq:consume' })).status
      ).toBe(200)
    }
    expect((await call(app, 'DELETE', `${S}/${id}`, { tenant, scope: 'mq:consume' })).status).toBe(
      204
    )
  })
})
