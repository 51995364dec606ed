import { existsSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { sql } from 'drizzle-orm'
import type { PgDatabase, PgQueryResultHKT } from 'drizzle-orm/pg-core'
import { drizzle as drizzlePostgres } from 'drizzle-orm/postgres-js'
import { migrate as migratePostgres } from 'drizzle-orm/postgres-js/migrator'
import postgres from 'postgres'
import * as schema from './schema'

/** Advisory lock key held while migrating ("mqmi" in ASCII); any fixed number would do. */
const MIGRATION_LOCK_KEY = 0x6d716d69

/** The drizzle database, whichever driver is behind it. */
export type Db = PgDatabase<PgQueryResultHKT, typeof schema>

/** An open metadata database: PostgreSQL over postgres.js, or embedded PGlite. */
export interface Database {
  kind: 'postgres' | 'pglite'
  db: Db
  /** Applies the drizzle-kit migrations in `folder`; already applied ones are skipped. */
  migrate(folder: string): Promise<void>
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
      migrate: async (folder) => {
        // Processes starting together on an empty database would race to create the same
        // tables and all but one would fail. A session advisory lock, on a connection of its
        // own (the pool may have just one), lets one migrate while the others wait and then
        // find nothing left to do; closing that connection releases it.
        const lock = postgres(url, { max: 1, onnotice: () => {}, connect_timeout: 5 })
        try {
          await lock`select pg_advisory_lock(${MIGRATION_LOCK_KEY})`
          await migratePostgres(db, { migrationsFolder: folder })
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

/**
 * Where the migrations are: `MIGRATIONS_DIR`, else `drizzle/` beside the compiled binary
 * (the Dockerfile ships it there), else the repository's own `drizzle/`.
 */
export function resolveMigrationsDir(configured?: string): string {
  if (configured) return resolve(configured)
  const candidates = [
    join(dirname(process.execPath), 'drizzle'),
    resolve(import.meta.dir, '../../drizzle'),
    resolve('drizzle'),
  ]
  const found = candidates.find((dir) => existsSync(join(dir, 'meta', '_journal.json')))
  if (!found) throw new Error(`no drizzle migrations found in ${candidates.join(', ')}`)
  return found
}
