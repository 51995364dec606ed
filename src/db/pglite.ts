import { mkdirSync } from 'node:fs'
import { PGlite } from '@electric-sql/pglite'
// Imported as files so `bun build --compile` embeds them: PGlite would otherwise look for them
// beside its own module, which a compiled binary does not have.
import initdbWasm from '@electric-sql/pglite/initdb.wasm' with { type: 'file' }
import pgliteData from '@electric-sql/pglite/pglite.data' with { type: 'file' }
import pgliteWasm from '@electric-sql/pglite/pglite.wasm' with { type: 'file' }
import { sql } from 'drizzle-orm'
import { drizzle as drizzlePglite } from 'drizzle-orm/pglite'
import { migrate as migratePglite } from 'drizzle-orm/pglite/migrator'
import type { Database, Db } from './client'
import * as schema from './schema'

/** Embedded PGlite with its files in `dir` (`memory://` keeps it in memory, for tests). */
export async function openPglite(dir: string): Promise<Database> {
  if (!dir.startsWith('memory://')) mkdirSync(dir, { recursive: true })
  const compile = async (path: string) => WebAssembly.compile(await Bun.file(path).arrayBuffer())
  const [pgliteWasmModule, initdbWasmModule] = await Promise.all([
    compile(pgliteWasm),
    compile(initdbWasm),
  ])
  const client = new PGlite(dir, {
    pgliteWasmModule,
    initdbWasmModule,
    fsBundle: Bun.file(pgliteData),
  })
  const db = drizzlePglite(client, { schema })
  return {
    kind: 'pglite',
    db: db as unknown as Db,
    migrate: (folder) => migratePglite(db, { migrationsFolder: folder }),
    ping: async () => {
      await db.execute(sql`select 1`)
    },
    close: () => client.close(),
  }
}
