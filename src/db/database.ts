import { type SQL, sql } from 'drizzle-orm'
import type { MigrationMeta } from 'drizzle-orm/migrator'
import { type PgDatabase, PgDialect, type PgQueryResultHKT } from 'drizzle-orm/pg-core'
import type * as schema from './schema'

/** The drizzle database, whichever driver is behind it. */
export type Db = PgDatabase<PgQueryResultHKT, typeof schema>

/** An open metadata database: PostgreSQL over postgres.js, or embedded PGlite. */
export interface Database {
  kind: 'postgres' | 'pglite'
  db: Db
  /** Applies `migrations` (see resolveMigrations); already applied ones are skipped. */
  migrate(migrations: MigrationMeta[]): Promise<void>
  ping(): Promise<void>
  close(): Promise<void>
}

/** Rows of `db.execute`, which postgres.js answers as an array and PGlite as `{ rows }`. */
async function rowsOf<T>(db: Db, query: SQL): Promise<T[]> {
  const result = (await db.execute(query)) as unknown as { rows?: T[] } | T[]
  return Array.isArray(result) ? result : (result.rows ?? [])
}

/** The `when` of the last migration recorded in the database; 0 when none is. */
async function lastApplied(db: Db): Promise<number> {
  // to_regclass is null for a missing table where selecting from it would be an error.
  const [table] = await rowsOf<{ present: boolean }>(
    db,
    sql`select to_regclass('drizzle.__drizzle_migrations') is not null as present`
  )
  if (!table?.present) return 0
  const [last] = await rowsOf<{ at: string | number | null }>(
    db,
    sql`select max(created_at) as at from drizzle.__drizzle_migrations`
  )
  return Number(last?.at ?? 0)
}

/**
 * Applies `migrations` as drizzle's migrators do (they only read a folder first): in one
 * transaction, skipping those recorded in `drizzle.__drizzle_migrations`. When every one is
 * recorded it only reads that table: the role api and worker use in production may read it
 * but create nothing (docker/postgres/app-role.sql), and only `migrate` runs as the owner.
 */
export async function applyMigrations(db: Db, migrations: MigrationMeta[]): Promise<void> {
  const newest = migrations.at(-1)?.folderMillis ?? 0
  if ((await lastApplied(db)) >= newest) return
  // The session's schema type is ours; the migrator's only runs plain SQL through it.
  const session = db._.session as unknown as Parameters<PgDialect['migrate']>[1]
  await new PgDialect().migrate(migrations, session, { migrationsFolder: '' })
}
