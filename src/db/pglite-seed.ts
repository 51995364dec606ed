/**
 * `bun src/db/pglite-seed.ts`: writes src/db/pglite-seed.tar.gz, an empty PGlite database
 * just after initdb, which a new local database is unpacked from (src/db/pglite.ts). Run it
 * again after upgrading @electric-sql/pglite: the seed is its PostgreSQL's data directory.
 */
import { PGlite } from '@electric-sql/pglite'
import initdbWasm from '@electric-sql/pglite/initdb.wasm' with { type: 'file' }
import pgliteData from '@electric-sql/pglite/pglite.data' with { type: 'file' }
import pgliteWasm from '@electric-sql/pglite/pglite.wasm' with { type: 'file' }

const compile = async (path: string) => WebAssembly.compile(await Bun.file(path).arrayBuffer())

const client = new PGlite('memory://', {
  pgliteWasmModule: await compile(pgliteWasm),
  initdbWasmModule: await compile(initdbWasm),
  fsBundle: Bun.file(pgliteData),
})
await client.waitReady
const seed = await client.dumpDataDir('gzip')
await client.close()
const out = `${import.meta.dir}/pglite-seed.tar.gz`
await Bun.write(out, seed)
console.log(`${out}: ${seed.size} bytes`)
