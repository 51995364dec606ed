import { describe, expect, test } from 'bun:test'
import { createApp, REDIRECTS } from '../../../src/app'
import { CONSOLE_PATHS } from '../../../src/http/routes/console'
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
  test('a self-contained page: no other origin, a CSP that allows none, a script that parses', async () => {
    const app = await testApp()
    const res = await app.request('/docs')
    expect(res.status).toBe(200)
    expect(res.headers.get('content-type')).toContain('text/html')
    const csp = res.headers.get('content-security-policy') ?? ''
    expect(csp).toContain("default-src 'none'")
    expect(csp).toContain("connect-src 'self'")
    const html = await res.text()
    expect(html).not.toMatch(/(src|href)\s*=\s*["']?(https?:)?\/\//i)
    expect(html).not.toMatch(/@import|url\(/i)
    expect(html).toContain("fetch('openapi.json')")
    const script = /<script>([\s\S]*)<\/script>/.exec(html)?.[1] ?? ''
    expect(script.length).toBeGreaterThan(1000)
    expect(() => new Function(script)).not.toThrow()
  })
})

/**
 * Just enough of a browser DOM for the docs page's script: elements with attributes, text and
 * children, and the lookups the script makes.
 */
class FakeElement {
  children: FakeElement[] = []
  attributes = new Map<string, string>()
  listeners = new Map<string, (event: { target: { value: string } }) => void>()
  classes = new Set<string>()
  private text = ''
  constructor(readonly tag: string) {}
  get textContent(): string {
    return this.text + this.children.map((c) => c.textContent).join('')
  }
  set textContent(value: string) {
    this.text = value
    this.children = []
  }
  setAttribute(name: string, value: string) {
    this.attributes.set(name, value)
    if (name === 'class') for (const c of value.split(' ')) this.classes.add(c)
  }
  getAttribute(name: string) {
    return this.attributes.get(name) ?? null
  }
  appendChild(child: FakeElement) {
    this.children.push(child)
    return child
  }
  addEventListener(type: string, fn: (event: { target: { value: string } }) => void) {
    this.listeners.set(type, fn)
  }
  classList = {
    toggle: (name: string, on: boolean) =>
      on ? this.classes.add(name) : this.classes.delete(name),
  }
  all(tag: string): FakeElement[] {
    return this.children.flatMap((c) => [...(c.tag === tag ? [c] : []), ...c.all(tag)])
  }
}

describe('GET /docs renders the document', () => {
  test('every operation, its auth, parameters and schemas; the filter hides the rest', async () => {
    const app = await testApp()
    const html = await (await app.request('/docs')).text()
    const script = /<script>([\s\S]*)<\/script>/.exec(html)?.[1] ?? ''
    const spec = await documentOf(app)
    const byId = Object.fromEntries(
      ['doc', 'nav', 'error', 'filter'].map((id) => [id, new FakeElement('div')])
    )
    const document = {
      title: '',
      createElement: (tag: string) => new FakeElement(tag),
      createTextNode: (text: string) =>
        Object.assign(new FakeElement('#text'), { textContent: text }),
      getElementById: (id: string) => byId[id],
      querySelectorAll: (selector: string) => {
        expect(selector).toBe('#nav a')
        return byId.nav!.all('a')
      },
    }
    let fetched = ''
    const fetch = async (url: string) => {
      fetched = url
      return { ok: true, status: 200, json: async () => spec }
    }
    new Function('document', 'fetch', script)(document, fetch)
    await Bun.sleep(10)

    expect(fetched).toBe('openapi.json')
    expect(byId.error!.textContent).toBe('')
    const text = byId.doc!.textContent
    const ops = operations(spec)
    expect(byId.nav!.all('a')).toHaveLength(ops.length)
    for (const { path } of ops) expect(text).toContain(path)
    expect(text).toContain('Auth: bearerAuth or serviceToken + tenantId')
    expect(text).toContain('Auth: serviceToken')
    expect(text).toContain('MessageQueueMetrics')
    expect(text).toContain('receipts*')
    expect(document.title).toBe(`${spec.info.title} ${spec.info.version}`)

    byId.filter!.listeners.get('input')!({ target: { value: '/internal/mq/' } })
    const shown = byId.nav!.all('a').filter((a) => !a.classes.has('hidden'))
    expect(shown).toHaveLength(ops.filter((o) => o.path.startsWith('/internal/mq/')).length)
  })
})
