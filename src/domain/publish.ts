import type { DomainContext } from './context'
import { MqError, notFound } from './errors'
import type { PartitionWrite, StoredMessage, WriteResult } from './messages'
import { countPublished, type MessageMetrics } from './metrics'
import type { DelayedStore, MessageStore, QueueStore } from './ports'
import type { Queue } from './queues'

/** A message as a producer sends it (API.md "Publishing"), minus the queue. */
export interface PublishInput {
  payload: unknown
  headers?: Record<string, string>
  key?: string
  messageId?: string
  correlationId?: string
  traceId?: string
  ttlMs?: number
  delayMs?: number
  deliverAt?: Date
}

/** What happened to one published message. */
export interface PublishOutcome {
  messageId: string
  partition: number
  status: 'published' | 'scheduled'
  publishedAt: Date
  deliverAt?: Date
  duplicate: boolean
}

/** Encrypts payloads of encrypted queues; bound to tenant, queue and message. */
export interface PayloadSealer {
  encrypt(plaintext: string, ctx: { tenantId: string; queueId: string; messageId: string }): string
}

/** Checks a payload against a queue's JSON Schema; @returns the failing paths, or []. */
export type SchemaCheck = (
  queue: Queue,
  payload: unknown
) => Array<{ path: string; message: string }>

export interface PublishDeps {
  queues: QueueStore
  messages: MessageStore & Pick<DelayedStore, 'registerDelayed'>
  cipher: PayloadSealer
  checkSchema: SchemaCheck
  limits: { maxMessageSize: number; dedupWindowMs: number }
  /** Milliseconds since the epoch; a parameter so tests can hold time still. */
  now: () => number
  /** Told what each publish stored. */
  metrics: MessageMetrics
}

/** FNV-1a, 32 bits: stable across processes and versions, which routing by key needs. */
export function hashKey(key: string): number {
  let h = 0x811c9dc5
  for (let i = 0; i < key.length; i++) {
    h ^= key.charCodeAt(i)
    h = Math.imul(h, 0x01000193)
  }
  return h >>> 0
}

const roundRobin = new Map<string, number>()

/**
 * The partition of a message: by its key, so one key keeps its order; a client-chosen id
 * without a key routes by the id, so a retry meets its dedup marker in the same partition;
 * anything else goes round-robin.
 */
export function choosePartition(
  queue: Queue,
  key: string | undefined,
  dedupId: string | null
): number {
  if (queue.partitionCount === 1) return 0
  const routing = key ?? dedupId
  if (routing !== undefined && routing !== null) return hashKey(routing) % queue.partitionCount
  const next = (roundRobin.get(queue.id) ?? 0) + 1
  roundRobin.set(queue.id, next % queue.partitionCount)
  return next % queue.partitionCount
}

/**
 * The queue to publish to, with its producer rules applied unless `trusted` (the service's
 * own publishing on a caller's behalf, e.g. a schedule the caller was allowed to create).
 */
export async function publishableQueue(
  deps: Pick<PublishDeps, 'queues'>,
  ctx: DomainContext,
  name: string,
  trusted = false
): Promise<Queue> {
  const queue = await deps.queues.get(ctx.tenantId, name)
  if (!queue) throw notFound('MQ_QUEUE_NOT_FOUND', 'queue', name)
  if (queue.status !== 'active') {
    throw new MqError('MQ_QUEUE_PAUSED', `queue '${name}' is ${queue.status} and takes no messages`)
  }
  const producer = ctx.principal.name
  if (
    !trusted &&
    queue.allowedProducers.length > 0 &&
    (!producer || !queue.allowedProducers.includes(producer))
  ) {
    throw new MqError(
      'MQ_FORBIDDEN',
      `'${producer ?? 'anonymous'}' may not publish to queue '${name}'`
    )
  }
  return queue
}

interface Prepared {
  write: PartitionWrite
  partition: number
  deliverAt: number
}

