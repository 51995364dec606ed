import type { Subscription } from './subscriptions'

/**
 * A webhook subscription's flow control (API.md "Webhook pushes", DECISIONS.md "Webhook flow
 * control (issue 25)"): `handlerConfig.rateLimitPerSecond` and `handlerConfig.parallelism`,
 * held across every worker process.
 */
export interface FlowLimits {
  /** Requests started per second at most; null: unbounded. */
  rateLimitPerSecond: number | null
  /** Requests open at once at most; null: only the worker's own per-subscription bound. */
  parallelism: number | null
}

/** Bounds of the two settings: a rate no worker fleet reaches, a parallelism its sockets bear. */
export const FLOW_BOUNDS = { rateLimitPerSecond: 10_000, parallelism: 1000 } as const

export function flowLimitsOf(sub: Pick<Subscription, 'handlerConfig'>): FlowLimits {
  const { rateLimitPerSecond: rate, parallelism } = sub.handlerConfig
  return {
    rateLimitPerSecond: typeof rate === 'number' ? rate : null,
    parallelism: typeof parallelism === 'number' ? parallelism : null,
  }
}

/**
 * Tokens a rate-limited subscription may spend at once after idling: a twentieth of a second's
 * worth, so no second holds more than `rate` plus this many requests, while a busy pull still
 * takes a few messages per round trip.
 */
export const burstOf = (ratePerSecond: number): number => Math.max(1, Math.ceil(ratePerSecond / 20))

/** A subscription's flow figures (GET /subscriptions/{id} `stats.flow`, GET /metrics/consumers). */
export interface FlowFigures extends FlowLimits {
  /** Requests open now across every worker (unexpired leases); null without `parallelism`. */
  inFlight: number | null
  /** Times a worker waited for a permit (a limit or a pause), each wait counted once. */
  throttled: number
  /** When a pause asked for by the receiver (Retry-After) ends; null when none runs. */
  pausedUntil: Date | null
}
