import type {
  Subscription,
  SubscriptionDraft,
  SubscriptionListQuery,
  SubscriptionPatch,
} from '../subscriptions'

/** Subscription metadata (PostgreSQL). Every method is scoped by `tenantId`, its first argument. */
export interface SubscriptionStore {
  /**
   * Stores a new subscription under the id the caller chose (the signing secret is sealed to it).
   * @throws MqError MQ_SUBSCRIPTION_EXISTS when the consumer is already in that group of the
   * queue, MQ_VALIDATION_FAILED when the group's other subscriptions have other group settings.
   */
  create(tenantId: string, draft: SubscriptionDraft): Promise<Subscription>
  /** Any string may be passed as `id`: one that is not a UUID finds nothing. */
  get(tenantId: string, id: string): Promise<Subscription | null>
  list(
    tenantId: string,
    query: SubscriptionListQuery
  ): Promise<{ items: Subscription[]; nextCursor: string | null }>
  /** @throws MqError MQ_VALIDATION_FAILED for a group setting the group's others do not share. */
  update(tenantId: string, id: string, patch: SubscriptionPatch): Promise<Subscription | null>
  /** @returns whether it existed. */
  remove(tenantId: string, id: string): Promise<boolean>
  /** The tenant's subscriptions in one consumer group of a queue, oldest first. */
  inGroup(tenantId: string, queueId: string, group: string): Promise<Subscription[]>
}