/**
 * A payload as the JSON text the queue would store, once it is known to fit MAX_MESSAGE_SIZE and
 * the queue's schema. Recurring schedules check theirs with it too, when they are written.
 * @param index the message's place in a batch, named in the error's details.
 * @throws MqError MQ_MESSAGE_TOO_LARGE, MQ_VALIDATION_FAILED
 */
export function checkedPayloadText(
  deps: Pick<PublishDeps, 'limits' | 'checkSchema'>,
  queue: Queue,
  payload: unknown,
  index: number | null = null
): string {
  const where = index === null ? {} : { index }
  const payloadText = JSON.stringify(payload ?? null)
  const size = Buffer.byteLength(payloadText)
  if (size > deps.limits.maxMessageSize) {
    throw new MqError(
      'MQ_MESSAGE_TOO_LARGE',
      `payload is ${size} bytes, over the ${deps.limits.maxMessageSize} byte limit`,
      { ...where, size, limit: deps.limits.maxMessageSize }
    )
  }
  if (queue.schema) {
    const issues = deps.checkSchema(queue, payload)
    if (issues.length > 0) {
      throw new MqError(
        'MQ_VALIDATION_FAILED',
        `payload does not match the schema of queue '${queue.name}'`,
        {
          ...where,
          issues,
        }
      )
    }
  }
  return payloadText
}

/** Validates and encodes one message; throws before anything is stored. */
function prepare(
  deps: PublishDeps,
  ctx: DomainContext,
  queue: Queue,
  input: PublishInput,
  now: number,
  index: number | null
): Prepared {
  const payloadText = checkedPayloadText(deps, queue, input.payload, index)
  const messageId = input.messageId ?? Bun.randomUUIDv7()
  const dedupId = input.messageId ?? null
  const deliverAt = input.deliverAt
    ? input.deliverAt.getTime()
    : input.delayMs
      ? now + input.delayMs
      : 0
  const message: StoredMessage = {
    messageId,
    payloadText: queue.encrypted
      ? deps.cipher.encrypt(payloadText, { tenantId: ctx.tenantId, queueId: queue.id, messageId })
      : payloadText,
    encrypted: queue.encrypted,
    headers: input.headers ?? {},
    key: input.key ?? null,
    correlationId: input.correlationId ?? null,
    traceId: input.traceId ?? null,
    expiresAt: input.ttlMs ? Math.max(now, deliverAt) + input.ttlMs : null,
    // A delayed message is published when it is promoted; keep when it was sent.
    publishedAt: deliverAt > now ? now : null,
  }
  return {
    write: { message, dedupId, deliverAt },
    partition: choosePartition(queue, input.key, dedupId),
    deliverAt,
  }
}

/**
 * Sends every message with a client-chosen id to the partition its first copy took, so an id
 * deduplicates across the queue whatever key each copy carries, not only within a partition.
 */
async function routeDuplicates(
  deps: { messages: MessageStore; limits: { dedupWindowMs: number } },
  queue: Queue,
  prepared: Prepared[]
): Promise<void> {
  if (queue.partitionCount === 1) return
  const claiming = prepared.filter((p) => p.write.dedupId !== null)
  if (claiming.length === 0) return
  const routed = await deps.messages.routeDedup(
    queue,
    claiming.map((p) => ({ dedupId: p.write.dedupId as string, partition: p.partition })),
    deps.limits.dedupWindowMs
  )
  claiming.forEach((p, i) => {
    p.partition = routed[i] ?? p.partition
  })
}

/**
 * Writes prepared messages, one atomic script call per partition touched.
 * @returns outcomes in input order, or `full` where the partition had no room.
 */
