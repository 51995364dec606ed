import { describe, expect, test } from 'bun:test'
import { sql } from 'drizzle-orm'
import type { Db } from '../../../src/db/client'
import { asSystem, withTenant } from '../../../src/db/tenant-scope'
import { newTenant, sharedDeps } from '../../helpers/harness'

/** A promise and the function that settles it, to hold two transactions at chosen points. */
function latch() {
  let open!: () => void
  const opened = new Promise<void>((resolve) => {
    open = resolve
  })
  return { open, opened }
}

type Latch = ReturnType<typeof latch>

async function makeQueue(db: Db, tenant: string, name: string): Promise<string> {
  const result = (await asSystem(db, (tx) =>
    tx.execute(sql`insert into message_topics (tenant_id, name) values (${tenant}, ${name})
      returning id`)
  )) as unknown as Array<{ id: string }> | { rows: Array<{ id: string }> }
  const [row] = Array.isArray(result) ? result : result.rows
  return row!.id
}

const touch = (tx: Db, id: string, by: string) =>
  tx.execute(sql`update message_topics set description = ${by} where id = ${id}`)

describe('tenant scope transactions', () => {
  test('a transaction PostgreSQL aborts to break a deadlock is run again, and both go through', async () => {
    const { db, kind } = (await sharedDeps()).database
    if (kind !== 'postgres') {
      // PGlite runs one transaction at a time: two cannot wait on each other there.
      console.warn('PostgreSQL is unreachable (TEST_PG_URL): skipping the deadlock test')
      return
    }
    const tenant = newTenant()
    const first = await makeQueue(db, tenant, 'one')
    const second = await makeQueue(db, tenant, 'two')
    const aHolds = latch()
    const bHolds = latch()
    let runs = 0
    // A locks `first` then wants `second`; B the other way round: one of them is the
    // deadlock's victim, and on its second run the latches are open and nothing waits.
    const crossing = (mine: string, theirs: string, held: Latch, other: Latch) =>
      withTenant(db, tenant, async (tx) => {
        runs++
        await touch(tx, mine, mine)
        held.open()
        await other.opened
        await touch(tx, theirs, mine)
      })
    const a = crossing(first, second, aHolds, bHolds)
    const b = crossing(second, first, bHolds, aHolds)
    await Promise.all([a, b])
    expect(runs).toBe(3)
    const result = (await asSystem(db, (tx) =>
      tx.execute(sql`select description from message_topics where tenant_id = ${tenant}`)
    )) as unknown as Array<{ description: string }>
    // Whichever ran last wrote both rows.
    expect(new Set(result.map((r) => r.description)).size).toBe(1)
  }, 15_000)
})
