import type {
  DelayedStore,
  FlowControl,
  GroupStore,
  InspectionStore,
  MaintenanceStore,
  MessageStore,
  WaitStore,
} from '../../domain/ports'
import type { Keys } from '../keys'
import type { RedisClient } from '../redis'
import { RedisDelayedStore } from './delayed-store'
import { RedisFlowStore } from './flow-store'
import { RedisGroupStore } from './group-store'
import { RedisInspectionStore } from './inspection-store'
import { RedisMaintenanceStore } from './maintenance-store'
import { RedisMessageStore } from './message-store'
import { RedisWaitStore } from './wait-store'

/** Every store over the queues' Redis keys; each caller's type names only the ports it uses. */
export type StreamStores = MessageStore &
  GroupStore &
  DelayedStore &
  InspectionStore &
  MaintenanceStore &
  WaitStore &
  FlowControl

/**
 * The stores of one Redis connection, as one object whose methods are each store's own: the
 * composition root hands it out whole, and each domain verb declares the ports it needs.
 */
export function createStreamStores(redis: RedisClient, keys: Keys): StreamStores {
  const stores = [
    new RedisMessageStore(redis, keys),
    new RedisGroupStore(redis, keys),
    new RedisDelayedStore(redis, keys),
    new RedisInspectionStore(redis, keys),
    new RedisMaintenanceStore(redis, keys),
    new RedisWaitStore(redis, keys),
    new RedisFlowStore(redis, keys),
  ]
  const all: Record<string, unknown> = {}
  for (const store of stores) {
    const proto = Object.getPrototypeOf(store) as Record<string, unknown>
    for (const name of Object.getOwnPropertyNames(proto)) {
      const method = proto[name]
      if (name === 'constructor' || typeof method !== 'function') continue
      if (name in all) throw new Error(`two stores define ${name}`)
      all[name] = method.bind(store)
    }
  }
  return all as unknown as StreamStores
}
