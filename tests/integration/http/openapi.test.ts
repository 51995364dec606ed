import { describe, expect, test } from 'bun:test'
import { createApp, REDIRECTS } from '../../../src/app'
import { SCALAR_BUNDLE_PATH } from '../../../src/http/docs-page'
import { CONSOLE_PATHS } from '../../../src/http/routes/console'
import {
  AckBody,
  AckResultSchema,
  NackBody,
  NackResultSchema,
  PullBody,
  PullResultSchema,
  SeekBody,
} from '../../../src/http/schemas/consume'
import { InternalPublishBody } from '../../../src/http/schemas/internal'
import { RedriveBody } from '../../../src/http/schemas/messages'
import {
  batchBody,
  DelayedBody,
  MessageBody,
  PublishBody,
  PublishResultSchema,
  ScheduledBody,
} from '../../../src/http/schemas/publish'
import { CreateQueueBody, UpdateQueueBody } from '../../../src/http/schemas/queues'
import { UpdateScheduleBody } from '../../../src/http/schemas/schedules'
import {
  CreateSubscriptionBody,
  UpdateSubscriptionBody,
} from '../../../src/http/schemas/subscriptions'
import { sharedDeps, testApp } from '../../helpers/harness'

interface Operation {
  security?: Array<Record<string, string[]>>
  responses: Record<string, { content?: Record<string, { schema: { $ref?: string } }> }>
}
type Document = {
  openapi: string
  info: { title: string; version: string }
  security: Array<Record<string, string[]>>
  paths: Record<string, Record<string, Operation>>
  components: { schemas: Record<string, unknown>; securitySchemes: Record<string, unknown> }
}

/** Served by the app itself, not API operations: the document, its page and the console. */
const NOT_OPERATIONS = new Set([
  '/openapi.json',
  '/docs',
  SCALAR_BUNDLE_PATH,
  ...Object.values(CONSOLE_PATHS),
  ...Object.keys(REDIRECTS),
])

async function documentOf(app: { request: (p: string) => Response | Promise<Response> }) {
  const res = await app.request('/openapi.json')
  expect(res.status).toBe(200)
  return (await res.json()) as Document
}

/** Mounted routes (method and path, as the document spells paths) missing from `doc`. */
function undocumented(app: { routes: Array<{ method: string; path: string }> }, doc: Document) {
  const documented = new Set(
    operations(doc).map(({ path, method }) => `${method.toUpperCase()} ${path}`)
  )
  return app.routes
    .filter((r) => r.method !== 'ALL' && !NOT_OPERATIONS.has(r.path))
    .map((r) => `${r.method} ${r.path.replace(/:([^/]+)/g, '{$1}')}`)
    .filter((r) => !documented.has(r))
}

const operations = (doc: Document) =>
  Object.entries(doc.paths).flatMap(([path, ops]) =>
    Object.entries(ops).map(([method, op]) => ({ path, method, op }))
  )

describe('OpenAPI document', () => {
  test('every route the app mounts is in the document (but /openapi.json, /docs, /console)', async () => {
    const app = await testApp()
    const doc = await documentOf(app)
    expect(undocumented(app, doc)).toEqual([])
    const mounted = new Set(
      app.routes.map((r) => `${r.method} ${r.path.replace(/:([^/]+)/g, '{$1}')}`)
    )
    const documented = operations(doc).map(({ path, method }) => `${method.toUpperCase()} ${path}`)
    expect(documented.filter((r) => !mounted.has(r))).toEqual([])
    for (const route of [
      'GET /metrics',
      'GET /api/v1/mq/metrics/topics',
      'POST /internal/mq/user-events',
      'GET /internal/mq/health-detailed',
      'GET /health',
    ]) {
      expect(documented).toContain(route)
    }
  })

  test('a route mounted without createRoute is caught', async () => {
    const app = createApp(await sharedDeps())
    app.get('/api/v1/mq/undeclared/:id', (c) => c.text('hidden'))
    expect(undocumented(app, await documentOf(app))).toEqual(['GET /api/v1/mq/undeclared/{id}'])
  })

  test('OpenAPI 3.1 with security schemes, a default and per-route security', async () => {
    const doc = await documentOf(await testApp())
    expect(doc.openapi).toBe('3.1.0')
    expect(doc.info.version).toMatch(/^\d+\.\d+\.\d+/)
    expect(Object.keys(doc.components.securitySchemes).sort()).toEqual([
      'bearerAuth',
      'metricsToken',
      'serviceToken',
      'tenantId',
    ])
    expect(doc.components.securitySchemes.serviceToken).toMatchObject({
      type: 'apiKey',
      in: 'header',
      name: 'X-Service-Token',
    })
    expect(doc.security).toEqual([{ bearerAuth: [] }, { serviceToken: [], tenantId: [] }])
    for (const { path, op } of operations(doc)) {
      if (path.startsWith('/internal/mq/')) expect(op.security).toEqual([{ serviceToken: [] }])
      else if (path === '/health' || path.startsWith('/api/v1/mq/health'))
        expect(op.security).toEqual([])
      else if (path === '/metrics') expect(op.security).toEqual([{}, { metricsToken: [] }])
      else expect(op.security).toBeUndefined()
    }
  })

  test('every error answer has the contract’s error body', async () => {
    const doc = await documentOf(await testApp())
    expect(doc.components.schemas.Error).toMatchObject({
      type: 'object',
      required: expect.arrayContaining(['code', 'message', 'requestId']),
    })
    for (const { path, method, op } of operations(doc)) {
      const errors = Object.entries(op.responses).filter(([status]) => Number(status) >= 400)
      const health =
        path === '/health' || path.endsWith('/health') || path.endsWith('/health-detailed')
      if (!health) expect({ path, method, errors: errors.length }).not.toMatchObject({ errors: 0 })
      for (const [status, response] of errors) {
        const schema = response.content?.['application/json']?.schema
        if (health && status === '503') continue
        expect({ path, method, status, ref: schema?.$ref }).toEqual({
          path,
          method,
          status,
          ref: '#/components/schemas/Error',
        })
      }
    }
  })

  test('is built once and served from the cache', async () => {
    const deps = await sharedDeps()
    const app = createApp(deps)
    let built = 0
    const generate = app.getOpenAPI31Document
    app.getOpenAPI31Document = (...args) => {
      built++
      return generate(...args)
    }
    const bodies = await Promise.all(
      [1, 2, 3].map(async () => (await app.request('/openapi.json')).text())
    )
    expect(built).toBe(1)
    expect(new Set(bodies).size).toBe(1)
  })
})

