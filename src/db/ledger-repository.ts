import { and, asc, eq, type SQL, sql } from 'drizzle-orm'
import {
  type Attempt,
  type AttemptBatch,
  type AttemptStatus,
  attemptId,
  type LedgerEntry,
  type LedgerReader,
  type RecordedStatus,
  STATUS_AFTER,
} from '../domain/ledger'
import type { StoredMessage } from '../domain/messages'
import type { Logger } from '../observability/logger'
import { streamIdTime } from '../streams/codec'
import type { Db } from './client'
import { consumptionRecords, messageRecords, messageSubscriptions } from './schema'

type Published = StoredMessage & { publishedAt: number }

/** A message as the ledger writer read it from its stream. */
export interface StreamMessage {
  tenantId: string
  queueId: string
  partition: number
  streamId: string
  message: Published
}

/** `content_type` of a payload kept as its queue keeps it: encrypted, as a JSON string. */
export const SEALED_CONTENT_TYPE = 'application/vnd.mq.sealed'

/**
 * Rows per INSERT. Each INSERT sends its rows as one JSON parameter that PostgreSQL unpacks
 * with `jsonb_to_recordset`: building a statement with a placeholder per column and row took
 * most of the ledger's CPU (and so a share of every publish in role `all`), a single
 * `JSON.stringify` takes almost none.
 */
const ROWS_PER_INSERT = 1000

/**
 * What a message itself fills in its row, as `jsonb_to_recordset` reads it: times in ms since
 * the epoch, the payload as the stream holds it (JSON text, or sealed text when `sealed`). A
 * placeholder row, written from an attempt before its message, lacks these.
 */
interface MessageBody {
  message_key: string | null
  correlation_id: string | null
  headers: Record<string, string>
  payload: string | null
  sealed: boolean
  payload_size: number
  partition_id: number
  published_at: number
  scheduled_at: number | null
  expires_at: number | null
  trace_id: string | null
}

interface MessageRow extends Partial<MessageBody> {
  tenant_id: string
  topic_id: string
  message_id: string
  partition_id: number
  published_at: number
  status?: RecordedStatus
  consumed_at?: number | null
  retry_count?: number
}

interface ConsumptionRow {
  id: string
  tenant_id: string
  subscription_id: string
  message_id: string
  consumer_instance: string
  partition_id: number
  status: AttemptStatus
  processing_time_ms: number | null
  error_message: string | null
  retry_count: number
  consumed_at: number
  processed_at: number
  next_retry_at: number | null
}

/** The body columns, which a later copy of the message fills in where a placeholder left them. */
const BODY_COLUMNS = [
  'message_key',
  'correlation_id',
  'headers',
  'payload',
  'payload_size',
  'content_type',
  'partition_id',
  'published_at',
  'scheduled_at',
  'expires_at',
  'trace_id',
] as const

const ms = (column: string) => sql.raw(`to_timestamp(r.${column} / 1000.0)`)

/**
 * `INSERT … SELECT` of message rows from the JSON array in `$1`; `columns` beyond the body are
 * the attempt path's outcome columns.
 */
function insertMessages(rows: MessageRow[], withOutcome: boolean, onConflict: SQL): SQL {
  return sql`
    insert into message_records as m (tenant_id, topic_id, message_id, ${sql.raw(BODY_COLUMNS.join(', '))}
      ${withOutcome ? sql.raw(', status, consumed_at, retry_count') : sql.empty()})
    select r.tenant_id, r.topic_id, r.message_id, r.message_key, r.correlation_id,
      coalesce(r.headers, '{}'::jsonb),
      case when r.sealed then to_jsonb(r.payload) else r.payload::jsonb end,
      r.payload_size,
      case when r.sealed then ${SEALED_CONTENT_TYPE} else 'application/json' end,
      r.partition_id, ${ms('published_at')}, ${ms('scheduled_at')}, ${ms('expires_at')}, r.trace_id
      ${withOutcome ? sql`, r.status, ${ms('consumed_at')}, r.retry_count` : sql.empty()}
    from jsonb_to_recordset(${JSON.stringify(rows)}::jsonb) as r(
      tenant_id uuid, topic_id uuid, message_id text, message_key text, correlation_id text,
      headers jsonb, payload text, sealed boolean, payload_size integer, partition_id integer,
      published_at float8, scheduled_at float8, expires_at float8, trace_id text,
      status text, consumed_at float8, retry_count integer)
    on conflict (tenant_id, topic_id, message_id) do update set ${onConflict}`
}

/** Sets the body columns from the new copy (`excluded`) where `when` holds. */
const fillBody = (when: SQL) =>
  sql.join(
    BODY_COLUMNS.map(
      (c) =>
        sql`${sql.raw(c)} = case when ${when} then excluded.${sql.raw(c)} else m.${sql.raw(c)} end`
    ),
    sql`, `
  )

