import { and, eq } from 'drizzle-orm'
import type { PgColumn, PgTable, SelectedFields } from 'drizzle-orm/pg-core'
import type { Db } from './client'
import { messageTopics } from './schema'

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

/**
 * Row ids are UUIDs: an id that is not one names nothing (rather than failing PostgreSQL's
 * cast), so it is as absent as another tenant's row.
 */
export const isUuid = (id: string) => UUID.test(id)

/** The row `id` of `tenantId` in a table whose rows each belong to one tenant. */
export const tenantRow = (
  table: { tenantId: PgColumn; id: PgColumn },
  tenantId: string,
  id: string
) => and(eq(table.tenantId, tenantId), eq(table.id, id))

/** `columns` of `table`'s rows, each joined to the queue (topic) it belongs to. */
export const withQueue = <C extends SelectedFields, T extends PgTable & { topicId: PgColumn }>(
  db: Db,
  columns: C,
  table: T
) =>
  db
    .select(columns)
    .from(table as PgTable)
    .innerJoin(messageTopics, eq(messageTopics.id, table.topicId))
