import { and, asc, eq, inArray, type SQL, sql } from 'drizzle-orm'
import {
  type AttemptBatch,
  type AttemptStatus,
  attemptId,
  type LedgerEntry,
  type LedgerReader,
  STATUS_AFTER,
} from '../domain/ledger'
import type { QueueEntry } from '../domain/messages'
import type { Logger } from '../observability/logger'
import { encodeFields } from '../streams/codec'
import type { Db } from './client'
import {
  type ConsumptionRow,
  chunks,
  type LedgerRow,
  ledgerRow,
  messageRow,
  type RowsJson,
  type StreamMessage,
  toConsumptionRow,
} from './ledger-rows'
import { executePrepared } from './prepared'
import { consumptionRecords, messageRecords, messageSubscriptions } from './schema'
import { dbErrorFields, transientDbError } from './sql-state'

/** `content_type` of a payload kept as its queue keeps it: encrypted, as a JSON string. */
export const SEALED_CONTENT_TYPE = 'application/vnd.mq.sealed'

/**
 * Rows per INSERT. Rows go to PostgreSQL as one JSON parameter that it unpacks with
 * `json_to_recordset`: building a statement with a placeholder per column and row took most
 * of the ledger's CPU (and so a share of every publish in role `all`). `json`, not `jsonb`:
 * the array is read once, and building it as `jsonb` first cost about 3 µs a row in a plain
 * SELECT (within the noise of the whole insert).
 */
const ROWS_PER_INSERT = 1000

const ms = (value: string) => sql.raw(`to_timestamp(${value} / 1000.0)`)
/** The time part of the stream id, when the entry entered its stream. */
const ENTERED = "split_part(r.s, '-', 1)::float8"
const PUBLISHED = `coalesce(r.ts::float8, ${ENTERED})`

/**
 * The rows' parents (`message_topics` or `message_subscriptions`) that still exist, locked
 * against a delete until the statement's transaction ends: what a foreign key would check,
 * once per parent instead of once per row (the ledger tables have none, schema.ts). Rows of
 * a parent deleted meanwhile find none and are left out.
 */
const liveParents = (table: 'message_topics' | 'message_subscriptions', column: string) =>
  sql.raw(`live as (select id from ${table} where id in (select ${column} from r) for key share)`)

/**
 * `INSERT … SELECT` of {@link LedgerRow}s from the JSON array `rows`. Append-only: a message
 * already recorded keeps its first row (`DO NOTHING`, which unlike `DO UPDATE` also takes two
 * copies of one key in the same statement, so duplicates within a batch cannot fail it).
 */
function insertMessages(rows: string): SQL {
  return sql`
    with r as materialized (
      select * from json_to_recordset(${rows}::json) as r(
        tenant_id uuid, topic_id uuid, partition_id integer, s text, i text, p text, e text,
        h text, k text, c text, t text, x text, ts text)
    ), ${liveParents('message_topics', 'topic_id')}
    insert into message_records as m (tenant_id, topic_id, message_id, message_key,
      correlation_id, headers, payload, payload_size, content_type, partition_id, published_at,
      scheduled_at, expires_at, trace_id)
    select r.tenant_id, r.topic_id, coalesce(r.i, r.s), r.k, r.c, coalesce(r.h::jsonb, '{}'),
      -- The payload as its stream holds it (JSON text, or sealed for an encrypted queue, opened
      -- when read): never parsed here, which was about a fifth of PostgreSQL's work a row.
      r.p, octet_length(r.p),
      case when r.e = '1' then ${SEALED_CONTENT_TYPE} else 'application/json' end,
      r.partition_id, ${ms(PUBLISHED)},
      -- A delayed message entered its stream when it came due, after it was published.
      case when ${sql.raw(ENTERED)} > r.ts::float8 then ${ms(ENTERED)} end,
      ${ms('r.x::float8')}, r.t
    from r join live on live.id = r.topic_id
    on conflict (tenant_id, topic_id, message_id) do nothing`
}

/** Who a row is about, for the record of its refusal: ids only, never its content. */
const messageIds = (row: LedgerRow) => ({
  tenantId: row.tenant_id,
  queueId: row.topic_id,
  messageId: row.i ?? row.s,
})

const attemptIds = (row: ConsumptionRow) => ({
  tenantId: row.tenant_id,
  subscriptionId: row.subscription_id,
  messageId: row.message_id,
})

/**
 * `message_records` and `consumption_records`: written in batches by the ledger writer,
 * idempotently (a replayed batch changes nothing), and read for `GET /messages/{id}`. Rows are
 * appended, never rewritten: a message's status is derived from its attempts when read, and
 * an attempt stored before its message (the writer reads both concurrently) needs no row of
 * the message's until the stream's copy arrives.
 */
