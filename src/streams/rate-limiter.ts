import type { RateDecision, RateLimiter } from '../domain/ports'
import type { Keys } from './keys'
import type { RedisClient } from './redis'

/**
 * The tenant token buckets in Redis: one script call (one round trip) per request, on a key of
 * the tenant's own, so a busy tenant never contends with another tenant's bucket.
 */
export class RedisRateLimiter implements RateLimiter {
  constructor(
    private readonly redis: RedisClient,
    private readonly keys: Keys
  ) {}

  async take(tenantId: string, ratePerSecond: number): Promise<RateDecision> {
    const [allowed = 0, remaining = 0, retryAfterMs = 0, resetMs = 0] = await this.redis.takeToken(
      this.keys.tenantRateBucket(tenantId),
      ratePerSecond,
      ratePerSecond
    )
    return { allowed: allowed === 1, remaining, retryAfterMs, resetMs }
  }
}
