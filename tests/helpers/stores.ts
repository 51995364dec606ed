import { type Queue, queueSettings } from '../../src/domain/queues'
import { RedisDelayedStore } from '../../src/streams/stores/delayed-store'
import { RedisGroupStore } from '../../src/streams/stores/group-store'
import { RedisInspectionStore } from '../../src/streams/stores/inspection-store'
import { RedisMaintenanceStore } from '../../src/streams/stores/maintenance-store'
import { RedisMessageStore } from '../../src/streams/stores/message-store'
import { RedisWaitStore } from '../../src/streams/stores/wait-store'
import { newTenant, sharedDeps } from './harness'
import { storedMessage } from './ledger'

/** A queue as the stores see it: only the Redis stores are under test, so it is never stored. */
export function queueOf(partitionCount = 1, extra: Partial<Queue> = {}): Queue {
  return {
    ...queueSettings({ name: 'q', partitionCount }, { retentionMs: 3_600_000, maxLength: 1000 }),
    id: crypto.randomUUID(),
    tenantId: newTenant(),
    type: 'redis_stream',
    createdAt: new Date(),
    updatedAt: new Date(),
    ...extra,
  }
}

/** Each store on its own, over the shared test Redis, with that Redis and its key layout. */
export async function storesOf() {
  const { redis, keys } = await sharedDeps()
  return {
    redis,
    keys,
    messages: new RedisMessageStore(redis, keys),
    groups: new RedisGroupStore(redis, keys),
    delayed: new RedisDelayedStore(redis, keys),
    inspection: new RedisInspectionStore(redis, keys),
    maintenance: new RedisMaintenanceStore(redis, keys),
    waits: new RedisWaitStore(redis, keys),
  }
}

/** One write of a plain message, due at `deliverAt` (0: now), deduplicated on `dedupId`. */
export const writeOf = (messageId: string, deliverAt = 0, dedupId: string | null = null) => ({
  message: { ...storedMessage(messageId, JSON.stringify(messageId), 0), publishedAt: null },
  dedupId,
  deliverAt,
})

export const WRITE_OPTS = (now = Date.now()) => ({ now, maxLength: 1000, dedupWindowMs: 60_000 })
