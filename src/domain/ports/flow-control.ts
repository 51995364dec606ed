import type { FlowFigures, FlowLimits } from '../flow'
import type { Subscription } from '../subscriptions'

/** Why no permit was granted. */
export type ThrottleReason = 'paused' | 'parallelism' | 'rate'

/** A request for permits: each is one delivery's request, from its pull until it is answered. */
export interface PermitRequest {
  want: number
  limits: FlowLimits
  /** How long a permit holds if never given back (its holder was killed). */
  leaseMs: number
  /** The caller's own lease ids are `<leasePrefix>:<n>`, n counting up from `firstLease`. */
  leasePrefix: string
  firstLease: number
  /** Counts this refusal in `throttled`: the caller's first wait after being granted some. */
  countWait: boolean
}

export type PermitGrant =
  | { granted: number; waitMs: 0; reason: null }
  | { granted: 0; waitMs: number; reason: ThrottleReason }

/** What goes back: ended leases, tokens never used, and a pause the receiver asked for. */
export interface PermitReturn {
  leaseIds: string[]
  unused: number
  pauseMs: number
}

/** Permits of webhook subscriptions shared by every worker process (Redis). */
export interface FlowControl {
  takePermits(sub: Subscription, request: PermitRequest): Promise<PermitGrant>
  givePermits(sub: Subscription, limits: FlowLimits, back: PermitReturn): Promise<void>
  flowFigures(sub: Subscription): Promise<FlowFigures>
}
