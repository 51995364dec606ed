import { and, asc, eq, getTableColumns, sql } from 'drizzle-orm'
import { MqError } from '../domain/errors'
import type { SubscriptionStore } from '../domain/ports'
import {
  assertAgreesWithGroup,
  GROUP_SETTINGS,
  type MessageFilter,
  type Subscription,
  type SubscriptionDraft,
  type SubscriptionListQuery,
  type SubscriptionPatch,
} from '../domain/subscriptions'
import type { Db } from './client'
import { afterTimeId, timeIdPage } from './cursor'
import { isUniqueViolation } from './queue-repository'
import { consumptionRecords, messageSubscriptions, messageTopics } from './schema'
import { isUuid, tenantRow, withQueue } from './tenant-row'
import { asSystem, withTenant } from './tenant-scope'

type SubscriptionRow = typeof messageSubscriptions.$inferSelect

function toSubscription(row: SubscriptionRow, queue: string): Subscription {
  const { topicId, messageFilter, ...rest } = row
  return {
    ...rest,
    queueId: topicId,
    queue,
    subscriptionType: row.subscriptionType as Subscription['subscriptionType'],
    offsetResetPolicy: row.offsetResetPolicy as Subscription['offsetResetPolicy'],
    retryBackoff: row.retryBackoff as Subscription['retryBackoff'],
    ordering: row.ordering as Subscription['ordering'],
    status: row.status as Subscription['status'],
    messageFilter: (messageFilter as MessageFilter | null) ?? null,
  }
}

const columns = { ...getTableColumns(messageSubscriptions), queueName: messageTopics.name }

/**
 * Subscription metadata in `message_subscriptions`, joined to `message_topics` for the queue
 * name; every query filters on the tenant and runs in its row-level security scope. An id that
 * is not a UUID names nothing (rather than failing PostgreSQL's cast), so it is as absent as
 * another tenant's.
 */
export class SubscriptionRepository implements SubscriptionStore {
  constructor(private readonly db: Db) {}

  private select(db: Db) {
    return withQueue(db, columns, messageSubscriptions)
  }

  async create(tenantId: string, draft: SubscriptionDraft): Promise<Subscription> {
    const { queueId, queue, ...fields } = draft
    const now = new Date()
    try {
      const [row] = await withTenant(this.db, tenantId, async (tx) => {
        assertAgreesWithGroup(
          draft,
          await this.lockedGroup(tx, tenantId, queueId, draft.consumerGroup)
        )
        return tx
          .insert(messageSubscriptions)
          .values({ ...fields, tenantId, topicId: queueId, createdAt: now, updatedAt: now })
          .returning()
      })
      return toSubscription(row!, queue)
    } catch (err) {
      if (isUniqueViolation(err)) {
        throw new MqError(
          'MQ_SUBSCRIPTION_EXISTS',
          `consumer '${draft.consumerName}' is already in group '${draft.consumerGroup}' of queue '${queue}'`
        )
      }
      throw err
    }
  }

  async get(tenantId: string, id: string): Promise<Subscription | null> {
    if (!isUuid(id)) return null
    return withTenant(this.db, tenantId, (tx) => this.find(tx, tenantId, id))
  }

  private async find(tx: Db, tenantId: string, id: string): Promise<Subscription | null> {
    const [row] = await this.select(tx).where(tenantRow(messageSubscriptions, tenantId, id))
    return row ? toSubscription(row, row.queueName) : null
  }

  /** When the subscription last had a message delivered or acked, as last written. */
  async lastConsumedAt(tenantId: string, id: string): Promise<Date | null> {
    if (!isUuid(id)) return null
    const [row] = await withTenant(this.db, tenantId, (tx) =>
      tx
        .select({ at: messageSubscriptions.lastConsumedAt })
        .from(messageSubscriptions)
        .where(tenantRow(messageSubscriptions, tenantId, id))
    )
    return row?.at ?? null
  }

  /**
   * Writes many subscriptions' `last_consumed_at` in one statement, across tenants (the
   * writer batches every tenant's); a time never moves back, whichever process writes last.
   */
  async recordConsumed(seen: ReadonlyArray<{ tenantId: string; id: string; at: Date }>) {
    if (seen.length === 0) return
    const values = sql.join(
      seen.map(
        (s) => sql`(${s.tenantId}::uuid, ${s.id}::uuid, ${s.at.toISOString()}::timestamptz)`
      ),
      sql`, `
    )
    await asSystem(this.db, (tx) =>
      tx.execute(sql`
        update message_subscriptions as s
        set last_consumed_at = greatest(s.last_consumed_at, v.at)
        from (values ${values}) as v(tenant_id, id, at)
        where s.tenant_id = v.tenant_id and s.id = v.id`)
    )
  }

