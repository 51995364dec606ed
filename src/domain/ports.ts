import type { Queue, QueueListQuery, QueuePatch, QueueSettings, QueueStats } from './queues'

/** Queue metadata (PostgreSQL). Every method is scoped by `tenantId`, its first argument. */
export interface QueueStore {
  /** @throws MqError MQ_QUEUE_EXISTS when the tenant already has a queue of that name. */
  create(tenantId: string, settings: QueueSettings): Promise<Queue>
  get(tenantId: string, name: string): Promise<Queue | null>
  list(
    tenantId: string,
    query: QueueListQuery
  ): Promise<{ items: Queue[]; nextCursor: string | null }>
  update(tenantId: string, name: string, patch: QueuePatch): Promise<Queue | null>
  remove(tenantId: string, name: string): Promise<Queue | null>
  count(tenantId: string): Promise<number>
}

/** The messages of queues (Redis Streams). */
export interface MessageStore {
  queueStats(queue: Queue): Promise<QueueStats>
  /** Removes every message of the queue; consumer groups stay. @returns messages removed. */
  purge(queue: Queue): Promise<number>
  /** Removes every key of the queue: streams, groups, delayed messages, dedup markers. */
  removeQueue(queue: Queue): Promise<void>
}
