import type { Config } from '../config'
import { CachedQueueStore, CachedSubscriptionStore } from '../db/metadata-cache'
import { QueueRepository } from '../db/queue-repository'
import { SubscriptionRepository } from '../db/subscription-repository'
import type { Logger } from '../observability/logger'
import type { Keys } from '../streams/keys'
import type { Backends } from './backends'

/** Queues and subscriptions: the repositories, and the caches in front of them. */
export interface Metadata {
  queueRepository: QueueRepository
  queues: CachedQueueStore
  subscriptionRepository: SubscriptionRepository
  subscriptions: CachedSubscriptionStore
}

/**
 * The metadata stores, their caches listening for other processes' invalidations on the
 * metadata channel.
 */
export async function openMetadata(
  config: Config,
  backends: Backends,
  keys: Keys,
  logger: Logger
): Promise<Metadata> {
  const { database, redis, subscriber } = backends
  const cached = [config.METADATA_CACHE_TTL_MS, redis, keys.metadataChannel, logger] as const
  const queueRepository = new QueueRepository(database.db)
  const queues = new CachedQueueStore(queueRepository, ...cached)
  await queues.listen(subscriber)
  const subscriptionRepository = new SubscriptionRepository(database.db)
  const subscriptions = new CachedSubscriptionStore(subscriptionRepository, ...cached)
  await subscriptions.listen(subscriber)
  return { queueRepository, queues, subscriptionRepository, subscriptions }
}
