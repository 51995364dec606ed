import { burstOf, type FlowFigures, type FlowLimits, flowLimitsOf } from '../../domain/flow'
import type { FlowControl, PermitGrant, PermitRequest, PermitReturn } from '../../domain/ports'
import type { Subscription } from '../../domain/subscriptions'
import type { Keys } from '../keys'
import type { RedisClient } from '../redis'
import { decodeTakePermits } from '../scripts/replies'

/**
 * Webhook subscriptions' permits in Redis (takePermits.lua, givePermits.lua): one script call
 * per pull of a limited subscription and one per batch of its answers, on keys of the
 * subscription's own hash tag, so a throttled subscription never contends with another's.
 */
export class RedisFlowStore implements FlowControl {
  constructor(
    private readonly redis: RedisClient,
    private readonly keys: Keys
  ) {}

  async takePermits(sub: Subscription, r: PermitRequest): Promise<PermitGrant> {
    const { leases, bucket, pause } = this.keys.subscriptionFlow(sub.tenantId, sub.id)
    const rate = r.limits.rateLimitPerSecond ?? 0
    const reply = await this.redis.takePermits(
      leases,
      bucket,
      pause,
      this.keys.subscriptionCounters(sub.tenantId, sub.id),
      r.want,
      r.limits.parallelism ?? 0,
      rate,
      burstOf(rate),
      r.leaseMs,
      r.leasePrefix,
      r.firstLease,
      r.countWait ? 1 : 0
    )
    return decodeTakePermits(reply)
  }

  async givePermits(sub: Subscription, limits: FlowLimits, back: PermitReturn): Promise<void> {
    const { leases, bucket, pause } = this.keys.subscriptionFlow(sub.tenantId, sub.id)
    const rate = limits.rateLimitPerSecond ?? 0
    await this.redis.givePermits(
      leases,
      bucket,
      pause,
      this.keys.subscriptionCounters(sub.tenantId, sub.id),
      rate,
      burstOf(rate),
      back.unused,
      back.pauseMs,
      ...back.leaseIds
    )
  }

  async flowFigures(sub: Subscription): Promise<FlowFigures> {
    const { leases, pause } = this.keys.subscriptionFlow(sub.tenantId, sub.id)
    const [time, throttled, pausedMs] = await Promise.all([
      this.redis.time(),
      this.redis.hget(this.keys.subscriptionCounters(sub.tenantId, sub.id), 'throttled'),
      this.redis.pttl(pause),
    ])
    // Leases past their deadline are dropped only by the next take: not counted meanwhile.
    const now = Number(time[0]) * 1000 + Math.floor(Number(time[1]) / 1000)
    const limits = flowLimitsOf(sub)
    const live =
      limits.parallelism === null ? null : await this.redis.zcount(leases, `(${now}`, '+inf')
    return {
      ...limits,
      inFlight: live,
      throttled: Number(throttled ?? 0),
      pausedUntil: pausedMs > 0 ? new Date(Date.now() + pausedMs) : null,
    }
  }
}
