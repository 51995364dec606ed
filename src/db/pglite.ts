import { mkdirSync } from 'node:fs'
import { resolve } from 'node:path'
import { PGlite } from '@electric-sql/pglite'
// Imported as files so `bun build --compile` embeds them: PGlite would otherwise look for them
// beside its own module, which a compiled binary does not have.
import initdbWasm from '@electric-sql/pglite/initdb.wasm' with { type: 'file' }
import pgliteData from '@electric-sql/pglite/pglite.data' with { type: 'file' }
import pgliteWasm from '@electric-sql/pglite/pglite.wasm' with { type: 'file' }
import { sql } from 'drizzle-orm'
import { drizzle as drizzlePglite } from 'drizzle-orm/pglite'
import { applyMigrations, type Database, type Db } from './client'
import * as schema from './schema'

/**
 * The PGlite instances open in this process, by data directory. A directory is one database
 * that only one instance may hold (two abort inside the WASM), so every opener of the same
 * directory shares it, as openers of the same PostgreSQL URL share that database.
 */
const openInstances = new Map<string, { client: Promise<PGlite>; users: number }>()

async function startPglite(dir: string): Promise<PGlite> {
  if (!dir.startsWith('memory://')) mkdirSync(dir, { recursive: true })
  const compile = async (path: string) => WebAssembly.compile(await Bun.file(path).arrayBuffer())
  const [pgliteWasmModule, initdbWasmModule] = await Promise.all([
    compile(pgliteWasm),
    compile(initdbWasm),
  ])
  return new PGlite(dir, {
    pgliteWasmModule,
    initdbWasmModule,
    fsBundle: Bun.file(pgliteData),
  })
}

/** Takes a share of the instance on `dir`; @returns it and the function giving the share back. */
function acquire(dir: string): { client: Promise<PGlite>; release(): Promise<void> } {
  // Each `memory://` open is a database of its own.
  if (dir.startsWith('memory://')) {
    const client = startPglite(dir)
    return { client, release: async () => (await client).close() }
  }
  const key = resolve(dir)
  let entry = openInstances.get(key)
  if (!entry) {
    entry = { client: startPglite(key), users: 0 }
    openInstances.set(key, entry)
    // A failed start must not be handed to the next opener.
    const started = entry
    entry.client.catch(() => {
      if (openInstances.get(key) === started) openInstances.delete(key)
    })
  }
  entry.users++
  const held = entry
  let released = false
  return {
    client: held.client,
    release: async () => {
      if (released) return
      released = true
      held.users--
      if (held.users > 0) return
      if (openInstances.get(key) === held) openInstances.delete(key)
      await (await held.client).close()
    },
  }
}

/** Embedded PGlite with its files in `dir` (`memory://` keeps it in memory, for tests). */
export async function openPglite(dir: string): Promise<Database> {
  const share = acquire(dir)
  let client: PGlite
  try {
    client = await share.client
  } catch (err) {
    await share.release().catch(() => {})
    throw err
  }
  const db = drizzlePglite(client, { schema })
  return {
    kind: 'pglite',
    db: db as unknown as Db,
    migrate: (migrations) => applyMigrations(db as unknown as Db, migrations),
    ping: async () => {
      await db.execute(sql`select 1`)
    },
    close: share.release,
  }
}