export async function writeMessages(
  deps: {
    messages: MessageStore & Pick<DelayedStore, 'registerDelayed'>
    limits: { dedupWindowMs: number }
  },
  queue: Queue,
  prepared: Prepared[],
  now: number
): Promise<Array<PublishOutcome | 'full'>> {
  await routeDuplicates(deps, queue, prepared)
  const byPartition = new Map<number, number[]>()
  prepared.forEach((p, i) => {
    const list = byPartition.get(p.partition) ?? []
    list.push(i)
    byPartition.set(p.partition, list)
  })
  const out: Array<PublishOutcome | 'full'> = new Array(prepared.length)
  // maxLength is the queue's; each partition holds its share.
  const maxLength = Math.max(1, Math.ceil(queue.maxLength / queue.partitionCount))
  await Promise.all(
    [...byPartition].map(async ([partition, indexes]) => {
      const results: WriteResult[] = await deps.messages.write(
        queue,
        partition,
        indexes.map((i) => prepared[i]!.write),
        { now, maxLength, dedupWindowMs: deps.limits.dedupWindowMs }
      )
      // A duplicate of a scheduled message may be the retry of a publish that died between
      // storing it and registering its due time. Registering the partition as due now costs a
      // ticker one look, which files it under its real earliest due time.
      const scheduled = results.flatMap((r, j) =>
        r.status !== 'scheduled' ? [] : r.duplicate ? [now] : [prepared[indexes[j]!]!.deliverAt]
      )
      if (scheduled.length > 0)
        await deps.messages.registerDelayed(queue, partition, Math.min(...scheduled))
      results.forEach((r, j) => {
        const i = indexes[j]!
        const p = prepared[i]!
        out[i] =
          r.status === 'full'
            ? 'full'
            : {
                messageId: p.write.message.messageId,
                partition,
                status: r.status,
                publishedAt: new Date(r.publishedAt),
                ...(r.status === 'scheduled' && !r.duplicate
                  ? { deliverAt: new Date(p.deliverAt) }
                  : {}),
                duplicate: r.duplicate,
              }
      })
    })
  )
  return out
}

const queueFull = (queue: Queue, details?: Record<string, unknown>) =>
  new MqError(
    'MQ_QUEUE_FULL',
    `queue '${queue.name}' holds its maximum of ${queue.maxLength} messages`,
    details,
    1
  )

/**
 * Publishes one message.
 * @throws MqError MQ_QUEUE_NOT_FOUND, MQ_QUEUE_PAUSED, MQ_FORBIDDEN, MQ_MESSAGE_TOO_LARGE,
 *   MQ_VALIDATION_FAILED (schema), MQ_QUEUE_FULL.
 */
export async function publishMessage(
  deps: PublishDeps,
  ctx: DomainContext,
  queueName: string,
  input: PublishInput,
  opts: { trusted?: boolean } = {}
): Promise<PublishOutcome & { queue: string }> {
  const queue = await publishableQueue(deps, ctx, queueName, opts.trusted)
  const now = deps.now()
  const [outcome] = await writeMessages(
    deps,
    queue,
    [prepare(deps, ctx, queue, input, now, null)],
    now
  )
  if (!outcome || outcome === 'full') throw queueFull(queue)
  deps.metrics.published(queue, countPublished([outcome]))
  return { ...outcome, queue: queue.name }
}

/**
 * Publishes a batch: every message is validated before anything is stored, so one invalid
 * message fails the whole batch. When a partition fills up mid-batch the answer is 429 with
 * the outcome of every message in `details.results`: retrying with the same message ids
 * stores only what is missing.
 */
export async function publishBatch(
  deps: PublishDeps,
  ctx: DomainContext,
  queueName: string,
  inputs: PublishInput[]
): Promise<{ queue: string; published: number; duplicates: number; results: PublishOutcome[] }> {
  const queue = await publishableQueue(deps, ctx, queueName)
  const now = deps.now()
  const prepared = inputs.map((input, i) => prepare(deps, ctx, queue, input, now, i))
  const outcomes = await writeMessages(deps, queue, prepared, now)
  if (outcomes.includes('full')) {
    throw queueFull(queue, {
      results: outcomes.map((o, index) =>
        o === 'full'
          ? { index, status: 'rejected' }
          : { index, messageId: o.messageId, status: o.status }
      ),
    })
  }
  const results = outcomes as PublishOutcome[]
  const duplicates = results.filter((r) => r.duplicate).length
  deps.metrics.published(queue, countPublished(results))
  return { queue: queue.name, published: results.length - duplicates, duplicates, results }
}
