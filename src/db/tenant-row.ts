import { and, eq } from 'drizzle-orm'
import type { PgColumn } from 'drizzle-orm/pg-core'

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
