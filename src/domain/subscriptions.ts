import { MqError } from './errors'

export type SubscriptionType = 'redis_consumer' | 'webhook'
export type SubscriptionStatus = 'active' | 'paused'
export type RetryBackoff = 'exponential' | 'fixed'
/** `key`: one message of a key out at a time, in publish order (DECISIONS.md, issue 25). */
export type Ordering = 'none' | 'key'

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
  ordering: Ordering
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
export const deadLetterQueueOf = (sub: Pick<Subscription, 'deadLetterQueue' | 'queue'>): string =>
  sub.deadLetterQueue ?? `${sub.queue}.dlq`

/**
 * Settings that act on the entries a consumer group shares, so every subscription of one group
 * must have the same (DECISIONS.md "What a consumer group's subscriptions share"): a filter
 * skip acknowledges an entry for the whole group, and so does a move to the dead-letter queue;
 * key ordering holds back a key's later entries for every consumer of the group.
 */
export const GROUP_SETTINGS = [
  'messageFilter',
  'maxRetryAttempts',
  'deadLetterQueue',
  'ordering',
] as const

type GroupSettings = Pick<Subscription, (typeof GROUP_SETTINGS)[number] | 'queue'>

/** The first group setting on which `candidate` differs from `mate`, or null. */
export function groupSettingDiffering(
  candidate: GroupSettings,
  mate: GroupSettings
): (typeof GROUP_SETTINGS)[number] | null {
  if (!Bun.deepEquals(candidate.messageFilter ?? null, mate.messageFilter ?? null)) {
    return 'messageFilter'
  }
  if (candidate.maxRetryAttempts !== mate.maxRetryAttempts) return 'maxRetryAttempts'
  if (deadLetterQueueOf(candidate) !== deadLetterQueueOf(mate)) return 'deadLetterQueue'
  if ((candidate.ordering ?? 'none') !== (mate.ordering ?? 'none')) return 'ordering'
  return null
}

/**
 * Refuses settings a group's other subscriptions do not share.
 * @throws MqError MQ_VALIDATION_FAILED naming the differing setting.
 */
export function assertAgreesWithGroup(
  candidate: GroupSettings & Pick<Subscription, 'consumerGroup'>,
  mates: readonly Subscription[]
): void {
  const mate = mates[0]
  const field = mate ? groupSettingDiffering(candidate, mate) : null
  if (!mate || !field) return
  const message = `every subscription of consumer group '${candidate.consumerGroup}' must have the same ${field} (subscription ${mate.id} has another)`
  throw new MqError('MQ_VALIDATION_FAILED', `${field}: ${message}`, {
    issues: [{ path: field, code: 'custom', message }],
  })
}

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
