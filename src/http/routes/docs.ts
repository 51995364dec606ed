import type { OpenAPIHono } from '@hono/zod-openapi'
import pkg from '../../../package.json' with { type: 'json' }
import { DOCS_PAGE, SCALAR_BUNDLE_PATH, scalarBundleFile } from '../docs-page'
import type { AppEnv } from '../env'
import { OPERATIONS } from '../operations'

/** Whoever calls the tenant routes by default (routes that differ declare their own). */
const TENANT_SECURITY: Array<Record<string, string[]>> = [
  { bearerAuth: [] },
  { serviceToken: [], tenantId: [] },
]

/** How callers prove themselves (API.md "Authentication and tenancy"). */
const SECURITY_SCHEMES = {
  bearerAuth: {
    type: 'http',
    scheme: 'bearer',
    bearerFormat: 'JWT',
    description: 'A JWT from the auth service; claim `tid` is the tenant, `scope` the scopes',
  },
  serviceToken: {
    type: 'apiKey',
    in: 'header',
    name: 'X-Service-Token',
    description: 'INTERNAL_SERVICE_TOKEN of another platform service',
  },
  tenantId: {
    type: 'apiKey',
    in: 'header',
    name: 'X-Tenant-Id',
    description: 'With a service token: the tenant the call acts for, with every scope',
  },
  metricsToken: { type: 'http', scheme: 'bearer', description: 'METRICS_TOKEN, when it is set' },
} as const

type Document = ReturnType<OpenAPIHono<AppEnv>['getOpenAPI31Document']>

/** Adds each operation's id and description from OPERATIONS (an operation missing there keeps none). */
function describeOperations(document: Document): Document {
  for (const [path, item] of Object.entries(document.paths ?? {})) {
    for (const method of ['get', 'put', 'post', 'delete', 'patch'] as const) {
      const operation = item[method]
      const known = OPERATIONS[`${method.toUpperCase()} ${path}`]
      if (operation && known) {
        operation.operationId = known.id
        operation.description = known.description
      }
    }
  }
  return document
}

/**
 * Scripts from this service (the bundle and the page's one line that starts it), styles the
 * bundle injects, and requests to this service only: the document and try-it calls.
 */
const DOCS_CSP =
  "default-src 'none'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; " +
  "connect-src 'self'; img-src 'self' data:; font-src 'self' data:"

/**
 * Mounts `GET /openapi.json` (OpenAPI 3.1 from the routes' own zod schemas) and `GET /docs`
 * on `app`. The document is generated on first request and kept: generating it on every
 * request grows the registry's memory (OpenStatus saw this leak), and routes do not change
 * after start-up. Call it after every router is mounted.
 */
export function mountDocs(app: OpenAPIHono<AppEnv>): void {
  for (const [name, scheme] of Object.entries(SECURITY_SCHEMES)) {
    app.openAPIRegistry.registerComponent('securitySchemes', name, scheme)
  }

  let document: string | undefined
  app.get('/openapi.json', (c) => {
    document ??= JSON.stringify(
      describeOperations(
        app.getOpenAPI31Document({
          openapi: '3.1.0',
          info: {
            title: 'Message queue service',
            version: pkg.version,
            description:
              'Multi-tenant message queue over Redis Streams. Errors have one body, the `Error` schema.',
            // OpenAPI 3.1's SPDX `identifier`, which the generator's 3.0-era type lacks.
            license: { name: 'Proprietary', identifier: 'LicenseRef-Proprietary' } as {
              name: string
            },
          },
          // Relative: the document names whichever host and port served it.
          servers: [{ url: '/', description: 'this service' }],
          security: TENANT_SECURITY,
        })
      )
    )
    return c.body(document, 200, { 'content-type': 'application/json; charset=utf-8' })
  })
  app.get('/docs', (c) => c.html(DOCS_PAGE, 200, { 'content-security-policy': DOCS_CSP }))
  app.get(SCALAR_BUNDLE_PATH, (c) =>
    c.body(scalarBundleFile().stream(), 200, {
      'content-type': 'text/javascript; charset=utf-8',
      'cache-control': 'public, max-age=86400',
    })
  )
}