describe('GET /docs', () => {
  test('Scalar from this service: no other origin, a CSP that allows none, the bundle served', async () => {
    const app = await testApp()
    const res = await app.request('/docs')
    expect(res.status).toBe(200)
    expect(res.headers.get('content-type')).toContain('text/html')
    const csp = res.headers.get('content-security-policy') ?? ''
    expect(csp).toContain("default-src 'none'")
    expect(csp).toContain("connect-src 'self'")
    expect(csp).not.toMatch(/https?:/)
    const html = await res.text()
    expect(html).not.toMatch(/(src|href)\s*=\s*["']?(https?:)?\/\//i)
    expect(html).toContain(`<script src="${SCALAR_BUNDLE_PATH}"></script>`)
    const config = JSON.parse(/createApiReference\('#app', (\{.*\})\)/.exec(html)?.[1] ?? '{}')
    expect(config).toMatchObject({
      url: '/openapi.json',
      withDefaultFonts: false,
      telemetry: false,
    })

    const bundle = await app.request(SCALAR_BUNDLE_PATH)
    expect(bundle.status).toBe(200)
    expect(bundle.headers.get('content-type')).toContain('javascript')
    const source = await bundle.text()
    expect(source.length).toBeGreaterThan(1_000_000)
    expect(source).toContain('createApiReference')
  })
})

describe('OpenAPI document for client generators', () => {
  test('servers, a license, and on every operation a unique operationId, a description and a 4xx answer', async () => {
    const doc = (await documentOf(await testApp())) as Document & {
      servers?: Array<{ url: string }>
      info: { license?: { name: string } }
    }
    expect(doc.servers?.[0]?.url).toBe('/')
    expect(doc.info.license?.name).toBeTruthy()
    const ops = operations(doc).map(({ path, method, op }) => ({
      path,
      method,
      ...(op as Operation & { operationId?: string; description?: string }),
    }))
    const missing = ops
      .filter((o) => !o.operationId || !o.description)
      .map((o) => `${o.method} ${o.path}`)
    expect(missing).toEqual([])
    const ids = ops.map((o) => o.operationId)
    expect(new Set(ids).size).toBe(ids.length)
    expect(ids).toEqual(expect.arrayContaining(['publishMessage', 'pullMessages', 'ackMessages']))
    const without4xx = ops
      .filter((o) => !Object.keys(o.responses).some((s) => s.startsWith('4')))
      .map((o) => `${o.method} ${o.path}`)
    expect(without4xx).toEqual([])
  })
})

describe('OpenAPI examples', () => {
  test('every JSON request body has an example, and each example passes its own schema', async () => {
    const doc = (await documentOf(await testApp())) as Document & {
      paths: Record<
        string,
        Record<string, { requestBody?: { content: Record<string, { schema: { $ref?: string } }> } }>
      >
    }
    const schemas = doc.components.schemas as Record<string, { example?: unknown }>
    const withoutExample = Object.entries(doc.paths).flatMap(([path, ops]) =>
      Object.entries(ops).flatMap(([method, op]) => {
        const ref = op.requestBody?.content['application/json']?.schema.$ref
        if (!op.requestBody) return []
        const name = ref?.replace('#/components/schemas/', '')
        return name && schemas[name]?.example !== undefined ? [] : [`${method} ${path}`]
      })
    )
    expect(withoutExample).toEqual([])

    const zod: Record<string, { safeParse(v: unknown): { success: boolean } }> = {
      PublishMessage: PublishBody,
      PublishBatch: batchBody(1000),
      PublishDelayed: DelayedBody,
      PublishScheduled: ScheduledBody,
      Message: MessageBody,
      PublishResult: PublishResultSchema,
      PullRequest: PullBody,
      AckRequest: AckBody,
      NackRequest: NackBody,
      SeekRequest: SeekBody,
      PullResult: PullResultSchema,
      AckResult: AckResultSchema,
      NackResult: NackResultSchema,
      CreateQueue: CreateQueueBody,
      UpdateQueue: UpdateQueueBody,
      CreateSubscription: CreateSubscriptionBody,
      UpdateSubscription: UpdateSubscriptionBody,
      UpdateSchedule: UpdateScheduleBody,
      InternalPublish: InternalPublishBody,
      RedriveRequest: RedriveBody,
    }
    const invalid = Object.entries(zod)
      .filter(([name, schema]) => !schema.safeParse(schemas[name]?.example).success)
      .map(([name]) => name)
    expect(invalid).toEqual([])
  })
})
