/** The queue's shape, apart from its verbs (queues.ts) so the ports can name it. */
export type QueueStatus = 'active' | 'paused' | 'archived'
export type Overflow = 'reject' | 'drop_oldest'

/** What a caller may set on a queue (API.md "Queues"); `name` and `partitionCount` are fixed. */
export interface QueueSettings {
  name: string
  displayName: string
  description: string
  partitionCount: number
  replicationFactor: number
  retentionMs: number
  maxLength: number
  overflow: Overflow
  messageFormat: 'json'
  schema: Record<string, unknown> | null
  compression: 'none'
  encrypted: boolean
  isPublic: boolean
  allowedProducers: string[]
  allowedConsumers: string[]
  status: QueueStatus
}

export type QueuePatch = Partial<Omit<QueueSettings, 'name' | 'partitionCount'>>

/** A queue as stored. */
export interface Queue extends QueueSettings {
  id: string
  tenantId: string
  type: 'redis_stream'
  createdAt: Date
  updatedAt: Date
}

/** A queue just deleted, with the ids of the subscriptions deleted with it. */
export interface RemovedQueue extends Queue {
  subscriptionIds: string[]
}

/** Live figures of a queue, summed over its partitions. */
export interface QueueStats {
  length: number
  pending: number
  scheduled: number
  consumerGroups: number
  lastMessageId: string | null
  /** Entries trimmed (retention, maxLength) before the ledger read them, since the queue began. */
  ledgerGap: number
}

export interface QueueListQuery {
  status?: QueueStatus
  prefix?: string
  limit: number
  cursor?: string
}