export class LedgerRepository implements LedgerReader {
  constructor(
    private readonly db: Db,
    private readonly logger: Logger,
    /** Told of each row refused for good, by its SQLSTATE or driver code (a metric). */
    private readonly onRefused: (sqlstate: string) => void = () => {}
  ) {}

  /**
   * Records messages read from their streams; one already recorded keeps its row.
   * @returns how many rows PostgreSQL refused (recorded in the log, ids only)
   */
  async recordMessages(messages: StreamMessage[]): Promise<number> {
    const rows = messages.map((m) =>
      ledgerRow(
        { tenantId: m.tenantId, queueId: m.queueId, partition: m.partition },
        m.streamId,
        encodeFields(m.message)
      )
    )
    return this.storeMessageRows(rows)
  }

  private async storeMessageRows(rows: LedgerRow[]): Promise<number> {
    let refused = 0
    for (const part of chunks(rows, ROWS_PER_INSERT)) {
      refused += await this.recordMessageRows([{ json: JSON.stringify(part), count: part.length }])
    }
    return refused
  }

  /** {@link recordMessages} for rows already in JSON, as readLedgerRows.lua returns them. */
  async recordMessageRows(parts: RowsJson[]): Promise<number> {
    let refused = 0
    for (const group of groupRows(parts)) {
      refused += await this.store(group, insertMessages, messageIds)
    }
    return refused
  }

  /**
   * Records attempts. One attempt has one row: a later report of it replaces a `failed`
   * inferred from a redelivery, and nothing else. A message's outcome is read from its
   * attempts ({@link find}); its own row is written here only from the message an attempt
   * carries (`failures`, where the ledger does not read the streams).
   * @returns how many rows PostgreSQL refused (recorded in the log, ids only)
   */
  async recordAttempts(batches: AttemptBatch[]): Promise<number> {
    // Keyed within the batch, so no statement names one row twice.
    const attempts = new Map<string, ConsumptionRow>()
    const messages = new Map<string, LedgerRow>()
    for (const b of batches) {
      for (const a of b.attempts) {
        const id = attemptId(b.subscriptionId, a.partition, a.streamId, a.deliveryCount)
        const seen = attempts.get(id)
        if (!seen || (seen.status === 'failed' && a.status !== 'failed')) {
          attempts.set(id, toConsumptionRow(id, b, a))
        }
        const key = `${b.tenantId}|${b.queueId}|${a.messageId}`
        if (a.message && !messages.has(key)) messages.set(key, messageRow(b, a, a.message))
      }
    }
    const storeConsumption = (rows: string) => sql`
      with r as materialized (
        select * from json_to_recordset(${rows}::json) as r(
          id uuid, tenant_id uuid, subscription_id uuid, message_id text,
          consumer_instance text, partition_id integer, status text,
          processing_time_ms integer, error_message text, status_code smallint, retry_count integer,
          consumed_at float8, processed_at float8, next_retry_at float8)
      ), ${liveParents('message_subscriptions', 'subscription_id')}
      insert into consumption_records as c (id, tenant_id, subscription_id, message_id,
        consumer_instance, partition_id, status, processing_time_ms, error_message,
        status_code, retry_count, consumed_at, processed_at, next_retry_at)
      select r.id, r.tenant_id, r.subscription_id, r.message_id, r.consumer_instance,
        r.partition_id, r.status, r.processing_time_ms, r.error_message, r.status_code,
        r.retry_count,
        ${ms('r.consumed_at')}, ${ms('r.processed_at')}, ${ms('r.next_retry_at')}
      from r join live on live.id = r.subscription_id
      on conflict (id) do update set status = excluded.status,
        error_message = excluded.error_message, status_code = excluded.status_code,
        processing_time_ms = excluded.processing_time_ms,
        consumed_at = excluded.consumed_at, processed_at = excluded.processed_at,
        next_retry_at = excluded.next_retry_at
      where c.status = 'failed' and excluded.status <> 'failed'`
    let refused = 0
    for (const part of chunks([...attempts.values()], ROWS_PER_INSERT)) {
      refused += await this.store(JSON.stringify(part), storeConsumption, attemptIds)
    }
    // A message an attempt carries is stored as its stream's copy would be.
    return refused + (await this.storeMessageRows([...messages.values()]))
  }

