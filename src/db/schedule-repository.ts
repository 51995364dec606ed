import { and, asc, eq, lte, sql } from 'drizzle-orm'
import type { Schedule, ScheduleDraft, ScheduleStatus, ScheduleStore } from '../domain/schedules'
import type { Db } from './client'
import { afterTimeId, timeIdPage } from './cursor'
import { messageSchedules, messageTopics } from './schema'
import { isUuid, tenantRow, withQueue } from './tenant-row'
import { asSystem, withTenant } from './tenant-scope'

const columns = {
  schedule: messageSchedules,
  queue: messageTopics.name,
}

type Row = { schedule: typeof messageSchedules.$inferSelect; queue: string }

function toSchedule({ schedule: r, queue }: Row): Schedule {
  return {
    id: r.id,
    tenantId: r.tenantId,
    queueId: r.topicId,
    queue,
    cron: r.cron,
    timezone: r.timezone,
    payloadText: r.sealedPayload ?? JSON.stringify(r.payload ?? null),
    sealed: r.sealedPayload !== null,
    headers: r.headers,
    key: r.messageKey,
    status: r.status as ScheduleStatus,
    nextRunAt: r.nextRunAt,
    lastRunAt: r.lastRunAt,
    runs: r.runs,
    maxRuns: r.maxRuns,
    startAt: r.startAt,
    endAt: r.endAt,
    createdAt: r.createdAt,
    updatedAt: r.updatedAt,
  }
}

function toRow(d: Partial<ScheduleDraft>): Partial<typeof messageSchedules.$inferInsert> {
  const { payloadText, sealed, key, queueId, ...rest } = d
  return {
    ...rest,
    ...(key !== undefined ? { messageKey: key } : {}),
    ...(queueId !== undefined ? { topicId: queueId } : {}),
    ...(payloadText !== undefined
      ? sealed
        ? { sealedPayload: payloadText, payload: null }
        : { payload: JSON.parse(payloadText), sealedPayload: null }
      : {}),
  }
}

/**
 * Recurring schedules in `message_schedules`; every tenant query filters on the tenant and runs
 * in its row-level security scope. `due` reads every tenant's, in the system's scope.
 */
export class ScheduleRepository implements ScheduleStore {
  constructor(private readonly db: Db) {}

  private select(db: Db) {
    return withQueue(db, columns, messageSchedules)
  }

  async create(draft: ScheduleDraft): Promise<Schedule> {
    // Millisecond times (not PostgreSQL's microseconds) keep the list cursor exact.
    const now = new Date()
    return withTenant(this.db, draft.tenantId, async (tx) => {
      await tx.insert(messageSchedules).values({
        ...(toRow(draft) as typeof messageSchedules.$inferInsert),
        id: draft.id,
        tenantId: draft.tenantId,
        createdAt: now,
        updatedAt: now,
      })
      return (await this.find(tx, draft.tenantId, draft.id))!
    })
  }

  async get(tenantId: string, id: string): Promise<Schedule | null> {
    if (!isUuid(id)) return null
    return withTenant(this.db, tenantId, (tx) => this.find(tx, tenantId, id))
  }

  private async find(tx: Db, tenantId: string, id: string): Promise<Schedule | null> {
    const [row] = await this.select(tx).where(tenantRow(messageSchedules, tenantId, id))
    return row ? toSchedule(row) : null
  }

  async list(
    tenantId: string,
    query: { queue?: string; status?: ScheduleStatus; limit: number; cursor?: string }
  ) {
    const after = afterTimeId(messageSchedules.createdAt, messageSchedules.id, query.cursor)
    const rows = await withTenant(this.db, tenantId, (tx) =>
      this.select(tx)
        .where(
          and(
            eq(messageSchedules.tenantId, tenantId),
            query.queue ? eq(messageTopics.name, query.queue) : undefined,
            query.status ? eq(messageSchedules.status, query.status) : undefined,
            after
          )
        )
        .orderBy(asc(messageSchedules.createdAt), asc(messageSchedules.id))
        .limit(query.limit + 1)
    )
    return timeIdPage(rows, query.limit, toSchedule)
  }

  async update(
    tenantId: string,
    id: string,
    patch: Partial<ScheduleDraft>
  ): Promise<Schedule | null> {
    if (!isUuid(id)) return null
    return withTenant(this.db, tenantId, async (tx) => {
      const updated = await tx
        .update(messageSchedules)
        .set({ ...toRow(patch), updatedAt: new Date() })
        .where(tenantRow(messageSchedules, tenantId, id))
        .returning({ id: messageSchedules.id })
      return updated.length > 0 ? this.find(tx, tenantId, id) : null
    })
  }

  async remove(tenantId: string, id: string): Promise<boolean> {
    if (!isUuid(id)) return false
    const deleted = await withTenant(this.db, tenantId, (tx) =>
      tx
        .delete(messageSchedules)
        .where(tenantRow(messageSchedules, tenantId, id))
        .returning({ id: messageSchedules.id })
    )
    return deleted.length > 0
  }

  async due(now: Date, limit: number): Promise<Schedule[]> {
    const rows = await asSystem(this.db, (tx) =>
      this.select(tx)
        .where(and(eq(messageSchedules.status, 'active'), lte(messageSchedules.nextRunAt, now)))
        .orderBy(asc(messageSchedules.nextRunAt))
        .limit(limit)
    )
    return rows.map(toSchedule)
  }

  async recordRun(
    schedule: Schedule,
    run: { runs: number; lastRunAt: Date; nextRunAt: Date | null; status: ScheduleStatus }
  ): Promise<boolean> {
    const updated = await withTenant(this.db, schedule.tenantId, (tx) =>
      tx
        .update(messageSchedules)
        .set({ ...run, updatedAt: new Date() })
        .where(
          and(
            eq(messageSchedules.tenantId, schedule.tenantId),
            eq(messageSchedules.id, schedule.id),
            eq(messageSchedules.status, 'active'),
            // Only the worker that saw this occurrence as next may record it.
            schedule.nextRunAt
              ? eq(messageSchedules.nextRunAt, schedule.nextRunAt)
              : sql`${messageSchedules.nextRunAt} is null`
          )
        )
        .returning({ id: messageSchedules.id })
    )
    return updated.length > 0
  }
}
