import type { DomainContext } from './context'
import { MqError, notFound } from './errors'
import type { MaintenanceStore, QueueStore } from './ports'
import type { Queue, QueueListQuery, QueuePatch, QueueSettings, QueueStats } from './queue-model'

export type {
  Overflow,
  Queue,
  QueueListQuery,
  QueuePatch,
  QueueSettings,
  QueueStats,
  QueueStatus,
  RemovedQueue,
} from './queue-model'

/** What the queue verbs need, built once at start-up. */
export interface QueueDeps {
  queues: QueueStore
  messages: MaintenanceStore
  /** Defaults for fields a creating request leaves out. */
  defaults: { retentionMs: number; maxLength: number }
  maxQueuesPerTenant: number
  /** Refuses a `schema` that is not a usable JSON Schema. */
  assertUsableSchema: (schema: Record<string, unknown>) => void
}

/**
 * Creates a queue with defaults for what the request leaves out.
 * @throws MqError MQ_QUEUE_EXISTS, or MQ_RATE_LIMITED past `TENANT_MAX_QUEUES`.
 */
export async function createQueue(
  deps: QueueDeps,
  ctx: DomainContext,
  input: Partial<QueueSettings> & { name: string }
): Promise<Queue> {
  if ((await deps.queues.count(ctx.tenantId)) >= deps.maxQueuesPerTenant) {
    throw new MqError(
      'MQ_RATE_LIMITED',
      `a tenant may have at most ${deps.maxQueuesPerTenant} queues`,
      { limit: deps.maxQueuesPerTenant },
      60
    )
  }
  if (input.schema) deps.assertUsableSchema(input.schema)
  return deps.queues.create(ctx.tenantId, queueSettings(input, deps.defaults))
}

/** A queue's settings: what `input` says, the service's defaults for the rest. */
export function queueSettings(
  input: Partial<QueueSettings> & { name: string },
  defaults: QueueDeps['defaults']
): QueueSettings {
  return {
    displayName: input.name,
    description: '',
    partitionCount: 1,
    replicationFactor: 1,
    retentionMs: defaults.retentionMs,
    maxLength: defaults.maxLength,
    overflow: 'reject',
    messageFormat: 'json',
    schema: null,
    compression: 'none',
    encrypted: false,
    isPublic: false,
    allowedProducers: [],
    allowedConsumers: [],
    status: 'active',
    ...input,
  }
}

/** @throws MqError MQ_QUEUE_NOT_FOUND, also for another tenant's queue. */
export async function getQueue(deps: QueueDeps, ctx: DomainContext, name: string): Promise<Queue> {
  const queue = await deps.queues.get(ctx.tenantId, name)
  if (!queue) throw notFound('MQ_QUEUE_NOT_FOUND', 'queue', name)
  return queue
}

/** A queue with its live figures from Redis. */
export async function getQueueWithStats(
  deps: QueueDeps,
  ctx: DomainContext,
  name: string
): Promise<Queue & { stats: QueueStats }> {
  const queue = await getQueue(deps, ctx, name)
  return { ...queue, stats: await deps.messages.queueStats(queue) }
}

export function listQueues(deps: QueueDeps, ctx: DomainContext, query: QueueListQuery) {
  return deps.queues.list(ctx.tenantId, query)
}

/** @throws MqError MQ_QUEUE_NOT_FOUND */
export async function updateQueue(
  deps: QueueDeps,
  ctx: DomainContext,
  name: string,
  patch: QueuePatch
): Promise<Queue> {
  if (patch.schema) deps.assertUsableSchema(patch.schema)
  const queue = await deps.queues.update(ctx.tenantId, name, patch)
  if (!queue) throw notFound('MQ_QUEUE_NOT_FOUND', 'queue', name)
  return queue
}

/**
 * Deletes the queue's metadata (subscriptions and schedules cascade) and then its Redis keys.
 * Metadata goes first: once it is gone no publish can reach the queue, so no key is recreated
 * behind the clean-up.
 * @throws MqError MQ_QUEUE_NOT_FOUND
 */
export async function deleteQueue(
  deps: QueueDeps,
  ctx: DomainContext,
  name: string
): Promise<void> {
  const queue = await deps.queues.remove(ctx.tenantId, name)
  if (!queue) throw notFound('MQ_QUEUE_NOT_FOUND', 'queue', name)
  await deps.messages.removeQueue(queue)
}

/** @returns how many messages were removed. @throws MqError MQ_QUEUE_NOT_FOUND */
export async function purgeQueue(
  deps: QueueDeps,
  ctx: DomainContext,
  name: string
): Promise<number> {
  return deps.messages.purge(await getQueue(deps, ctx, name))
}

/**
 * The tenant's queue `name`, created on first use with `like`'s partitions, encryption and
 * retention (dead-letter queues are made this way).
 */
export async function ensureQueueLike(
  deps: QueueDeps,
  ctx: DomainContext,
  name: string,
  like: Pick<Queue, 'partitionCount' | 'encrypted' | 'retentionMs'>
): Promise<Queue> {
  const existing = await deps.queues.get(ctx.tenantId, name)
  if (existing) return existing
  try {
    return await createQueue(deps, ctx, {
      name,
      partitionCount: like.partitionCount,
      encrypted: like.encrypted,
      retentionMs: like.retentionMs,
    })
  } catch (err) {
    // Another request created it first.
    if (err instanceof MqError && err.code === 'MQ_QUEUE_EXISTS') return getQueue(deps, ctx, name)
    throw err
  }
}
