/** The outcome of taking one request's token from a tenant's bucket. */
export interface RateDecision {
  allowed: boolean
  /** Whole tokens left after this request. */
  remaining: number
  /** When refused: how long until a token is there (ms); 0 when allowed. */
  retryAfterMs: number
  /** How long until the bucket is full again (ms). */
  resetMs: number
}

/** Per-tenant request rate limit shared by every api instance (API.md "Limits per tenant"). */
export interface RateLimiter {
  /**
   * Takes one token from the tenant's bucket, which refills at `ratePerSecond` and holds as
   * many (the burst equals one second's worth).
   */
  take(tenantId: string, ratePerSecond: number): Promise<RateDecision>
}
