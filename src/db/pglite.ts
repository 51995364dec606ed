import { existsSync, mkdirSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { PGlite } from '@electric-sql/pglite'
// Imported as files so `bun build --compile` embeds them: PGlite would otherwise look for them
// beside its own module, which a compiled binary does not have.
import initdbWasm from '@electric-sql/pglite/initdb.wasm' with { type: 'file' }
import pgliteData from '@electric-sql/pglite/pglite.data' with { type: 'file' }
import pgliteWasm from '@electric-sql/pglite/pglite.wasm' with { type: 'file' }
import { sql } from 'drizzle-orm'
import { drizzle as drizzlePglite } from 'drizzle-orm/pglite'
import { INIT_PGLITE_ROLE } from '../cli/usage'
import { applyMigrations, type Database, type Db } from './database'
// An empty database as initdb leaves it (made by ./pglite-seed.ts), embedded like the WASM.
import pgliteSeed from './pglite-seed.tar.gz' with { type: 'file' }
import * as schema from './schema'

/**
 * The PGlite instances open in this process, by data directory. A directory is one database
 * that only one instance may hold (two abort inside the WASM), so every opener of the same
 * directory shares it, as openers of the same PostgreSQL URL share that database.
 */
const openInstances = new Map<string, { client: Promise<PGlite>; users: number }>()

/**
 * PostgreSQL's memory settings cut to a metadata store of a few thousand rows: its defaults
 * (128 MB of shared buffers above all) are touched as the database is used and stay resident
 * in the WASM memory, which never shrinks. Measured in docs/PERFORMANCE.md (issue 24).
 */
const START_PARAMS = [
  ...PGlite.defaultStartParams,
  ...[
    'shared_buffers=8MB',
    'temp_buffers=1MB',
    'work_mem=1MB',
    'maintenance_work_mem=8MB',
    'wal_buffers=256kB',
  ].flatMap((setting) => ['-c', setting]),
]

const compile = async (path: string) => WebAssembly.compile(await Bun.file(path).arrayBuffer())

/** Whether `dir` holds a database already (initdb writes PG_VERSION first). */
const initialised = (dir: string) => existsSync(join(dir, 'PG_VERSION'))

async function startPglite(dir: string): Promise<PGlite> {
  const inMemory = dir.startsWith('memory://')
  if (!inMemory) {
    mkdirSync(dir, { recursive: true })
    if (!initialised(dir)) await initialiseInChild(dir)
  }
  // initdb's module is needed only to create a database, which in memory happens here.
  const needsInitdb = inMemory || !initialised(dir)
  const [pgliteWasmModule, initdbWasmModule] = await Promise.all([
    compile(pgliteWasm),
    needsInitdb ? compile(initdbWasm) : undefined,
  ])
  return new PGlite(dir, {
    pgliteWasmModule,
    initdbWasmModule,
    fsBundle: Bun.file(pgliteData),
    startParams: START_PARAMS,
  })
}

/**
 * Creates the database in `dir` in a process of its own, which exits when done: unpacking a
 * data directory into PGlite leaves about 300 MB of WASM memory (initdb, 900 MB) with the
 * process that did it. The child is this same program (`bun src/index.ts` or the binary)
 * with the internal role INIT_PGLITE_ROLE.
 */
async function initialiseInChild(dir: string): Promise<void> {
  const fromSources = import.meta.path.endsWith('.ts')
  const entry = fromSources ? [resolve(import.meta.dir, '../index.ts')] : []
  const child = Bun.spawn([process.execPath, ...entry, INIT_PGLITE_ROLE, dir], {
    stdin: 'ignore',
    stdout: 'ignore',
    stderr: 'pipe',
  })
  const [code, stderr] = await Promise.all([child.exited, new Response(child.stderr).text()])
  if (code !== 0) {
    const how = child.signalCode ? `signal ${child.signalCode}` : `exit code ${code}`
    throw new Error(`initialising PGlite in ${dir} failed (${how}): ${stderr.trim()}`)
  }
}

/** What the child of initialiseInChild runs: create the database in `dir`, then close it. */
export async function initialisePglite(dir: string): Promise<void> {
  mkdirSync(dir, { recursive: true })
  // Unpacking the seed costs a third of the memory initdb does (issue 24), and no initdb.
  const client = new PGlite(dir, {
    pgliteWasmModule: await compile(pgliteWasm),
    fsBundle: Bun.file(pgliteData),
    loadDataDir: Bun.file(pgliteSeed),
    startParams: START_PARAMS,
  })
  await client.waitReady
  await client.close()
}

/**
 * The last migration run of each instance. Its openers may migrate at the same time (the
 * service and a test's own deps), and two runs side by side would both find nothing applied;
 * on PostgreSQL an advisory lock keeps them apart, here a queue.
 */
const migrating = new WeakMap<PGlite, Promise<void>>()

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
    migrate: (migrations) => {
      // After the previous opener's run has finished, this one finds it all applied.
      const run = (migrating.get(client) ?? Promise.resolve())
        .catch(() => {})
        .then(() => applyMigrations(db as unknown as Db, migrations))
      migrating.set(client, run)
      return run
    },
    ping: async () => {
      await db.execute(sql`select 1`)
    },
    close: share.release,
  }
}
