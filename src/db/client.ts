import { resolve } from 'node:path'
import { sql } from 'drizzle-orm'
import { type MigrationMeta, readMigrationFiles } from 'drizzle-orm/migrator'
import { drizzle as drizzlePostgres } from 'drizzle-orm/postgres-js'
import postgres from 'postgres'
import { applyMigrations, type Database, type Db } from './database'
import { bundleMigrations } from './migrations-bundle' with { type: 'macro' }
import * as schema from './schema'

export { applyMigrations, type Database, type Db } from './database'

/** Advisory lock key held while migrating ("mqmi" in ASCII); any fixed number would do. */
const MIGRATION_LOCK_KEY = 0x6d716d69

/**
 * Seconds before a pooled connection tries again after `retries` failed connects in a row.
 * postgres.js's own backoff grows to 10–20 s after seven failures, and every request that
 * needs PostgreSQL during an outage is a failure: the service went on answering 503 for up to
 * 20 s after the database was back. Capped at 1 s, jittered so a pool does not reconnect in step.
 */
export function reconnectDelay(retries: number): number {
  return Math.min(0.05 * 2 ** retries, 1) * (0.5 + Math.random() / 2)
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
      backoff: reconnectDelay,
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
