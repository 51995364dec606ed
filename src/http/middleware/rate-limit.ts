import type { Context } from 'hono'
import { createMiddleware } from 'hono/factory'
import type { TenantContext } from '../../domain/context'
import { MqError } from '../../domain/errors'
import type { RateDecision, RateLimiter } from '../../domain/ports'
import type { Logger } from '../../observability/logger'
import type { AppEnv } from '../env'

/**
 * How long the limiter may wait for Redis before letting the request through unlimited. Short,
 * because a frozen Redis must still turn a publish into a 503 within two seconds (RELIABILITY.md
 * R5): this wait plus the command connection's own 1.5 s timeout stays under that.
 */
const DECISION_TIMEOUT_MS = 250
/** A down Redis fails every request; one log line this often is enough to see it. */
const LOG_EVERY_MS = 5000

/**
 * `TENANT_RATE_LIMIT` (API.md "Limits per tenant"): each tenant caller takes one token from its
 * bucket in Redis, shared by every api instance; without one the answer is `429 MQ_RATE_LIMITED`
 * with `retryAfter` and `Retry-After` in whole seconds. Every limited answer carries the
 * `RateLimit-Policy` and `RateLimit` fields of draft-ietf-httpapi-ratelimit-headers, whose
 * `t` is exact to the second. Callers without a tenant (health, a service token's all-tenant
 * views) are not counted.
 *
 * When Redis does not answer in time the request goes through and a warning is logged (fail
 * open): the limiter guards fairness, and must not turn a Redis hiccup into an outage of every
 * route on its own account. Routes that need Redis answer 503 themselves.
 */
export const tenantRateGate = (opts: {
  limiter: RateLimiter
  ratePerSecond: number
  logger: Logger
}) => {
  let lastLogged = 0
  const policy = `"tenant";q=${opts.ratePerSecond};w=1`

  async function decide(tenantId: string): Promise<RateDecision | null> {
    let timer: ReturnType<typeof setTimeout> | undefined
    const timeout = new Promise<null>((resolve) => {
      timer = setTimeout(() => resolve(null), DECISION_TIMEOUT_MS)
    })
    try {
      const decision = await Promise.race([
        opts.limiter.take(tenantId, opts.ratePerSecond),
        timeout,
      ])
      if (decision === null) throw new Error(`no answer within ${DECISION_TIMEOUT_MS} ms`)
      return decision
    } catch (err) {
      if (Date.now() - lastLogged > LOG_EVERY_MS) {
        lastLogged = Date.now()
        opts.logger.warn({ err: (err as Error).message }, 'rate limiter unavailable, not limiting')
      }
      return null
    } finally {
      clearTimeout(timer)
    }
  }

  /**
   * Takes one of the tenant's tokens, or throws 429; for routes that learn their tenant in the
   * handler (the internal API names it in the body).
   */
  async function admit(c: Context<AppEnv>, tenantId: string): Promise<void> {
    const decision = await decide(tenantId)
    if (decision) {
      const waitMs = decision.allowed ? decision.resetMs : decision.retryAfterMs
      c.header('RateLimit-Policy', policy)
      c.header('RateLimit', `"tenant";r=${decision.remaining};t=${Math.ceil(waitMs / 1000)}`)
      if (!decision.allowed) {
        throw new MqError(
          'MQ_RATE_LIMITED',
          `over the tenant's limit of ${opts.ratePerSecond} requests per second`,
          { limit: opts.ratePerSecond },
          Math.max(1, Math.ceil(decision.retryAfterMs / 1000))
        )
      }
    }
  }

  const middleware = createMiddleware<AppEnv>(async (c, next) => {
    // Unset on the public paths, which skip authentication; a service token naming no tenant
    // has no bucket to draw from.
    const tenant = c.get('tenant') as TenantContext | undefined
    if (tenant) await admit(c, tenant.tenantId)
    await next()
  })
  return { admit, middleware }
}

export type TenantRateGate = ReturnType<typeof tenantRateGate>
