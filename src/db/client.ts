import { resolve } from 'node:path'
import { type SQL, sql } from 'drizzle-orm'
import { type MigrationMeta, readMigrationFiles } from 'drizzle-orm/migrator'
import { type PgDatabase, PgDialect, type PgQueryResultHKT } from 'drizzle-orm/pg-core'
import { drizzle as drizzlePostgres } from 'drizzle-orm/postgres-js'
import postgres from 'postgres'
import { bundleMigrations } from './migrations-bundle' with { type: 'macro' }
import * as schema from './schema'

/** Advisory lock key held while migrating ("mqmi" in ASCII); any fixed number would do. */
const MIGRATION_LOCK_KEY = 0x6d716d69

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

/**
 * Opens PostgreSQL when `url` is set, otherwise PGlite with its files in `pgliteDir`
 * (`memory://` keeps it in memory, for tests).
 */
export async function openDatabase(opts: {
  url?: string
  pgliteDir: string
  poolSize: number
}): Promise<Database> {
  const url = opts.url
  if (url) {
    const client = postgres(url, {
      max: opts.poolSize,
      onnotice: () => {},
      connect_timeout: 5,
      // Metadata queries are small and short; a hung connection should fail the request.
      idle_timeout: 30,
    })
    const db = drizzlePostgres(client, { schema })
    return {
      kind: 'postgres',
      db: db as unknown as Db,
      migrate: async (migrations) => {
        // Processes starting together on an empty database would race to create the same
        // tables and all but one would fail. A session advisory lock, on a connection of its
        // own (the pool may have just one), lets one migrate while the others wait and then
        // find nothing left to do; closing that connection releases it.
        const lock = postgres(url, { max: 1, onnotice: () => {}, connect_timeout: 5 })
        try {
          await lock`select pg_advisory_lock(${MIGRATION_LOCK_KEY})`
          await applyMigrations(db as unknown as Db, migrations)
        } finally {
          await lock.end({ timeout: 5 })
        }
      },
      ping: async () => {
        await db.execute(sql`select 1`)
      },
      close: () => client.end({ timeout: 5 }),
    }
  }
  // Loaded only when there is no PostgreSQL: PGlite's module and files are resident memory
  // a service on PostgreSQL would carry for nothing.
  const { openPglite } = await import('./pglite')
  return openPglite(opts.pgliteDir)
}

/** The repository's `drizzle/` as it was when this code was transpiled (in the binary: built). */
const EMBEDDED_MIGRATIONS: MigrationMeta[] = bundleMigrations()

/**
 * The migrations to apply: those of the folder `MIGRATIONS_DIR` names, else the embedded ones,
 * so neither the binary nor the image needs `drizzle/` beside it.
 * @throws Error when the named folder has no drizzle-kit journal.
 */
export function resolveMigrations(configured?: string): MigrationMeta[] {
  if (!configured) return EMBEDDED_MIGRATIONS
  return readMigrationFiles({ migrationsFolder: resolve(configured) })
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