  /**
   * Marks messages an operator removed from their queue, recording each first from the entry
   * removed when the writer had not yet (it never will: the entry is gone from its stream).
   */
  async recordRemovals(
    tenantId: string,
    queueId: string,
    entries: QueueEntry[],
    at: number
  ): Promise<void> {
    if (entries.length === 0) return
    await this.storeMessageRows(
      entries.map((e) =>
        ledgerRow(
          { tenantId, queueId, partition: e.partition },
          e.streamId,
          encodeFields(e.message)
        )
      )
    )
    await this.db
      .update(messageRecords)
      .set({ removedAt: new Date(at) })
      .where(
        and(
          eq(messageRecords.tenantId, tenantId),
          eq(messageRecords.topicId, queueId),
          inArray(
            messageRecords.messageId,
            entries.map((e) => e.message.messageId)
          )
        )
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
    const first = attempts[0]?.attempt
    if (!row && !first) return null
    const sealed = row?.contentType === SEALED_CONTENT_TYPE
    // The latest outcome, by when it happened (writers may store them out of order).
    const latest = attempts.at(-1)?.attempt.status as AttemptStatus | undefined
    return {
      partition: row?.partitionId ?? first?.partitionId ?? 0,
      status: latest ? STATUS_AFTER[latest] : 'published',
      removedAt: row?.removedAt ?? null,
      // Attempts without the message's row: recorded before it, or its entry was trimmed
      // before the ledger read it (a gap). What is known of it is its id and first delivery.
      message: row
        ? {
            messageId: row.messageId,
            payloadText: row.payload ?? 'null',
            encrypted: sealed,
            headers: row.headers,
            key: row.messageKey,
            correlationId: row.correlationId,
            traceId: row.traceId,
            expiresAt: row.expiresAt?.getTime() ?? null,
            publishedAt: row.publishedAt.getTime(),
          }
        : {
            messageId,
            payloadText: 'null',
            encrypted: false,
            headers: {},
            key: null,
            correlationId: null,
            traceId: null,
            expiresAt: null,
            publishedAt: first!.consumedAt.getTime(),
          },
      attempts: attempts.map(({ attempt: a, consumerGroup }) => ({
        subscriptionId: a.subscriptionId ?? '',
        consumerGroup,
        consumerName: a.consumerInstance,
        status: a.status as AttemptStatus,
        deliveryCount: a.retryCount + 1,
        processingTimeMs: a.processingTimeMs,
        error: a.errorMessage,
        statusCode: a.statusCode,
        at: a.processedAt ?? a.consumedAt,
        nextRetryAt: a.nextRetryAt,
      })),
    }
  }

  /**
   * Runs `statement` over `rows` (a JSON array). A refusal (any error but a transient one:
   * PostgreSQL out of reach, shutting down, out of resources, a lock or serialization
   * conflict) is narrowed down by halving the rows until the refused ones stand alone; each is
   * recorded as refused and left out, so one bad row never holds the others back. A
   * transient error is thrown: the writer keeps the batch and retries it.
   * @returns how many rows were refused
   */
  private async store<T extends object>(
    rows: string,
    statement: (rows: string) => SQL,
    ids: (row: T) => Record<string, unknown>
  ): Promise<number> {
    const refused = await this.attempt(statement(rows))
    if (!refused) return 0
    return this.isolate(JSON.parse(rows) as T[], refused, statement, ids)
  }

  private async isolate<T extends object>(
    rows: T[],
    refused: unknown,
    statement: (rows: string) => SQL,
    ids: (row: T) => Record<string, unknown>
  ): Promise<number> {
    if (rows.length > 1) {
      const half = Math.ceil(rows.length / 2)
      let count = 0
      for (const part of [rows.slice(0, half), rows.slice(half)]) {
        const err = await this.attempt(statement(JSON.stringify(part)))
        if (err) count += await this.isolate(part, err, statement, ids)
      }
      return count
    }
    const row = rows[0]!
    // Only a database that answers refuses a row: an error that is the connection's or the
    // transaction's (whatever its code) fails this too, and the batch is kept for a retry.
    await this.inSavepoint(sql`select 1`)
    const fields = dbErrorFields(refused)
    this.logger.warn({ ...fields, ...ids(row) }, 'ledger row refused')
    this.onRefused(fields.sqlState ?? fields.code ?? 'unknown')
    return 1
  }

  /** Runs `statement`; @returns the error when PostgreSQL refused it, null when it ran. */
  private async attempt(statement: SQL): Promise<unknown> {
    try {
      await this.inSavepoint(statement)
      return null
    } catch (err) {
      if (transientDbError(err)) throw err
      return err
    }
  }

  /**
   * A statement in a transaction of its own, or a savepoint when the repository works inside
   * the caller's transaction: a refused statement would otherwise abort that transaction, and
   * the row-by-row retries with it.
   */
  private inSavepoint(statement: SQL): Promise<unknown> {
    return this.db.transaction((tx) => executePrepared(tx, 'ledger', statement))
  }
}

/** Consecutive read results joined into arrays of about {@link ROWS_PER_INSERT} rows. */
function groupRows(parts: RowsJson[]): string[] {
  const groups: string[] = []
  let members: string[] = []
  let count = 0
  for (const part of parts) {
    if (count > 0 && count + part.count > ROWS_PER_INSERT) {
      groups.push(`[${members.join(',')}]`)
      members = []
      count = 0
    }
    // Each part is a non-empty array: its elements are what lies between the brackets.
    members.push(part.json.slice(1, -1))
    count += part.count
  }
  if (count > 0) groups.push(`[${members.join(',')}]`)
  return groups
}
