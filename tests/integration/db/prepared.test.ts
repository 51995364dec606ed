import { expect, test } from 'bun:test'
import { eq, sql } from 'drizzle-orm'
import type { Db } from '../../../src/db/client'
import { LedgerRepository } from '../../../src/db/ledger-repository'
import { messageRecords } from '../../../src/db/schema'
import { asSystem, withTenant } from '../../../src/db/tenant-scope'
import { queueSettings } from '../../../src/domain/queues'
import { newTenant, sharedDeps } from '../../helpers/harness'
import { streamMessage } from '../../helpers/ledger'

/** The statements this transaction's connection holds prepared whose text contains `part`. */
async function preparedHere(tx: Db, part: string): Promise<string[]> {
  const result = (await tx.execute(
    sql`select statement from pg_prepared_statements where statement like ${`%${part}%`}`
  )) as unknown as Array<{ statement: string }>
  return result.map((r) => r.statement)
}

test('the ledger insert and the tenant scope run as prepared statements, and do their work', async () => {
  const deps = await sharedDeps()
  if (deps.database.kind !== 'postgres') {
    // PGlite runs drizzle's statements the same way whatever their name.
    console.warn('PostgreSQL is unreachable (TEST_PG_URL): skipping the prepared-statement test')
    return
  }
  const db = deps.database.db
  const tenant = newTenant()
  const queue = await deps.queueDeps.queues.create(
    tenant,
    queueSettings({ name: 'prepared' }, deps.queueDeps.defaults)
  )

  // One transaction is one connection, so what it prepared is visible to its own queries.
  const inLedger = await asSystem(db, async (tx) => {
    await new LedgerRepository(tx, deps.logger).recordMessages([
      streamMessage(queue, 'p-1', '{"n":1}', Date.now()),
    ])
    return preparedHere(tx, 'json_to_recordset')
  })
  expect(inLedger.some((s) => s.includes('insert into message_records'))).toBe(true)

  const inScope = await withTenant(db, tenant, (tx) => preparedHere(tx, 'mq.tenant_id'))
  expect(inScope.some((s) => s.includes("set_config('mq.tenant_id'"))).toBe(true)

  const stored = await withTenant(db, tenant, (tx) =>
    tx
      .select({ id: messageRecords.messageId, payload: messageRecords.payload })
      .from(messageRecords)
      .where(eq(messageRecords.topicId, queue.id))
  )
  expect(stored.map((r) => ({ ...r, payload: JSON.parse(r.payload!) }))).toEqual([
    { id: 'p-1', payload: { n: 1 } },
  ])
})
