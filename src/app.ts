import { OpenAPIHono } from '@hono/zod-openapi'
import { requestId } from 'hono/request-id'
import { MqError } from './domain/errors'
import type { AppEnv } from './http/env'
import { createErrorHandler, notFoundHandler } from './http/errors'
import { authenticate } from './http/middleware/auth'
import { limitBody } from './http/middleware/body-limit'
import { requestDeadline } from './http/middleware/deadline'
import { limitHeaders } from './http/middleware/header-limit'
import { observeRequests } from './http/middleware/observe'
import { tenantRateGate } from './http/middleware/rate-limit'
import { API_BASE, type ApiSchema, type AppDeps, apiMounts } from './http/mounts'
import { mountConsole } from './http/routes/console'
import { mountDocs } from './http/routes/docs'
import { PULL_MAX_WAIT_MS } from './http/schemas/consume'
import { MAX_HEADER_BYTES } from './http/server'

export { API_BASE }

/**
 * Pages a person types by hand, sent where they are: the bare address to the console, and
 * `/docs/` to `/docs` (the page loads `openapi.json` relative to itself, which under `/docs/`
 * would be `/docs/openapi.json`).
 */
export const REDIRECTS: Readonly<Record<string, string>> = { '/': '/console', '/docs/': '/docs' }

/** Paths under the API base that answer without credentials. */
const PUBLIC_PATHS = new Set([`${API_BASE}/health`, `${API_BASE}/health/ping`])

/** How long a request under the API base may take before it answers 503 (pulls: plus their wait). */
const REQUEST_DEADLINE_MS = 10_000

/**
 * Builds the HTTP app. No side effects: it connects and listens to nothing, so tests build it
 * around their own dependencies and call `app.request()`.
 */
export function createApp(deps: AppDeps) {
  const app = new OpenAPIHono<AppEnv>()
  const auth = authenticate(deps.auth)

  app.use(
    '*',
    requestId({ headerName: 'X-Request-Id' }),
    // Before the body limit, so the 413s it throws are logged and counted too.
    observeRequests(deps),
    limitHeaders(MAX_HEADER_BYTES),
    // Checked before any handler, for declared and chunked bodies alike.
    limitBody({
      maxSize: deps.config.MAX_REQUEST_SIZE,
      onError: () => {
        throw new MqError(
          'MQ_MESSAGE_TOO_LARGE',
          `request body is over ${deps.config.MAX_REQUEST_SIZE} bytes`,
          { limit: deps.config.MAX_REQUEST_SIZE }
        )
      },
    })
  )
  app.use(`${API_BASE}/*`, requestDeadline(REQUEST_DEADLINE_MS, PULL_MAX_WAIT_MS))
  app.use(`${API_BASE}/*`, (c, next) => (PUBLIC_PATHS.has(c.req.path) ? next() : auth(c, next)))
  const rateGate =
    deps.config.TENANT_RATE_LIMIT > 0
      ? tenantRateGate({
          limiter: deps.rateLimiter,
          ratePerSecond: deps.config.TENANT_RATE_LIMIT,
          logger: deps.logger,
        })
      : undefined
  if (rateGate) app.use(`${API_BASE}/*`, rateGate.middleware)

  for (const mount of apiMounts(deps, rateGate?.admit)) if (mount) app.route(mount[0], mount[1])

  mountDocs(app)
  mountConsole(app)
  for (const [from, to] of Object.entries(REDIRECTS)) app.get(from, (c) => c.redirect(to, 302))

  app.onError(createErrorHandler(deps.logger))
  app.notFound(notFoundHandler)
  return app
}

/** The app's routes as types: `hc<App>(url)` from `hono/client` is a typed client. */
export type App = OpenAPIHono<AppEnv, ApiSchema>
