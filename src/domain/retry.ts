import type { Subscription } from './subscriptions'

/** No retry waits longer than this, however many attempts came before (nor for a `Retry-After`). */
export const MAX_RETRY_DELAY_MS = 12 * 60 * 60 * 1000

/**
 * How long to wait before delivering again after failed attempt number `attempt` (1-based):
 * `retryDelayMs` flat for `fixed`, `retryDelayMs × 2^(attempt−1)` for `exponential`, with ±20 %
 * jitter so that many messages failing together do not come back together.
 */
export function retryDelay(
  sub: Pick<Subscription, 'retryDelayMs' | 'retryBackoff'>,
  attempt: number,
  random: () => number = Math.random
): number {
  if (sub.retryBackoff === 'fixed') return sub.retryDelayMs
  const base = Math.min(sub.retryDelayMs * 2 ** Math.max(0, attempt - 1), MAX_RETRY_DELAY_MS)
  return Math.round(base * (0.8 + 0.4 * random()))
}
