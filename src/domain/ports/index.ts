export type { DelayedStore } from './delayed-store'
export type {
  FlowControl,
  PermitGrant,
  PermitRequest,
  PermitReturn,
  ThrottleReason,
} from './flow-control'
export type { GroupStore } from './group-store'
export type { InspectionStore, Removal } from './inspection-store'
export type { MaintenanceStore } from './maintenance-store'
export type {
  MessageStore,
  PullOptions,
  SettleItem,
  SettleOptions,
} from './message-store'
export type { QueueStore } from './queue-store'
export type { RateDecision, RateLimiter } from './rate-limiter'
export type { SubscriptionStore } from './subscription-store'
export type { WaitStore } from './wait-store'
