import { createHash } from 'node:crypto'
import type { QueueEntry, SettledEntry, StoredDelivery, StoredMessage } from './messages'
import type { Queue } from './queues'
import type { Subscription } from './subscriptions'

/** `LEDGER_MODE`: every message and attempt, only failed attempts (with their messages), or nothing. */
export type LedgerMode = 'all' | 'failures' | 'off'

/**
 * How long acknowledged entries wait in their stream for the ledger (`LEDGER_MODE=all`) to read
 * them: the ledger is a moment behind the consumers, and the trimmer would otherwise take what
 * it is about to read. Never longer, so a stalled ledger holds back at most this much of a
 * queue's traffic; `maxLength` and retention do not wait at all. What goes unread is a gap.
 */
export const LEDGER_TRIM_GRACE_MS = 30_000

/** How one delivery of a message to a subscription ended (`consumption_records.status`). */
export type AttemptStatus = 'success' | 'failed' | 'retrying' | 'dead_letter'

/** A message's latest outcome as the ledger keeps it (`message_records.status`). */
export type RecordedStatus = 'published' | 'acked' | 'failed' | 'dead_letter'

/** The message status an attempt leaves behind: a retried message has failed until it succeeds. */
export const STATUS_AFTER: Record<AttemptStatus, RecordedStatus> = {
  success: 'acked',
  failed: 'failed',
  retrying: 'failed',
  dead_letter: 'dead_letter',
}

type Published = StoredMessage & { publishedAt: number }

/** One delivery outcome on its way to `consumption_records`. */
export interface Attempt {
  messageId: string
  partition: number
  streamId: string
  /** Which delivery of the message to the subscription this was; 1 for the first. */
  deliveryCount: number
  status: AttemptStatus
  /** When it ended (ms). */
  at: number
  /** From hand-out to the consumer's answer; null when no consumer answered. */
  processingMs: number | null
  error: string | null
  /** A webhook receiver's HTTP status, when one answered the attempt with other than 2xx. */
  statusCode?: number
  nextRetryAt: number | null
  /** The message itself, for a ledger that does not read the streams (`failures`). */
  message: Published | null
}

/** The attempts of one subscription, as the consume paths log them together. */
export interface AttemptBatch {
  tenantId: string
  queueId: string
  subscriptionId: string
  /** The subscription's consumer name (`consumption_records.consumer_instance`). */
  consumer: string
  attempts: Attempt[]
}

/** Where the consume paths append attempts; the worker's ledger writer stores them. */
export interface ConsumptionLog {
  readonly mode: LedgerMode
  /** Never rejects: losing a ledger entry must not fail an ack that has already happened. */
  append(sub: Subscription, queue: Queue, attempts: Attempt[]): Promise<void>
}

/** One attempt as the ledger shows it. */
export interface AttemptRecord {
  subscriptionId: string
  consumerGroup: string
  consumerName: string
  status: AttemptStatus
  deliveryCount: number
  processingTimeMs: number | null
  error: string | null
  /** The webhook receiver's HTTP status for a failed push; null otherwise. */
  statusCode: number | null
  at: Date
  nextRetryAt: Date | null
}

/** A message as the ledger recorded it, with every recorded attempt, oldest first. */
export interface LedgerEntry {
  partition: number
  /** `payloadText` is 'null' when the ledger saw the message's attempts but not the message. */
  message: Published
  status: RecordedStatus
  /** When an operator removed it from the queue (deleted, or redriven away), if so. */
  removedAt: Date | null
  attempts: AttemptRecord[]
}

/**
 * Where an operator's removal of messages from a queue (a delete, a redrive back out of a
 * dead-letter queue) is noted in the ledger, so `GET` tells a removed message from a trimmed
 * one. Never rejects: the removal has happened in Redis by then.
 */
export interface RemovalLog {
  recordRemovals(queue: Queue, entries: QueueEntry[], at: number): Promise<void>
}

