import type { MiddlewareHandler } from 'hono'
import { unavailable } from '../../domain/errors'
import type { AppEnv } from '../env'

/**
 * Answers `503 MQ_UNAVAILABLE` to a request still running after `deadlineMs` (a pull gets
 * `longPollMs` more, its longest wait). Redis commands time out on their own, but a PostgreSQL
 * query on a connection whose server froze never returns (postgres.js has no query timeout):
 * without this the request would hang as long as the server does. The work itself is not
 * cancelled, so like any 503 it may still take effect.
 */
export function requestDeadline(deadlineMs: number, longPollMs: number): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const ms =
      deadlineMs + (c.req.method === 'POST' && c.req.path.endsWith('/pull') ? longPollMs : 0)
    let timer: Timer | undefined
    const expired = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(unavailable('a backing store')), ms)
    })
    try {
      await Promise.race([next(), expired])
    } finally {
      clearTimeout(timer)
    }
  }
}
