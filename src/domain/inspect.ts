import type { PayloadOpener } from './consume-deps'
import type { DomainContext } from './context'
import { MqError, notFound } from './errors'
import type { AttemptRecord, LedgerReader, RemovalLog } from './ledger'
import type { GroupProgress, QueueEntry, StoredMessage } from './messages'
import type { DelayedStore, InspectionStore, MessageStore, QueueStore } from './ports'
import { choosePartition, type PayloadSealer, writeMessages } from './publish'
import type { Queue } from './queues'

export interface InspectDeps {
  queues: QueueStore
  messages: MessageStore & InspectionStore & Pick<DelayedStore, 'registerDelayed'>
  cipher: PayloadSealer & PayloadOpener
  limits: { dedupWindowMs: number }
  /** Where a message is found once it has left Redis, with its recorded attempts. */
  ledger: LedgerReader
  /** Where removals by an operator are noted (a no-op with LEDGER_MODE=off). */
  removals: RemovalLog
}

export type MessageStatus =
  | 'scheduled'
  | 'published'
  | 'delivered'
  | 'acked'
  | 'failed'
  | 'dead_letter'
  | 'expired'
  | 'removed'

/** A message as peeked or looked up. */
export interface MessageView {
  messageId: string
  queue: string
  partition: number
  payload: unknown
  headers: Record<string, string>
  key: string | null
  correlationId: string | null
  traceId: string | null
  publishedAt: Date
  expiresAt: Date | null
}

/** Headers the dead-lettering adds; a redrive takes them off again. */
const DEAD_LETTER_HEADERS = [
  'x-mq-original-queue',
  'x-mq-subscription-id',
  'x-mq-consumer-group',
  'x-mq-delivery-count',
  'x-mq-dead-letter-reason',
  'x-mq-failed-at',
]

export async function queueOf(deps: InspectDeps, ctx: DomainContext, name: string): Promise<Queue> {
  const queue = await deps.queues.get(ctx.tenantId, name)
  if (!queue) throw notFound('MQ_QUEUE_NOT_FOUND', 'queue', name)
  return queue
}

/** The payload for an operator's eyes; null when it cannot be decrypted or parsed. */
function readablePayload(deps: InspectDeps, queue: Queue, m: StoredMessage): unknown {
  try {
    return JSON.parse(plaintext(deps, queue, m))
  } catch {
    return null
  }
}

function plaintext(deps: InspectDeps, queue: Queue, m: StoredMessage): string {
  return m.encrypted
    ? deps.cipher.decrypt(m.payloadText, {
        tenantId: queue.tenantId,
        queueId: queue.id,
        messageId: m.messageId,
      })
    : m.payloadText
}

function view(
  deps: InspectDeps,
  queue: Queue,
  partition: number,
  m: StoredMessage & { publishedAt: number }
): MessageView {
  return {
    messageId: m.messageId,
    queue: queue.name,
    partition,
    payload: readablePayload(deps, queue, m),
    headers: m.headers,
    key: m.key,
    correlationId: m.correlationId,
    traceId: m.traceId,
    publishedAt: new Date(m.publishedAt),
    expiresAt: m.expiresAt === null ? null : new Date(m.expiresAt),
  }
}

/** Peek positions: the last stream id seen in each partition. */
const encodeCursor = (positions: string[]) => Buffer.from(positions.join(',')).toString('base64url')

function startPositions(queue: Queue, from: string | undefined): string[] {
  if (from === undefined) return Array(queue.partitionCount).fill('0-0')
  const time = Date.parse(from)
  if (!Number.isNaN(time) && /^\d{4}-/.test(from)) {
    return Array(queue.partitionCount).fill(`${Math.max(0, time - 1)}-18446744073709551615`)
  }
  const positions = Buffer.from(from, 'base64url').toString('utf8').split(',')
  if (positions.length !== queue.partitionCount || !positions.every((p) => /^\d+-\d+$/.test(p))) {
    throw new MqError(
      'MQ_VALIDATION_FAILED',
      '`from` must be an ISO time or a nextCursor of this queue',
      {
        issues: [{ path: 'from', code: 'invalid_cursor', message: 'not an ISO time or cursor' }],
      }
    )
  }
  return positions
}

const byTime = (a: QueueEntry, b: QueueEntry) => {
  const [am = 0, as = 0] = a.streamId.split('-').map(Number)
  const [bm = 0, bs = 0] = b.streamId.split('-').map(Number)
  return am - bm || as - bs || a.partition - b.partition
}

