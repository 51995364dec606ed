import { and, asc, eq, getTableColumns, type SQL, sql } from 'drizzle-orm'
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
type MessageRow = typeof messageRecords.$inferInsert
type ConsumptionRow = typeof consumptionRecords.$inferInsert

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

/** Rows per INSERT: well under PostgreSQL's 65,535 parameters at about 20 columns a row. */
const ROWS_PER_INSERT = 1000

/** What a message itself fills in its row; a placeholder row lacks these (payload_size null). */
const BODY = [
  'messageKey',
  'correlationId',
  'headers',
  'payload',
  'payloadSize',
  'contentType',
  'partitionId',
  'publishedAt',
  'scheduledAt',
  'expiresAt',
  'traceId',
] as const

const columns = getTableColumns(messageRecords)
const excluded = (name: (typeof BODY)[number]) => sql.raw(`excluded.${columns[name].name}`)

function bodyOf(m: Published, partition: number, streamId: string) {
  const enteredAt = streamIdTime(streamId)
  return {
    messageKey: m.key,
    correlationId: m.correlationId,
    headers: m.headers,
    // An encrypted queue's payload stays sealed at rest; it is opened when read, like the stream's.
    payload: m.encrypted ? m.payloadText : sql`${m.payloadText}::jsonb`,
    payloadSize: Buffer.byteLength(m.payloadText),
    contentType: m.encrypted ? SEALED_CONTENT_TYPE : 'application/json',
    partitionId: partition,
    publishedAt: new Date(m.publishedAt),
    // A delayed message entered its stream when it came due, after it was published.
    scheduledAt: enteredAt > m.publishedAt ? new Date(enteredAt) : null,
    expiresAt: m.expiresAt === null ? null : new Date(m.expiresAt),
    traceId: m.traceId,
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
        tenantId: m.tenantId,
        topicId: m.queueId,
        messageId: m.message.messageId,
        ...bodyOf(m.message, m.partition, m.streamId),
      })
    )
    const set = Object.fromEntries(BODY.map((name) => [name, excluded(name)]))
    await this.insert(
      rows,
      (batch) =>
        this.db
          .insert(messageRecords)
          .values(batch)
          .onConflictDoUpdate({
            target: [messageRecords.tenantId, messageRecords.topicId, messageRecords.messageId],
            set,
            setWhere: sql`${messageRecords.payloadSize} is null`,
          }),
      (row) => ({ ...row, payload: null })
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
        this.db
          .insert(consumptionRecords)
          .values(batch)
          .onConflictDoUpdate({
            target: consumptionRecords.id,
            set: {
              status: sql`excluded.status`,
              errorMessage: sql`excluded.error_message`,
              processingTimeMs: sql`excluded.processing_time_ms`,
              consumedAt: sql`excluded.consumed_at`,
              processedAt: sql`excluded.processed_at`,
              nextRetryAt: sql`excluded.next_retry_at`,
            },
            setWhere: sql`${consumptionRecords.status} = 'failed' and excluded.status <> 'failed'`,
          }),
      null
    )
    const m = messageRecords
    const fromAttempt = (name: (typeof BODY)[number]): SQL =>
      sql`case when ${m.payloadSize} is null and excluded.payload_size is not null then ${excluded(name)} else ${m[name]} end`
    await this.insert(
      [...messages.values()],
      (batch) =>
        this.db
          .insert(m)
          .values(batch)
          .onConflictDoUpdate({
            target: [m.tenantId, m.topicId, m.messageId],
            set: {
              // Latest outcome wins, by when it happened: writers may store them out of order.
              status: sql`case when ${m.consumedAt} is null or ${m.consumedAt} <= excluded.consumed_at then excluded.status else ${m.status} end`,
              consumedAt: sql`greatest(${m.consumedAt}, excluded.consumed_at)`,
              retryCount: sql`greatest(${m.retryCount}, excluded.retry_count)`,
              ...Object.fromEntries(BODY.map((name) => [name, fromAttempt(name)])),
            },
          }),
      (row) => ({ ...row, payload: null })
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
    tenantId: b.tenantId,
    subscriptionId: b.subscriptionId,
    messageId: a.messageId,
    consumerInstance: b.consumer,
    partitionId: a.partition,
    status: a.status,
    processingTimeMs: a.processingMs === null ? null : Math.round(a.processingMs),
    errorMessage: a.error,
    retryCount: a.deliveryCount - 1,
    // When the delivery was handed out, where known; when it ended otherwise.
    consumedAt: new Date(a.at - (a.processingMs ?? 0)),
    processedAt: new Date(a.at),
    nextRetryAt: a.nextRetryAt === null ? null : new Date(a.nextRetryAt),
  }
}

/** A message's row as its attempts leave it: the latest outcome, the highest retry count. */
function mergeOutcome(row: MessageRow | undefined, b: AttemptBatch, a: Attempt): MessageRow {
  const latest = !row?.consumedAt || row.consumedAt.getTime() <= a.at
  const body = a.message ? bodyOf(a.message, a.partition, a.streamId) : null
  return {
    tenantId: b.tenantId,
    topicId: b.queueId,
    messageId: a.messageId,
    partitionId: a.partition,
    publishedAt: new Date(streamIdTime(a.streamId)),
    ...row,
    ...(body && row?.payloadSize === undefined ? body : {}),
    status: latest ? STATUS_AFTER[a.status] : row!.status,
    consumedAt: latest ? new Date(a.at) : row!.consumedAt,
    retryCount: Math.max(row?.retryCount ?? 0, a.deliveryCount - 1),
  }
}
