import { and, asc, count, eq, gt, inArray, type SQL, sql } from 'drizzle-orm'
import type { AnyPgColumn } from 'drizzle-orm/pg-core'
import { MqError } from '../domain/errors'
import type { QueueStore } from '../domain/ports'
import {
  type Queue,
  type QueueListQuery,
  type QueuePatch,
  type QueueSettings,
  queueLimitReached,
  type RemovedQueue,
} from '../domain/queues'
import type { Db } from './client'
import { decodeNameCursor, encodeNameCursor } from './cursor'
import {
  consumptionRecords,
  messageRecords,
  messageSubscriptions,
  messageTopics,
  type NewTopicRow,
  type TopicRow,
} from './schema'
import { sqlState } from './sql-state'
import { asSystem, withTenant, withTenantOrSystem } from './tenant-scope'

/** PostgreSQL's unique_violation, as postgres.js and PGlite report it (drizzle may wrap it). */
export const isUniqueViolation = (err: unknown): boolean => sqlState(err) === '23505'

function toQueue(row: TopicRow): Queue {
  return {
    id: row.id,
    tenantId: row.tenantId,
    name: row.name,
    displayName: row.displayName ?? row.name,
    description: row.description ?? '',
    type: 'redis_stream',
    partitionCount: row.partitionCount,
    replicationFactor: row.replicationFactor,
    retentionMs: row.retentionMs,
    maxLength: row.maxLength,
    overflow: row.overflow as Queue['overflow'],
    messageFormat: 'json',
    schema: (row.schemaDefinition as Queue['schema']) ?? null,
    compression: 'none',
    encrypted: row.encrypted,
    isPublic: row.isPublic,
    allowedProducers: row.allowedProducers,
    allowedConsumers: row.allowedConsumers,
    status: row.status as Queue['status'],
    createdAt: row.createdAt,
    updatedAt: row.updatedAt,
  }
}

function toRow(settings: QueuePatch): Partial<NewTopicRow> {
  const { schema, compression, ...rest } = settings
  return {
    ...rest,
    ...(schema !== undefined ? { schemaDefinition: schema } : {}),
    ...(compression !== undefined ? { compressionType: compression } : {}),
  }
}

/** First key of the per-tenant advisory lock around queue creation ("mqqc" in ASCII). */
const QUEUE_CREATE_LOCK = 0x6d717163

async function countQueues(tx: Db, tenantId: string): Promise<number> {
  const [row] = await tx
    .select({ n: count() })
    .from(messageTopics)
    .where(eq(messageTopics.tenantId, tenantId))
  return row?.n ?? 0
}

/**
 * Queue metadata in `message_topics`; every query filters on the tenant, and runs in the
 * tenant's row-level security scope (the all-tenant views in the system's).
 */
export class QueueRepository implements QueueStore {
  constructor(private readonly db: Db) {}

  async create(tenantId: string, settings: QueueSettings, maxQueues?: number): Promise<Queue> {
    try {
      const [row] = await withTenant(this.db, tenantId, async (tx) => {
        if (maxQueues !== undefined) {
          // Creates of one tenant take turns from here to the commit, so each counts what the
          // one before it inserted; a count alone let 40 concurrent creates at a limit of 20
          // make 29. Other tenants hash to other keys (or, rarely, wait a moment).
          await tx.execute(
            sql`select pg_advisory_xact_lock(${QUEUE_CREATE_LOCK}, hashtext(${tenantId}))`
          )
          if ((await countQueues(tx, tenantId)) >= maxQueues) throw queueLimitReached(maxQueues)
        }
        return tx
          .insert(messageTopics)
          .values({ ...(toRow(settings) as NewTopicRow), name: settings.name, tenantId })
          .returning()
      })
      return toQueue(row!)
    } catch (err) {
      if (isUniqueViolation(err)) {
        throw new MqError('MQ_QUEUE_EXISTS', `queue '${settings.name}' already exists`)
      }
      throw err
    }
  }

  async get(tenantId: string, name: string): Promise<Queue | null> {
    const [row] = await withTenant(this.db, tenantId, (tx) =>
      tx
        .select()
        .from(messageTopics)
        .where(and(eq(messageTopics.tenantId, tenantId), eq(messageTopics.name, name)))
    )
    return row ? toQueue(row) : null
  }

