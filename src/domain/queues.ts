import type { DomainContext } from './context'
import { found, MqError, notFound } from './errors'
import type { QueueSchemas } from './json-schema'
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

/** What a queue may be called: also the names of dead-letter queues made on first use. */
export const QUEUE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$/

/** What the queue verbs need, built once at start-up. */
export interface QueueDeps {
  queues: QueueStore
  messages: MaintenanceStore
  /** Defaults for fields a creating request leaves out. */
  defaults: { retentionMs: number; maxLength: number }
  maxQueuesPerTenant: number
  /** Compiles schemas at create and update (refusing unusable ones) and keeps them. */
  schemas: QueueSchemas
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
  const validate = input.schema ? deps.schemas.compile(input.schema) : undefined
  const queue = await deps.queues.create(
    ctx.tenantId,
    queueSettings(input, deps.defaults),
    deps.maxQueuesPerTenant
  )
  if (validate) deps.schemas.remember(queue, validate)
  return queue
}

/** The answer to a create past `TENANT_MAX_QUEUES` (the store checks it, see QueueStore). */
export const queueLimitReached = (limit: number) =>
  new MqError('MQ_RATE_LIMITED', `a tenant may have at most ${limit} queues`, { limit }, 60)

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
  return found(await deps.queues.get(ctx.tenantId, name), 'MQ_QUEUE_NOT_FOUND', 'queue', name)
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
  const validate = patch.schema ? deps.schemas.compile(patch.schema) : undefined
  const queue = found(
    await deps.queues.update(ctx.tenantId, name, patch),
    'MQ_QUEUE_NOT_FOUND',
    'queue',
    name
  )
  // Any change is a new version: the validator of the last one is of no further use.
  if (validate) deps.schemas.remember(queue, validate)
  else deps.schemas.forget(queue.id)
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
  deps.schemas.forget(queue.id)
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
 * retention, whatever the tenant's queue limit (dead-letter queues are made this way).
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
    // Not held to TENANT_MAX_QUEUES: a tenant at its limit must still be able to dead-letter,
    // or a message out of attempts could go nowhere and would block the pulls that reach it.
    const settings = {
      name,
      partitionCount: like.partitionCount,
      encrypted: like.encrypted,
      retentionMs: like.retentionMs,
    }
    return await deps.queues.create(ctx.tenantId, queueSettings(settings, deps.defaults))
  } catch (err) {
    // Another request created it first.
    if (err instanceof MqError && err.code === 'MQ_QUEUE_EXISTS') return getQueue(deps, ctx, name)
    throw err
  }
}
