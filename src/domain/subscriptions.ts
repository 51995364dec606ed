export type SubscriptionType = 'redis_consumer' | 'webhook'
export type SubscriptionStatus = 'active' | 'paused'
export type RetryBackoff = 'exponential' | 'fixed'

/** `messageFilter` (API.md "Subscriptions"): a match on headers, key and top-level payload fields. */
export type FilterCondition =
  | string
  | number
  | boolean
  | null
  | {
      eq?: unknown
      in?: unknown[]
      exists?: boolean
      prefix?: string
      gt?: number | string
      lt?: number | string
    }

export interface MessageFilter {
  headers?: Record<string, FilterCondition>
  key?: FilterCondition
  payload?: Record<string, FilterCondition>
}

/** What a caller may set on a subscription. */
export interface SubscriptionSettings {
  offsetResetPolicy: 'earliest' | 'latest'
  maxPollRecords: number
  sessionTimeoutMs: number
  heartbeatIntervalMs: number
  handlerConfig: Record<string, unknown>
  deadLetterQueue: string | null
  maxRetryAttempts: number
  retryDelayMs: number
  retryBackoff: RetryBackoff
  messageFilter: MessageFilter | null
}

/** A subscription as stored: one consumer (`consumerName`) in a consumer group of a queue. */
export interface Subscription extends SubscriptionSettings {
  id: string
  tenantId: string
  queueId: string
  /** The queue's name. */
  queue: string
  consumerGroup: string
  consumerName: string
  subscriptionType: SubscriptionType
  status: SubscriptionStatus
  statusReason: string | null
  /**
   * Webhook signing secret (`whsec_…`) as stored: sealed with the tenant's key, bound to this
   * subscription's id. Shown in clear only in the answer that created it.
   */
  signingSecret: string | null
  createdAt: Date
  updatedAt: Date
  lastConsumedAt: Date | null
}

/** Delivery outcomes of a subscription, counted as they happen. */
export interface SubscriptionCounters {
  delivered: number
  acked: number
  failed: number
  deadLettered: number
}

/** The dead-letter queue of a subscription: configured, else `<queue>.dlq`. */
export const deadLetterQueueOf = (sub: Pick<Subscription, 'queue' | 'deadLetterQueue'>): string =>
  sub.deadLetterQueue ?? `${sub.queue}.dlq`

/** A subscription about to be stored; the caller chooses its id. */
export type SubscriptionDraft = Omit<
  Subscription,
  'tenantId' | 'status' | 'statusReason' | 'createdAt' | 'updatedAt' | 'lastConsumedAt'
>

/** What may change on a stored subscription. */
export type SubscriptionPatch = Partial<
  SubscriptionSettings & Pick<Subscription, 'status' | 'statusReason'>
>

export interface SubscriptionListQuery {
  /** A queue name of the tenant. */
  queue?: string
  status?: SubscriptionStatus
  limit: number
  cursor?: string
}
