import type { StoredMessage } from '../domain/messages'

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