  async list(tenantId: string, query: SubscriptionListQuery) {
    const after = afterTimeId(messageSubscriptions.createdAt, messageSubscriptions.id, query.cursor)
    const rows = await withTenant(this.db, tenantId, (tx) =>
      this.select(tx)
        .where(
          and(
            eq(messageSubscriptions.tenantId, tenantId),
            // The queue's own tenant too: the name is unique only within a tenant.
            query.queue
              ? and(eq(messageTopics.tenantId, tenantId), eq(messageTopics.name, query.queue))
              : undefined,
            query.status ? eq(messageSubscriptions.status, query.status) : undefined,
            after
          )
        )
        .orderBy(asc(messageSubscriptions.createdAt), asc(messageSubscriptions.id))
        .limit(query.limit + 1)
    )
    return timeIdPage(rows, query.limit, (row) => toSubscription(row, row.queueName))
  }

  async update(
    tenantId: string,
    id: string,
    patch: SubscriptionPatch
  ): Promise<Subscription | null> {
    if (!isUuid(id)) return null
    return withTenant(this.db, tenantId, async (tx) => {
      if (GROUP_SETTINGS.some((field) => patch[field] !== undefined)) {
        const current = await this.find(tx, tenantId, id)
        if (!current) return null
        const mates = await this.lockedGroup(tx, tenantId, current.queueId, current.consumerGroup)
        const changed = Object.fromEntries(
          Object.entries(patch).filter(([, value]) => value !== undefined)
        )
        assertAgreesWithGroup(
          { ...current, ...changed },
          mates.filter((m) => m.id !== id)
        )
      }
      const [row] = await tx
        .update(messageSubscriptions)
        .set({ ...patch, updatedAt: new Date() })
        .where(tenantRow(messageSubscriptions, tenantId, id))
        .returning({ id: messageSubscriptions.id })
      return row ? this.find(tx, tenantId, id) : null
    })
  }

  /**
   * Deletes a subscription and its attempts, which have no foreign key (schema.ts): after
   * the subscription, whose delete waits for a ledger batch that locked it, so the attempts'
   * delete sees what that batch committed.
   */
  async remove(tenantId: string, id: string): Promise<boolean> {
    if (!isUuid(id)) return false
    return withTenant(this.db, tenantId, async (tx) => {
      const rows = await tx
        .delete(messageSubscriptions)
        .where(tenantRow(messageSubscriptions, tenantId, id))
        .returning({ id: messageSubscriptions.id })
      if (rows.length === 0) return false
      await tx
        .delete(consumptionRecords)
        .where(
          and(eq(consumptionRecords.tenantId, tenantId), eq(consumptionRecords.subscriptionId, id))
        )
      return true
    })
  }

  /**
   * Every active webhook subscription of every tenant: the delivery worker serves them all,
   * so this one query is deliberately not tenant-scoped (it runs in the system's scope). It
   * runs every second in each worker; the filter keeps the rows few (pull subscriptions and
   * paused ones are left out).
   */
  async listActiveWebhooks(): Promise<Subscription[]> {
    const rows = await asSystem(this.db, (tx) =>
      this.select(tx).where(
        and(
          eq(messageSubscriptions.status, 'active'),
          eq(messageSubscriptions.subscriptionType, 'webhook')
        )
      )
    )
    return rows.map((row) => toSubscription(row, row.queueName))
  }

  inGroup(tenantId: string, queueId: string, group: string): Promise<Subscription[]> {
    return withTenant(this.db, tenantId, (tx) => this.group(tx, tenantId, queueId, group))
  }

  private async group(
    tx: Db,
    tenantId: string,
    queueId: string,
    group: string
  ): Promise<Subscription[]> {
    const rows = await this.select(tx)
      .where(
        and(
          eq(messageSubscriptions.tenantId, tenantId),
          eq(messageSubscriptions.topicId, queueId),
          eq(messageSubscriptions.consumerGroup, group)
        )
      )
      .orderBy(asc(messageSubscriptions.createdAt), asc(messageSubscriptions.id))
    return rows.map((row) => toSubscription(row, row.queueName))
  }

  /**
   * The group's subscriptions, read under a lock on the group held until the transaction
   * ends: two requests creating or changing subscriptions of one group with different group
   * settings cannot both see the other absent.
   */
  private async lockedGroup(
    tx: Db,
    tenantId: string,
    queueId: string,
    group: string
  ): Promise<Subscription[]> {
    await tx.execute(
      sql`select pg_advisory_xact_lock(hashtextextended(${`${tenantId}:${queueId}:${group}`}, 0))`
    )
    return this.group(tx, tenantId, queueId, group)
  }
}
