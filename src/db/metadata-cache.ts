import type { QueueStore } from '../domain/ports'
import type { Queue, QueueListQuery, QueuePatch, QueueSettings } from '../domain/queues'
import type { Logger } from '../observability/logger'
import type { RedisClient } from '../streams/redis'

const cacheKey = (tenantId: string, name: string) => `${tenantId}/${name}`

/**
 * Keeps queue metadata in process so a publish costs no SQL query. Entries live for `ttlMs`;
 * every change is announced on a Redis channel so other api and worker processes drop their
 * copy at once, and the TTL bounds staleness if an announcement is missed (e.g. while the
 * subscriber reconnects).
 */
export class CachedQueueStore implements QueueStore {
  private readonly entries = new Map<string, { queue: Queue; until: number }>()

  constructor(
    private readonly inner: QueueStore,
    private readonly ttlMs: number,
    private readonly publisher: RedisClient,
    private readonly channel: string,
    private readonly logger: Logger
  ) {}

  /** Starts listening for other processes' changes on a dedicated subscriber connection. */
  async listen(subscriber: RedisClient): Promise<void> {
    subscriber.on('message', (channel: string, key: string) => {
      if (channel === this.channel) this.entries.delete(key)
    })
    // After a reconnect announcements may have been missed: start afresh.
    subscriber.on('ready', () => this.entries.clear())
    await subscriber.subscribe(this.channel)
  }

  private async changed(tenantId: string, name: string): Promise<void> {
    const key = cacheKey(tenantId, name)
    this.entries.delete(key)
    try {
      await this.publisher.publish(this.channel, key)
    } catch (err) {
      // The change itself is committed; other processes catch up within the TTL.
      this.logger.warn({ err: (err as Error).message }, 'metadata change not announced')
    }
  }

  async get(tenantId: string, name: string): Promise<Queue | null> {
    const key = cacheKey(tenantId, name)
    const hit = this.entries.get(key)
    if (hit && hit.until > Date.now()) return hit.queue
    const queue = await this.inner.get(tenantId, name)
    if (queue && this.ttlMs > 0) this.entries.set(key, { queue, until: Date.now() + this.ttlMs })
    else this.entries.delete(key)
    return queue
  }

  create(tenantId: string, settings: QueueSettings): Promise<Queue> {
    return this.inner.create(tenantId, settings)
  }

  async update(tenantId: string, name: string, patch: QueuePatch): Promise<Queue | null> {
    const queue = await this.inner.update(tenantId, name, patch)
    if (queue) await this.changed(tenantId, name)
    return queue
  }

  async remove(tenantId: string, name: string): Promise<Queue | null> {
    const queue = await this.inner.remove(tenantId, name)
    if (queue) await this.changed(tenantId, name)
    return queue
  }

  list(tenantId: string, query: QueueListQuery) {
    return this.inner.list(tenantId, query)
  }

  count(tenantId: string): Promise<number> {
    return this.inner.count(tenantId)
  }
}