/** Reads the ledger for `GET /messages/{id}`. */
export interface LedgerReader {
  /** The message of one queue of the tenant, or null. */
  find(tenantId: string, queueId: string, messageId: string): Promise<LedgerEntry | null>
}

/** Whether `mode` keeps attempts that ended as `status`. */
export function keeps(mode: LedgerMode, status: AttemptStatus): boolean {
  return mode === 'all' || (mode === 'failures' && status !== 'success')
}

/**
 * What settle() must tell about the entries it settles so they can be logged as `status`:
 * message ids when the ledger reads the streams itself, whole messages when it does not.
 */
export function settleDetails(
  log: ConsumptionLog | undefined,
  status: AttemptStatus
): 'ids' | 'messages' | undefined {
  if (!log || !keeps(log.mode, status)) return undefined
  return log.mode === 'failures' ? 'messages' : 'ids'
}

/**
 * The attempts settle() ended: `items` are what it was given, `settled` what it reports back.
 * Entries already gone from the stream have no message id and are left out.
 */
export function settledAttempts(
  partition: number,
  items: ReadonlyArray<{ streamId: string; deliveryCount: number; delayMs: number }>,
  settled: readonly SettledEntry[],
  outcome: { status: AttemptStatus; at: number; error?: string; statusCode?: number }
): Attempt[] {
  const given = new Map(items.map((i) => [i.streamId, i]))
  // A consumer answered an ack or a nack; a dead letter is the service's own move.
  const answered = outcome.status === 'success' || outcome.status === 'retrying'
  return settled.flatMap((s) => {
    const item = given.get(s.streamId)
    if (!item || !s.messageId) return []
    return [
      {
        messageId: s.messageId,
        partition,
        streamId: s.streamId,
        deliveryCount: item.deliveryCount,
        status: outcome.status,
        at: outcome.at,
        processingMs: answered ? s.idleMs : null,
        error: outcome.error ?? null,
        ...(outcome.statusCode !== undefined && { statusCode: outcome.statusCode }),
        nextRetryAt: outcome.status === 'retrying' ? outcome.at + item.delayMs : null,
        message: s.message,
      },
    ]
  })
}

/** Why an attempt the consumer never answered failed. */
export const TIMED_OUT = 'not acknowledged within the visibility timeout'

/**
 * What redeliveries reveal: the delivery before each one ended without an answer. When that
 * delivery was nacked instead, the nack's own record wins (see the ledger repository).
 */
export function timedOutAttempts(
  log: ConsumptionLog | undefined,
  delivered: readonly StoredDelivery[],
  at: number
): Attempt[] {
  if (!log || !keeps(log.mode, 'failed')) return []
  return delivered
    .filter((d) => d.deliveryCount > 1)
    .map((d) => ({
      messageId: d.message.messageId,
      partition: d.partition,
      streamId: d.streamId,
      deliveryCount: d.deliveryCount - 1,
      status: 'failed' as const,
      at,
      processingMs: null,
      error: TIMED_OUT,
      nextRetryAt: null,
      message: log.mode === 'failures' ? d.message : null,
    }))
}

/**
 * The id of one attempt (the primary key of its `consumption_records` row), derived from
 * what makes it unique, so a replayed event or a later report of the same attempt lands on
 * the same row. Laid out as a UUIDv7 is (RFC 9562, version 8 for a custom one): the first 48
 * bits are the stream entry's time, so attempts recorded together sit together in the key's
 * index instead of at random places in it.
 */
export function attemptId(
  subscriptionId: string,
  partition: number,
  streamId: string,
  deliveryCount: number
): string {
  const h = createHash('sha256')
    .update(`${subscriptionId}|${partition}|${streamId}|${deliveryCount}`)
    .digest()
  h.writeUIntBE(Number(streamId.slice(0, streamId.indexOf('-'))), 0, 6)
  h[6] = (h[6]! & 0x0f) | 0x80
  h[8] = (h[8]! & 0x3f) | 0x80
  const hex = h.subarray(0, 16).toString('hex')
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`
}