  async list(tenantId: string, query: QueueListQuery) {
    const rows = await withTenant(this.db, tenantId, (tx) =>
      tx
        .select()
        .from(messageTopics)
        .where(
          and(
            eq(messageTopics.tenantId, tenantId),
            query.status ? eq(messageTopics.status, query.status) : undefined,
            query.prefix ? sql`starts_with(${messageTopics.name}, ${query.prefix})` : undefined,
            query.cursor ? gt(messageTopics.name, decodeNameCursor(query.cursor)) : undefined
          )
        )
        .orderBy(asc(messageTopics.name))
        .limit(query.limit + 1)
    )
    const items = rows.slice(0, query.limit).map(toQueue)
    const last = items.at(-1)
    return {
      items,
      nextCursor: rows.length > query.limit && last ? encodeNameCursor(last.name) : null,
    }
  }

  async update(tenantId: string, name: string, patch: QueuePatch): Promise<Queue | null> {
    const [row] = await withTenant(this.db, tenantId, (tx) =>
      tx
        .update(messageTopics)
        .set({ ...toRow(patch), updatedAt: new Date() })
        .where(and(eq(messageTopics.tenantId, tenantId), eq(messageTopics.name, name)))
        .returning()
    )
    return row ? toQueue(row) : null
  }

  /**
   * Deletes a queue with its subscriptions (by cascade) and their ledger rows, which have no
   * foreign key (schema.ts). Locking the queue first waits for a ledger batch that locked it
   * and keeps new subscriptions and batches out until the delete commits; the rows are
   * deleted after the queue, by statements that see what such a batch committed.
   */
  async remove(tenantId: string, name: string): Promise<RemovedQueue | null> {
    return withTenant(this.db, tenantId, async (tx) => {
      const [locked] = await tx
        .select({ id: messageTopics.id })
        .from(messageTopics)
        .where(and(eq(messageTopics.tenantId, tenantId), eq(messageTopics.name, name)))
        .for('update')
      if (!locked) return null
      const subscriptions = await tx
        .select({ id: messageSubscriptions.id })
        .from(messageSubscriptions)
        .where(eq(messageSubscriptions.topicId, locked.id))
      const [row] = await tx
        .delete(messageTopics)
        .where(eq(messageTopics.id, locked.id))
        .returning()
      await tx
        .delete(messageRecords)
        .where(and(eq(messageRecords.tenantId, tenantId), eq(messageRecords.topicId, locked.id)))
      if (subscriptions.length > 0) {
        await tx.delete(consumptionRecords).where(
          and(
            eq(consumptionRecords.tenantId, tenantId),
            inArray(
              consumptionRecords.subscriptionId,
              subscriptions.map((s) => s.id)
            )
          )
        )
      }
      return row ? { ...toQueue(row), subscriptionIds: subscriptions.map((s) => s.id) } : null
    })
  }

  count(tenantId: string): Promise<number> {
    return withTenant(this.db, tenantId, (tx) => countQueues(tx, tenantId))
  }

  /** Queues of every tenant, for the operators' views. */
  async countAll(): Promise<number> {
    const [row] = await asSystem(this.db, (tx) => tx.select({ n: count() }).from(messageTopics))
    return row?.n ?? 0
  }

  /** The first `limit` queues by name, of one tenant or (no tenant) of all. */
  async listAny(tenantId: string | undefined, limit: number): Promise<Queue[]> {
    const where = tenantId ? eq(messageTopics.tenantId, tenantId) : undefined
    return this.scan(tenantId, where, messageTopics.name, limit)
  }

  /** Queues of every tenant in pages ordered by id, for the worker's sweeps. */
  async page(afterId: string | null, limit: number): Promise<Queue[]> {
    const where = afterId ? gt(messageTopics.id, afterId) : undefined
    return this.scan(undefined, where, messageTopics.id, limit)
  }

  /** Queues in `tenantId`'s scope (without one, every tenant's), ordered by one column. */
  private async scan(
    tenantId: string | undefined,
    where: SQL | undefined,
    order: AnyPgColumn,
    limit: number
  ): Promise<Queue[]> {
    const rows = await withTenantOrSystem(this.db, tenantId, (tx) =>
      tx.select().from(messageTopics).where(where).orderBy(asc(order)).limit(limit)
    )
    return rows.map(toQueue)
  }
}