/**
 * Reads messages without consuming them, oldest first across partitions. `from` is an ISO
 * time or the `nextCursor` of the page before.
 */
export async function peekMessages(
  deps: InspectDeps,
  ctx: DomainContext,
  queueName: string,
  opts: { from?: string; limit: number }
): Promise<{ items: MessageView[]; nextCursor: string | null }> {
  const queue = await queueOf(deps, ctx, queueName)
  const positions = startPositions(queue, opts.from)
  const read = await Promise.all(
    positions.map((after, p) => deps.messages.readEntries(queue, p, after, opts.limit + 1))
  )
  const merged = read.flat().sort(byTime)
  const page = merged.slice(0, opts.limit)
  for (const e of page) positions[e.partition] = e.streamId
  return {
    items: page.map((e) => view(deps, queue, e.partition, e.message)),
    nextCursor: merged.length > opts.limit ? encodeCursor(positions) : null,
  }
}

const expired = (m: StoredMessage) => m.expiresAt !== null && m.expiresAt <= Date.now()

/**
 * A message's record, with every attempt the ledger has of it. While the message is
 * scheduled or still in its stream, Redis tells its status and each consumer group's
 * progress with it; once it has left (acknowledged and trimmed, purged, past retention), the
 * ledger tells its latest outcome, and `consumerGroups` is empty.
 * @throws MqError MQ_MESSAGE_NOT_FOUND
 */
export async function getMessage(
  deps: InspectDeps,
  ctx: DomainContext,
  queueName: string,
  messageId: string
): Promise<
  MessageView & {
    status: MessageStatus
    deliverAt: Date | null
    consumerGroups: GroupProgress[]
    attempts: AttemptRecord[]
  }
> {
  const queue = await queueOf(deps, ctx, queueName)
  const [found, recorded] = await Promise.all([
    deps.messages.findMessage(queue, messageId),
    deps.ledger.find(ctx.tenantId, queue.id, messageId),
  ])
  if (!found) {
    if (!recorded) throw notFound('MQ_MESSAGE_NOT_FOUND', 'message', messageId)
    return {
      ...view(deps, queue, recorded.partition, recorded.message),
      status: recorded.removedAt
        ? 'removed'
        : recorded.status === 'published' && expired(recorded.message)
          ? 'expired'
          : recorded.status,
      deliverAt: null,
      consumerGroups: [],
      attempts: recorded.attempts,
    }
  }
  const { groups, message } = found
  const states = new Set(groups.map((g) => g.state))
  const status: MessageStatus =
    found.deliverAt !== null
      ? 'scheduled'
      : states.has('delivered')
        ? 'delivered'
        : groups.length > 0 && states.size === 1 && states.has('acked')
          ? // Dead-lettering acknowledges a message too; the ledger tells the two apart.
            recorded?.status === 'dead_letter'
            ? 'dead_letter'
            : 'acked'
          : expired(message)
            ? 'expired'
            : 'published'
  return {
    ...view(deps, queue, found.partition, message),
    status,
    deliverAt: found.deliverAt === null ? null : new Date(found.deliverAt),
    consumerGroups: groups,
    attempts: recorded?.attempts ?? [],
  }
}

/**
 * Cancels a message that is still scheduled.
 * @throws MqError MQ_MESSAGE_ALREADY_PUBLISHED when it was delivered to its stream already,
 *   MQ_MESSAGE_NOT_FOUND when there is no such message.
 */
export async function cancelMessage(
  deps: InspectDeps,
  ctx: DomainContext,
  queueName: string,
  messageId: string
): Promise<void> {
  const queue = await queueOf(deps, ctx, queueName)
  if (await deps.messages.cancelScheduled(queue, messageId)) return
  if (await deps.messages.findMessage(queue, messageId)) {
    throw new MqError('MQ_MESSAGE_ALREADY_PUBLISHED', `message '${messageId}' is already published`)
  }
  throw notFound('MQ_MESSAGE_NOT_FOUND', 'message', messageId)
}

/**
 * Moves dead letters back: each goes to `toQueue`, or to the queue it came from (header
 * `x-mq-original-queue`), as a fresh message with a fresh delivery count. The copy is
 * written first (deduplicated on the dead letter) and the dead letter deleted after, so a
 * crash in between neither loses nor doubles it. Dead letters whose origin is unknown or
 * gone stay where they are.
 * @returns how many were moved.
 */
