import type { RateDecision, RateLimiter } from '../domain/ports'
import type { Keys } from './keys'
import type { RedisClient } from './redis'
import { decodeTakeToken } from './scripts/replies'

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
    return decodeTakeToken(
      await this.redis.takeToken(this.keys.tenantRateBucket(tenantId), ratePerSecond, ratePerSecond)
    )
  }
}