function bodyOf(m: Published, partition: number, streamId: string): MessageBody {
  const enteredAt = streamIdTime(streamId)
  return {
    message_key: m.key,
    correlation_id: m.correlationId,
    headers: m.headers,
    // An encrypted queue's payload stays sealed at rest; it is opened when read, like the stream's.
    payload: m.payloadText,
    sealed: m.encrypted,
    payload_size: Buffer.byteLength(m.payloadText),
    partition_id: partition,
    published_at: m.publishedAt,
    // A delayed message entered its stream when it came due, after it was published.
    scheduled_at: enteredAt > m.publishedAt ? enteredAt : null,
    expires_at: m.expiresAt,
    trace_id: m.traceId,
  }
}

/** The SQLSTATE of a PostgreSQL error, through drizzle's wrapping. */
function sqlState(err: unknown): string | undefined {
  for (let e = err; e instanceof Error; e = (e as { cause?: unknown }).cause) {
    const code = (e as { code?: unknown }).code
    if (typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code)) return code
  }
  return undefined
}

/**
 * Refused for what a row holds rather than for the database's state: a data exception (a
 * payload jsonb cannot hold, such as `\u0000`) or an integrity violation (its queue or
 * subscription was deleted meanwhile).
 */
const refusedRow = (err: unknown) => /^2[23]/.test(sqlState(err) ?? '')

/** `items` in runs of at most `size`. */
export function chunks<T>(items: T[], size: number): T[][] {
  const out: T[][] = []
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size))
  return out
}

/** A row with its payload left out, for a payload jsonb cannot hold. */
const withoutPayload = <T extends { payload?: string | null }>(row: T): T => ({
  ...row,
  payload: null,
})

/**
 * `message_records` and `consumption_records`: written in batches by the ledger writer,
 * idempotently (a replayed batch changes nothing), and read for `GET /messages/{id}`. A
 * message's row may be written first by its stream or first by an attempt (the writer reads
 * both concurrently): an attempt then leaves a placeholder that the stream's copy fills in.
 */
export class LedgerRepository implements LedgerReader {
  constructor(
    private readonly db: Db,
    private readonly logger: Logger
  ) {}

  /** Records messages read from their streams; one already recorded keeps its row. */
  async recordMessages(messages: StreamMessage[]): Promise<void> {
    const rows = messages.map(
      (m): MessageRow => ({
        tenant_id: m.tenantId,
        topic_id: m.queueId,
        message_id: m.message.messageId,
        ...bodyOf(m.message, m.partition, m.streamId),
      })
    )
    await this.insert(
      rows,
      (batch) =>
        this.db.execute(insertMessages(batch, false, fillBody(sql`m.payload_size is null`))),
      withoutPayload
    )
  }

  /**
   * Records attempts, and on each message's row its latest outcome (`status`, `consumed_at`)
   * and highest retry count. One attempt has one row: a later report of it replaces a
   * `failed` inferred from a redelivery, and nothing else.
   */
  async recordAttempts(batches: AttemptBatch[]): Promise<void> {
    const attempts = new Map<string, ConsumptionRow>()
    const messages = new Map<string, MessageRow>()
    for (const b of batches) {
      for (const a of b.attempts) {
        const id = attemptId(b.subscriptionId, a.partition, a.streamId, a.deliveryCount)
        const seen = attempts.get(id)
        if (!seen || (seen.status === 'failed' && a.status !== 'failed')) {
          attempts.set(id, toConsumptionRow(id, b, a))
        }
        const key = `${b.tenantId}|${b.queueId}|${a.messageId}`
        messages.set(key, mergeOutcome(messages.get(key), b, a))
      }
    }
    await this.insert(
      [...attempts.values()],
      (batch) =>
        this.db.execute(sql`
          insert into consumption_records as c (id, tenant_id, subscription_id, message_id,
            consumer_instance, partition_id, status, processing_time_ms, error_message,
            retry_count, consumed_at, processed_at, next_retry_at)
          select r.id, r.tenant_id, r.subscription_id, r.message_id, r.consumer_instance,
            r.partition_id, r.status, r.processing_time_ms, r.error_message, r.retry_count,
            ${ms('consumed_at')}, ${ms('processed_at')}, ${ms('next_retry_at')}
          from jsonb_to_recordset(${JSON.stringify(batch)}::jsonb) as r(
            id uuid, tenant_id uuid, subscription_id uuid, message_id text,
            consumer_instance text, partition_id integer, status text,
            processing_time_ms integer, error_message text, retry_count integer,
            consumed_at float8, processed_at float8, next_retry_at float8)
          on conflict (id) do update set status = excluded.status,
            error_message = excluded.error_message,
            processing_time_ms = excluded.processing_time_ms,
            consumed_at = excluded.consumed_at, processed_at = excluded.processed_at,
            next_retry_at = excluded.next_retry_at
          where c.status = 'failed' and excluded.status <> 'failed'`),
      null
    )
    await this.insert(
      [...messages.values()],
      (batch) =>
        this.db.execute(
          insertMessages(
            batch,
            true,
            sql`
              status = case when m.consumed_at is null or m.consumed_at <= excluded.consumed_at
                then excluded.status else m.status end,
              consumed_at = greatest(m.consumed_at, excluded.consumed_at),
              retry_count = greatest(m.retry_count, excluded.retry_count),
              ${fillBody(sql`m.payload_size is null and excluded.payload_size is not null`)}`
          )
        ),
      withoutPayload
    )
  }

