import { randomUUID } from 'node:crypto'
import { flowLimitsOf } from '../domain/flow'
import type { FlowControl, PermitReturn, ThrottleReason } from '../domain/ports'
import type { Subscription } from '../domain/subscriptions'
import type { Logger } from '../observability/logger'
import { Batch } from './webhook-flow'

/** What a dispatcher's permits need. */
export interface PermitDeps {
  flow: Pick<FlowControl, 'takePermits' | 'givePermits'>
  /** Counts one wait for a permit by why (Prometheus). */
  recordThrottle(reason: ThrottleReason): void
  logger: Logger
}

/**
 * While `parallelism` is taken, a free permit is looked for again this often: another process
 * that gives one back tells no one, and a lease's deadline is far off.
 */
const PARALLELISM_POLL_MS = 20
/**
 * A subscription without limits asks Redis only whether another process started a pause, and
 * at most this often: its pulls cost no extra round trip, and a pause reaches it this late.
 */
const PAUSE_CHECK_MS = 50

/**
 * One dispatcher's share of its subscription's permits (DECISIONS.md "Webhook flow control
 * (issue 25)"): taken before each pull, one per delivery, and given back once its request is
 * answered, in batches. A pause asked for by the receiver holds this process at once and the
 * others from their next take.
 */
export class Permits {
  /** Lease ids held: the permits of deliveries whose request has no answer yet. */
  private readonly held: string[] = []
  private readonly prefix = `${process.pid}-${randomUUID().slice(0, 8)}`
  private next = 0
  /** Whether the next refusal starts a wait (and is counted), rather than prolonging one. */
  private counting = true
  private pausedUntil = 0
  /** When an unlimited subscription's pause was last looked up. */
  private pauseCheckedAt = 0
  private readonly batch: Batch<PermitReturn>
  /** The latest give-back: batches go in order, so it settles after every earlier one. */
  private lastGive: Promise<void> = Promise.resolve()

  constructor(
    private readonly deps: PermitDeps,
    private readonly sub: () => Subscription
  ) {
    this.batch = new Batch((items) =>
      deps.flow.givePermits(this.sub(), flowLimitsOf(this.sub()), {
        leaseIds: items.flatMap((i) => i.leaseIds),
        unused: items.reduce((n, i) => n + i.unused, 0),
        pauseMs: Math.max(...items.map((i) => i.pauseMs)),
      })
    )
  }

  /**
   * Takes up to `want` permits, each holding for `leaseMs` at most.
   * @returns how many it got, and when it got none, how long to wait before asking again.
   */
  async take(want: number, leaseMs: number): Promise<{ granted: number; waitMs: number }> {
    const now = Date.now()
    if (this.pausedUntil > now) return { granted: 0, waitMs: this.pausedUntil - now }
    const limits = flowLimitsOf(this.sub())
    const unlimited = limits.parallelism === null && limits.rateLimitPerSecond === null
    if (unlimited && now - this.pauseCheckedAt < PAUSE_CHECK_MS) return { granted: want, waitMs: 0 }
    this.pauseCheckedAt = now
    const grant = await this.deps.flow.takePermits(this.sub(), {
      want,
      limits,
      leaseMs,
      leasePrefix: this.prefix,
      firstLease: this.next,
      countWait: this.counting,
    })
    if (grant.reason === null) {
      if (limits.parallelism !== null) {
        for (let i = 0; i < grant.granted; i++) this.held.push(`${this.prefix}:${this.next + i}`)
        this.next += grant.granted
      }
      this.counting = true
      return { granted: grant.granted, waitMs: 0 }
    }
    if (this.counting) this.deps.recordThrottle(grant.reason)
    this.counting = false
    const waitMs =
      grant.reason === 'parallelism' ? Math.min(grant.waitMs, PARALLELISM_POLL_MS) : grant.waitMs
    return { granted: 0, waitMs }
  }

  /**
   * Gives `n` permits back: `unused` ones (no request was made) with their tokens too.
   * `pauseMs` holds the whole subscription that long, from now, in every process.
   */
  give(n: number, { unused = false, pauseMs = 0 } = {}): void {
    if (pauseMs > 0) {
      this.pausedUntil = Math.max(this.pausedUntil, Date.now() + pauseMs)
      this.deps.recordThrottle('paused')
    }
    const leaseIds = this.held.splice(0, n)
    const refund = unused && flowLimitsOf(this.sub()).rateLimitPerSecond !== null ? n : 0
    // Nothing to tell Redis: no lease, no token, no pause (a subscription without limits).
    if (leaseIds.length === 0 && refund === 0 && pauseMs <= 0) return
    this.lastGive = this.batch.add({ leaseIds, unused: refund, pauseMs }).catch((err) =>
      // The leases run out by themselves at their deadline; only the pause is not shared.
      this.deps.logger.warn(
        { err: (err as Error).message, subscriptionId: this.sub().id, leases: leaseIds.length },
        'webhook permits not given back'
      )
    )
  }

  /** Resolves once every permit given back so far has reached Redis (or failed to). */
  settled(): Promise<void> {
    return this.lastGive
  }
}
