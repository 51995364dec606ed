import type { MiddlewareHandler } from 'hono'
import { unavailable } from '../../domain/errors'
import type { AppEnv } from '../env'

interface Pending {
  at: number
  /** Cleared when the request answers, so its settled entry holds nothing of it. */
  expire: ((err: Error) => void) | undefined
}

/**
 * The deadlines of one length, with one timer for all of them: a timer and a race per request
 * cost more than the rest of the middleware. Requests enter in the order they start, and with
 * one length they expire in that order too, so the earliest deadline is always at the head.
 */
class Deadlines {
  private readonly pending: Pending[] = []
  private head = 0
  private timer: Timer | undefined

  constructor(private readonly ms: number) {}

  add(expire: (err: Error) => void): Pending {
    const entry: Pending = { at: performance.now() + this.ms, expire }
    this.pending.push(entry)
    // Armed for a deadline no later than this one; `fire` arms the next.
    if (this.timer === undefined) this.arm(entry.at)
    return entry
  }

  settle(entry: Pending): void {
    entry.expire = undefined
    // Requests mostly answer in the order they came, so this keeps the list short.
    this.dropSettled()
  }

  private arm(at: number): void {
    this.timer = setTimeout(this.fire, Math.max(0, at - performance.now()))
    // Requests in flight keep the process alive by themselves; a pending check must not.
    this.timer.unref()
  }

  private readonly fire = (): void => {
    this.timer = undefined
    const now = performance.now()
    while (this.head < this.pending.length) {
      const entry = this.pending[this.head] as Pending
      if (entry.expire !== undefined && entry.at > now) break
      this.head++
      entry.expire?.(unavailable('a backing store'))
      entry.expire = undefined
    }
    this.dropSettled()
    const next = this.pending[this.head]
    if (next !== undefined) this.arm(next.at)
  }

  private dropSettled(): void {
    const pending = this.pending
    while (this.head < pending.length && (pending[this.head] as Pending).expire === undefined) {
      this.head++
    }
    if (this.head === pending.length) {
      pending.length = 0
      this.head = 0
    } else if (this.head > 1024 && this.head * 2 > pending.length) {
      pending.splice(0, this.head)
      this.head = 0
    }
  }
}

/**
 * Answers `503 MQ_UNAVAILABLE` to a request still running after `deadlineMs` (a pull gets
 * `longPollMs` more, its longest wait). Redis commands time out on their own, but a PostgreSQL
 * query on a connection whose server froze never returns (postgres.js has no query timeout):
 * without this the request would hang as long as the server does. The work itself is not
 * cancelled, so like any 503 it may still take effect.
 */
export function requestDeadline(deadlineMs: number, longPollMs: number): MiddlewareHandler<AppEnv> {
  const requests = new Deadlines(deadlineMs)
  const pulls = new Deadlines(deadlineMs + longPollMs)
  return (c, next) =>
    new Promise<void>((resolve, reject) => {
      const deadlines = c.req.method === 'POST' && c.req.path.endsWith('/pull') ? pulls : requests
      const entry = deadlines.add(reject)
      next().then(
        () => {
          deadlines.settle(entry)
          resolve()
        },
        (err: unknown) => {
          deadlines.settle(entry)
          reject(err)
        }
      )
    })
}
