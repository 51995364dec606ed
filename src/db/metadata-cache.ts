import type { QueueStore, SubscriptionStore } from '../domain/ports'
import type {
  Queue,
  QueueListQuery,
  QueuePatch,
  QueueSettings,
  RemovedQueue,
} from '../domain/queues'
import type {
  Subscription,
  SubscriptionDraft,
  SubscriptionListQuery,
  SubscriptionPatch,
} from '../domain/subscriptions'
import type { Logger } from '../observability/logger'
import type { RedisClient } from '../streams/redis'

/**
 * Keeps metadata of one kind in process so the hot paths (publish, pull) cost no SQL query.
 * Entries are fresh for `ttlMs`; every change is announced on a Redis channel so other api and
 * worker processes drop their copy at once, and the TTL bounds staleness if an announcement
 * is missed (e.g. while the subscriber reconnects). Several caches share one channel: each
 * announcement is `<kind>:<key>`, and each cache reads only its own kind.
 *
 * An entry past its TTL is still served while one load refreshes it behind the request: the
 * data plane must not wait on PostgreSQL for a queue it knows, and a frozen or refusing
 * database would otherwise hold every publish to a queue whose entry happened to expire. A
 * failed refresh keeps the entry; only an announced change (or a load that finds nothing)
 * drops it.
 */
export class MetadataCache<T> {
  private readonly entries = new Map<string, { value: T; until: number }>()
  private readonly loading = new Map<string, Promise<T | null>>()
  /** Bumped by every drop, so that a load begun before a change does not store what it read. */
  private drops = 0
  private readonly tag: string

  constructor(
    kind: string,
    private readonly ttlMs: number,
    private readonly publisher: RedisClient,
    private readonly channel: string,
    private readonly logger: Logger
  ) {
    this.tag = `${kind}:`
  }

  /** Starts listening for other processes' changes on a dedicated subscriber connection. */
  async listen(subscriber: RedisClient): Promise<void> {
    subscriber.on('message', (channel: string, message: string) => {
      if (channel === this.channel && message.startsWith(this.tag)) {
        this.drop(message.slice(this.tag.length))
      }
    })
    // After a reconnect announcements may have been missed: start afresh.
    subscriber.on('ready', () => {
      this.drops++
      this.entries.clear()
      this.loading.clear()
    })
    await subscriber.subscribe(this.channel)
  }

  /**
   * The cached value of `key`, else what `load` finds (cached unless null). A stale value is
   * returned at once while `load` refreshes it; concurrent misses share one load.
   */
  async get(key: string, load: () => Promise<T | null>): Promise<T | null> {
    const hit = this.entries.get(key)
    if (!hit) return this.refresh(key, load)
    if (hit.until <= Date.now()) {
      this.refresh(key, load).catch((err: Error) => {
        this.logger.warn(
          { code: err.name, key },
          'metadata refresh failed; serving the cached copy'
        )
      })
    }
    return hit.value
  }

  private refresh(key: string, load: () => Promise<T | null>): Promise<T | null> {
    let pending = this.loading.get(key)
    if (pending) return pending
    const drops = this.drops
    pending = load()
      .then((value) => {
        if (drops !== this.drops) return value
        if (value !== null && this.ttlMs > 0) {
          this.entries.set(key, { value, until: Date.now() + this.ttlMs })
        } else this.entries.delete(key)
        return value
      })
      .finally(() => {
        if (this.loading.get(key) === pending) this.loading.delete(key)
      })
    this.loading.set(key, pending)
    return pending
  }

  private drop(key: string): void {
    this.drops++
    this.entries.delete(key)
    this.loading.delete(key)
  }

  /** Drops `key` here and tells every other process to drop it. */
  async changed(key: string): Promise<void> {
    this.drop(key)
    try {
      await this.publisher.publish(this.channel, this.tag + key)
    } catch (err) {
      // The change itself is committed; other processes catch up within the TTL.
      this.logger.warn({ err: (err as Error).message }, 'metadata change not announced')
    }
  }
}

const cacheKey = (tenantId: string, nameOrId: string) => `${tenantId}/${nameOrId}`

/** A QueueStore whose `get` is served from a {@link MetadataCache}. */
export class CachedQueueStore implements QueueStore {
  private readonly cache: MetadataCache<Queue>

  constructor(
    private readonly inner: QueueStore,
    ttlMs: number,
    publisher: RedisClient,
    channel: string,
    logger: Logger
  ) {
    this.cache = new MetadataCache('queue', ttlMs, publisher, channel, logger)
  }

  /** Starts listening for other processes' changes on a dedicated subscriber connection. */
  listen(subscriber: RedisClient): Promise<void> {
    return this.cache.listen(subscriber)
  }

  get(tenantId: string, name: string): Promise<Queue | null> {
    return this.cache.get(cacheKey(tenantId, name), () => this.inner.get(tenantId, name))
  }

  create(tenantId: string, settings: QueueSettings, maxQueues?: number): Promise<Queue> {
    return this.inner.create(tenantId, settings, maxQueues)
  }

  async update(tenantId: string, name: string, patch: QueuePatch): Promise<Queue | null> {
    const queue = await this.inner.update(tenantId, name, patch)
    if (queue) await this.cache.changed(cacheKey(tenantId, name))
    return queue
  }

  async remove(tenantId: string, name: string): Promise<RemovedQueue | null> {
    const queue = await this.inner.remove(tenantId, name)
    if (queue) await this.cache.changed(cacheKey(tenantId, name))
    return queue
  }

  list(tenantId: string, query: QueueListQuery) {
    return this.inner.list(tenantId, query)
  }

  count(tenantId: string): Promise<number> {
    return this.inner.count(tenantId)
  }
}

/**
 * A SubscriptionStore whose `get` is served from a {@link MetadataCache}: the pull path looks
 * its subscription up on every request. Subscriptions removed with their queue (a cascade in
 * PostgreSQL) are announced by nobody; callers check the queue still exists, so a stale entry
 * is never acted on.
 */
export class CachedSubscriptionStore implements SubscriptionStore {
  private readonly cache: MetadataCache<Subscription>

  constructor(
    private readonly inner: SubscriptionStore,
    ttlMs: number,
    publisher: RedisClient,
    channel: string,
    logger: Logger
  ) {
    this.cache = new MetadataCache('subscription', ttlMs, publisher, channel, logger)
  }

  /** Starts listening for other processes' changes on a dedicated subscriber connection. */
  listen(subscriber: RedisClient): Promise<void> {
    return this.cache.listen(subscriber)
  }

  get(tenantId: string, id: string): Promise<Subscription | null> {
    return this.cache.get(cacheKey(tenantId, id), () => this.inner.get(tenantId, id))
  }

  create(tenantId: string, draft: SubscriptionDraft): Promise<Subscription> {
    return this.inner.create(tenantId, draft)
  }

  async update(
    tenantId: string,
    id: string,
    patch: SubscriptionPatch
  ): Promise<Subscription | null> {
    const sub = await this.inner.update(tenantId, id, patch)
    if (sub) await this.cache.changed(cacheKey(tenantId, id))
    return sub
  }

  async remove(tenantId: string, id: string): Promise<boolean> {
    const removed = await this.inner.remove(tenantId, id)
    if (removed) await this.cache.changed(cacheKey(tenantId, id))
    return removed
  }

  list(tenantId: string, query: SubscriptionListQuery) {
    return this.inner.list(tenantId, query)
  }

  inGroup(tenantId: string, queueId: string, group: string): Promise<Subscription[]> {
    return this.inner.inGroup(tenantId, queueId, group)
  }
}