  async find(tenantId: string, queueId: string, messageId: string): Promise<LedgerEntry | null> {
    const [row] = await this.db
      .select()
      .from(messageRecords)
      .where(
        and(
          eq(messageRecords.tenantId, tenantId),
          eq(messageRecords.topicId, queueId),
          eq(messageRecords.messageId, messageId)
        )
      )
    if (!row) return null
    const attempts = await this.db
      .select({ attempt: consumptionRecords, consumerGroup: messageSubscriptions.consumerGroup })
      .from(consumptionRecords)
      .innerJoin(
        messageSubscriptions,
        eq(messageSubscriptions.id, consumptionRecords.subscriptionId)
      )
      .where(
        and(
          eq(consumptionRecords.tenantId, tenantId),
          eq(consumptionRecords.messageId, messageId),
          eq(messageSubscriptions.tenantId, tenantId),
          eq(messageSubscriptions.topicId, queueId)
        )
      )
      .orderBy(asc(consumptionRecords.processedAt), asc(consumptionRecords.retryCount))
    const sealed = row.contentType === SEALED_CONTENT_TYPE
    return {
      partition: row.partitionId ?? 0,
      status: row.status as RecordedStatus,
      message: {
        messageId: row.messageId,
        payloadText: sealed ? String(row.payload) : JSON.stringify(row.payload ?? null),
        encrypted: sealed,
        headers: row.headers,
        key: row.messageKey,
        correlationId: row.correlationId,
        traceId: row.traceId,
        expiresAt: row.expiresAt?.getTime() ?? null,
        publishedAt: row.publishedAt.getTime(),
      },
      attempts: attempts.map(({ attempt: a, consumerGroup }) => ({
        subscriptionId: a.subscriptionId ?? '',
        consumerGroup,
        consumerName: a.consumerInstance,
        status: a.status as AttemptStatus,
        deliveryCount: a.retryCount + 1,
        processingTimeMs: a.processingTimeMs,
        error: a.errorMessage,
        at: a.processedAt ?? a.consumedAt,
        nextRetryAt: a.nextRetryAt,
      })),
    }
  }

  /**
   * Inserts `rows` in batches. A batch refused for what one of its rows holds is retried row
   * by row, so one bad row cannot hold every other back forever: a refused row is retried as
   * `degrade` makes it (a payload jsonb cannot hold is left out), else dropped with a warning
   * (its queue or subscription is gone, and its rows with them). Anything else (PostgreSQL
   * unreachable) is thrown, and the writer retries the whole batch.
   */
  private async insert<T>(
    rows: T[],
    write: (batch: T[]) => Promise<unknown>,
    degrade: ((row: T) => T) | null
  ): Promise<void> {
    for (const batch of chunks(rows, ROWS_PER_INSERT)) {
      try {
        await write(batch)
      } catch (err) {
        if (!refusedRow(err)) throw err
        for (const row of batch) await this.insertOne(row, write, degrade)
      }
    }
  }

  private async insertOne<T>(
    row: T,
    write: (batch: T[]) => Promise<unknown>,
    degrade: ((row: T) => T) | null
  ): Promise<void> {
    for (const attempt of degrade ? [row, degrade(row)] : [row]) {
      try {
        await write([attempt])
        return
      } catch (err) {
        if (!refusedRow(err)) throw err
        this.logger.warn({ err: (err as Error).message }, 'ledger row refused')
      }
    }
  }
}

function toConsumptionRow(id: string, b: AttemptBatch, a: Attempt): ConsumptionRow {
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
    retry_count: a.deliveryCount - 1,
    // When the delivery was handed out, where known; when it ended otherwise.
    consumed_at: a.at - (a.processingMs ?? 0),
    processed_at: a.at,
    next_retry_at: a.nextRetryAt,
  }
}

/** A message's row as its attempts leave it: the latest outcome, the highest retry count. */
function mergeOutcome(row: MessageRow | undefined, b: AttemptBatch, a: Attempt): MessageRow {
  const latest = row?.consumed_at == null || row.consumed_at <= a.at
  const body = a.message ? bodyOf(a.message, a.partition, a.streamId) : null
  return {
    tenant_id: b.tenantId,
    topic_id: b.queueId,
    message_id: a.messageId,
    partition_id: a.partition,
    published_at: streamIdTime(a.streamId),
    ...row,
    ...(body && row?.payload_size === undefined ? body : {}),
    status: latest ? STATUS_AFTER[a.status] : row.status,
    consumed_at: latest ? a.at : row.consumed_at,
    retry_count: Math.max(row?.retry_count ?? 0, a.deliveryCount - 1),
  }
}