export async function redriveMessages(
  deps: InspectDeps,
  ctx: DomainContext,
  queueName: string,
  opts: { toQueue?: string; max: number }
): Promise<number> {
  const dlq = await queueOf(deps, ctx, queueName)
  const targets = new Map<string, Queue | null>()
  const target = async (name: string) => {
    if (!targets.has(name)) targets.set(name, await deps.queues.get(ctx.tenantId, name))
    return targets.get(name) ?? null
  }
  if (opts.toQueue === queueName) {
    // Its own copies would land behind the read position and be read again, until `max`.
    throw new MqError('MQ_VALIDATION_FAILED', 'toQueue: must not be the queue redriven from', {
      issues: [{ path: 'toQueue', code: 'custom', message: 'must not be the queue redriven from' }],
    })
  }
  if (opts.toQueue !== undefined && !(await target(opts.toQueue))) {
    throw notFound('MQ_QUEUE_NOT_FOUND', 'queue', opts.toQueue)
  }
  let moved = 0
  for (let p = 0; p < dlq.partitionCount && moved < opts.max; p++) {
    let after = '0-0'
    while (moved < opts.max) {
      const entries = await deps.messages.readEntries(
        dlq,
        p,
        after,
        Math.min(500, opts.max - moved)
      )
      if (entries.length === 0) break
      after = entries.at(-1)!.streamId
      moved += (await redriveBatch(deps, dlq, entries, opts.toQueue, target)).moved
    }
  }
  return moved
}

/** Where a redriven dead letter went. */
export interface Redriven {
  messageId: string
  queue: string
  partition: number
}

/**
 * Redrives entries of one read of `dlq` ({@link redriveMessages}), each to `toQueue` or its
 * origin. @returns how many left `dlq`, and where the copies were written.
 */
export async function redriveBatch(
  deps: InspectDeps,
  dlq: Queue,
  entries: QueueEntry[],
  toQueue: string | undefined,
  target: (name: string) => Promise<Queue | null>
): Promise<{ moved: number; placed: Redriven[] }> {
  const byTarget = new Map<Queue, QueueEntry[]>()
  for (const e of entries) {
    const queue = await target(toQueue ?? e.message.headers['x-mq-original-queue'] ?? '')
    if (!queue || queue.id === dlq.id) continue
    byTarget.set(queue, [...(byTarget.get(queue) ?? []), e])
  }
  const now = Date.now()
  let moved = 0
  const placed: Redriven[] = []
  for (const [queue, list] of byTarget) {
    if (queue.status !== 'active') {
      throw new MqError(
        'MQ_QUEUE_PAUSED',
        `queue '${queue.name}' is ${queue.status} and takes no messages`
      )
    }
    const prepared = list.map((e) => {
      const headers = Object.fromEntries(
        Object.entries(e.message.headers).filter(([k]) => !DEAD_LETTER_HEADERS.includes(k))
      )
      headers['x-mq-redrive-count'] = String(
        Number(e.message.headers['x-mq-redrive-count'] ?? 0) + 1
      )
      const text = plaintext(deps, dlq, e.message)
      const dedupId = `redrive:${dlq.id}:${e.partition}:${e.streamId}`
      return {
        write: {
          message: {
            ...e.message,
            payloadText: queue.encrypted
              ? deps.cipher.encrypt(text, {
                  tenantId: queue.tenantId,
                  queueId: queue.id,
                  messageId: e.message.messageId,
                })
              : text,
            encrypted: queue.encrypted,
            headers,
          },
          dedupId,
          deliverAt: 0,
        },
        partition: choosePartition(queue, e.message.key ?? undefined, dedupId),
        deliverAt: 0,
      }
    })
    const outcomes = await writeMessages(deps, queue, prepared, now)
    const done = list.filter((_, i) => outcomes[i] !== 'full')
    prepared.forEach((p, i) => {
      if (outcomes[i] === 'full') return
      placed.push({
        messageId: list[i]!.message.messageId,
        queue: queue.name,
        partition: p.partition,
      })
    })
    for (let p = 0; p < dlq.partitionCount; p++) {
      moved += await deps.messages.removeEntries(
        dlq,
        p,
        done.filter((e) => e.partition === p).map((e) => e.streamId)
      )
    }
    await deps.removals.recordRemovals(dlq, done, now)
  }
  return { moved, placed }
}
