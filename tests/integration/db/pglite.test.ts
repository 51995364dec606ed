import { afterAll, describe, expect, test } from 'bun:test'
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { sql } from 'drizzle-orm'
import { openDatabase, resolveMigrations } from '../../../src/db/client'

const dir = mkdtempSync(join(tmpdir(), 'mq-pglite-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

const open = () => openDatabase({ pgliteDir: join(dir, 'pg'), poolSize: 1 })
const one = async (database: Awaited<ReturnType<typeof open>>) => {
  const result = (await database.db.execute(
    sql`select count(*)::int as n from message_topics`
  )) as {
    rows: Array<{ n: number }>
  }
  return result.rows[0]?.n
}

// Issue 24: two openers of one directory in a process (the shared deps and a test's own) made
// PGlite abort; and a new directory is created from the seed in a child process.
describe('PGlite on a data directory', () => {
  test('a new directory is initialised, and two openers share one database', async () => {
    const first = await open()
    expect(existsSync(join(dir, 'pg', 'PG_VERSION'))).toBe(true)
    const second = await open()
    try {
      await Promise.all([first.migrate(resolveMigrations()), second.migrate(resolveMigrations())])
      await first.db.execute(
        sql`insert into message_topics (tenant_id, name) values (${crypto.randomUUID()}, 'shared')`
      )
      expect(await one(second)).toBe(1)
    } finally {
      await first.close()
    }
    // Closing one opener leaves the other's database open.
    expect(await one(second)).toBe(1)
    await second.close()
    // Once every opener closed, the directory opens again, with what was written.
    const again = await open()
    try {
      expect(await one(again)).toBe(1)
    } finally {
      await again.close()
    }
    // A new database and its migrations take PGlite several seconds on a busy machine.
  }, 60_000)
})
