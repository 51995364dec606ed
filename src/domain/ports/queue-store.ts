import type { Queue, QueueListQuery, QueuePatch, QueueSettings, RemovedQueue } from '../queue-model'

/** Queue metadata (PostgreSQL). Every method is scoped by `tenantId`, its first argument. */
export interface QueueStore {
  /**
   * @param maxQueues when set, the queue is created only if the tenant has fewer, checked and
   *   inserted as one step (concurrent creates cannot pass it together).
   * @throws MqError MQ_QUEUE_EXISTS when the tenant already has a queue of that name,
   *   MQ_RATE_LIMITED (see `queueLimitReached` in domain/queues.ts) at `maxQueues`.
   */
  create(tenantId: string, settings: QueueSettings, maxQueues?: number): Promise<Queue>
  get(tenantId: string, name: string): Promise<Queue | null>
  list(
    tenantId: string,
    query: QueueListQuery
  ): Promise<{ items: Queue[]; nextCursor: string | null }>
  update(tenantId: string, name: string, patch: QueuePatch): Promise<Queue | null>
  /** Deletes the queue with its subscriptions (whose ids it returns) and schedules. */
  remove(tenantId: string, name: string): Promise<RemovedQueue | null>
  count(tenantId: string): Promise<number>
}
