import type { Attempt, AttemptBatch, AttemptStatus } from '../domain/ledger'
import type { StoredMessage } from '../domain/messages'
import { encodeFields } from '../streams/codec'

export type Published = StoredMessage & { publishedAt: number }

/** A message as the ledger writer read it from its stream. */
export interface StreamMessage {
  tenantId: string
  queueId: string
  partition: number
  streamId: string
  message: Published
}

/**
 * A `message_records` row as the ledger sends it: the message's stream entry as it is, its
 * fields under their stream names (codec.ts: `i` id, `p` payload, `e` sealed, `h` headers,
 * `k`, `c`, `t`, `x` expiry, `ts` publish time) plus `s`, the stream id; the statement derives
 * the columns. readLedgerRows.lua writes such rows straight from Redis.
 */
export interface LedgerRow {
  tenant_id: string
  topic_id: string
  partition_id: number
  s: string
  [field: string]: string | number | boolean | null | undefined
}

/** Rows of one read, as a JSON array text, and how many it holds. */
export interface RowsJson {
  json: string
  count: number
}

/** A message's stream fields as {@link LedgerRow} fields. */
export function fieldsOf(fields: string[]): Record<string, string> {
  const out: Record<string, string> = {}
  for (let i = 0; i + 1 < fields.length; i += 2) out[fields[i]!] = fields[i + 1]!
  return out
}

/** The row of a stream entry read as fields (a claimed entry, or one of a multi-stream read). */
export function ledgerRow(
  target: { tenantId: string; queueId: string; partition: number },
  streamId: string,
  fields: string[]
): LedgerRow {
  return {
    ...fieldsOf(fields),
    tenant_id: target.tenantId,
    topic_id: target.queueId,
    partition_id: target.partition,
    s: streamId,
  }
}

/** `items` in runs of at most `size`. */
export function chunks<T>(items: T[], size: number): T[][] {
  const out: T[][] = []
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size))
  return out
}

/** A `consumption_records` row as the ledger sends it. */
export interface ConsumptionRow {
  id: string
  tenant_id: string
  subscription_id: string
  message_id: string
  consumer_instance: string
  partition_id: number
  status: AttemptStatus
  processing_time_ms: number | null
  error_message: string | null
  status_code: number | null
  retry_count: number
  consumed_at: number
  processed_at: number
  next_retry_at: number | null
}

/** The row of one attempt; `id` is its `attemptId` (domain/ledger.ts). */
export function toConsumptionRow(id: string, b: AttemptBatch, a: Attempt): ConsumptionRow {
  return {
    id,
    tenant_id: b.tenantId,
    subscription_id: b.subscriptionId,
    message_id: a.messageId,
    consumer_instance: b.consumer,
    partition_id: a.partition,
    status: a.status,
    processing_time_ms: a.processingMs === null ? null : Math.round(a.processingMs),
    error_message: a.error,
    status_code: a.statusCode ?? null,
    retry_count: a.deliveryCount - 1,
    // When the delivery was handed out, where known; when it ended otherwise.
    consumed_at: a.at - (a.processingMs ?? 0),
    processed_at: a.at,
    next_retry_at: a.nextRetryAt,
  }
}

/** The row of the message an attempt carries. */
export function messageRow(b: AttemptBatch, a: Attempt, message: Published): LedgerRow {
  return {
    ...fieldsOf(encodeFields(message)),
    i: a.messageId,
    tenant_id: b.tenantId,
    topic_id: b.queueId,
    partition_id: a.partition,
    s: a.streamId,
  }
}
