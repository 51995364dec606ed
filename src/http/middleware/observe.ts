import type { Context } from 'hono'
import { createMiddleware } from 'hono/factory'
import { matchedRoutes } from 'hono/route'
import { type Logger, unredacted } from '../../observability/logger'
import type { Metrics } from '../../observability/metrics'
import type { AppEnv } from '../env'

/** Probes hit every few seconds: logged at debug, so `info` shows traffic, not health checks. */
const PROBE_ROUTES = new Set(['/health', '/metrics', '/api/v1/mq/health', '/api/v1/mq/health/ping'])

/**
 * The pattern of the route that answered (`/api/v1/mq/queues/:name`), never the raw path, so
 * queue names and ids stay out of labels. `c.req.routePath` would name the middleware running
 * it (`*`); the handler is the last matched route that is not middleware. A request no
 * handler matched is `unmatched`.
 */
export function routeLabel(c: Context): string {
  return matchedRoutes(c).findLast((r) => r.method !== 'ALL')?.path ?? 'unmatched'
}

/**
 * One wide log line and one metrics observation per request, with the request id, tenant,
 * route pattern, method, status and duration. Headers, bodies and query strings are never
 * logged: they carry tokens and payloads.
 *
 * Hono passes only Error instances to onError; anything else thrown would escape the app and
 * reach the client as the runtime's own 500 page instead of the contract's envelope, so it is
 * wrapped in an Error here (in this middleware rather than one of its own: each layer costs
 * every request a dispatch).
 */
export const observeRequests = (deps: {
  logger: Logger
  metrics: Pick<Metrics, 'observeHttp'>
}) => {
  const log = unredacted(deps.logger)
  return createMiddleware<AppEnv>(async (c, next) => {
    const start = performance.now()
    let status = 500
    try {
      await next()
      status = c.res.status
    } catch (err) {
      throw err instanceof Error ? err : new Error('a non-Error value was thrown', { cause: err })
    } finally {
      const ms = performance.now() - start
      const route = routeLabel(c)
      deps.metrics.observeHttp(c.req.method, route, status, ms / 1000)
      log[PROBE_ROUTES.has(route) ? 'debug' : 'info'](
        {
          requestId: c.get('requestId'),
          tenantId: c.get('tenant')?.tenantId ?? null,
          method: c.req.method,
          route,
          status,
          durationMs: Math.round(ms * 10) / 10,
        },
        'request'
      )
    }
  })
}
