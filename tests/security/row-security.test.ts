import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { randomBytes, randomUUID } from 'node:crypto'
import { type SQL, sql } from 'drizzle-orm'
import postgres from 'postgres'
import { type Database, type Db, openDatabase, resolveMigrations } from '../../src/db/client'
import { QueueRepository } from '../../src/db/queue-repository'
import { ScheduleRepository } from '../../src/db/schedule-repository'
import { systemLedgerRecords, tenantLedgerReader } from '../../src/db/scoped-ledger'
import { SubscriptionRepository } from '../../src/db/subscription-repository'
import {
  asSystem,
  rowSecurityBypass,
  warnIfRowSecurityBypassed,
  withTenant,
} from '../../src/db/tenant-scope'
import { queueSettings } from '../../src/domain/queues'
import { createLogger } from '../../src/observability/logger'
import { createTestDatabase } from '../helpers/infra'
import { streamMessage } from '../helpers/ledger'

/*
 * S3 (RELIABILITY.md), the second line: PostgreSQL row-level security on every table with a
 * `tenant_id`, checked with the service's own kind of connection. The dev machine's
 * PostgreSQL user is a superuser, and superusers pass row-level security whatever the
 * tables say, so the service runs here as a role made for the test: LOGIN, neither superuser
 * nor BYPASSRLS, owner of a database of its own (and so of the tables its migrations create,
 * as in production, which is what FORCE is for).
 */

const migrations = resolveMigrations()
const logger = createLogger('silent')

async function rows<T>(db: Db, query: SQL): Promise<T[]> {
  const result = (await db.execute(query)) as unknown as { rows?: T[] } | T[]
  return Array.isArray(result) ? result : (result.rows ?? [])
}

/** Every table with a `tenant_id`, as the migrations left them. */
async function tenantTables(db: Db): Promise<string[]> {
  const found = await rows<{ table_name: string }>(
    db,
    sql`select c.table_name from information_schema.columns c
          join information_schema.tables t using (table_schema, table_name)
        where c.table_schema = 'public' and c.column_name = 'tenant_id'
          and t.table_type = 'BASE TABLE'
        order by c.table_name collate "C"`
  )
  return found.map((r) => r.table_name)
}

const settings = (name: string) => queueSettings({ name }, { retentionMs: 60_000, maxLength: 100 })

/** One tenant's row in each table, written through the repositories and the ledger writer. */
interface Owned {
  tenant: string
  queueId: string
  subscriptionId: string
  scheduleId: string
  messageId: string
}

async function seed(db: Db, tenant: string): Promise<Owned> {
  const queue = await new QueueRepository(db).create(tenant, settings('orders'))
  const sub = await new SubscriptionRepository(db).create(tenant, {
    id: randomUUID(),
    queueId: queue.id,
    queue: 'orders',
    consumerGroup: 'g',
    consumerName: 'c',
    subscriptionType: 'webhook',
    offsetResetPolicy: 'latest',
    maxPollRecords: 10,
    sessionTimeoutMs: 30_000,
    heartbeatIntervalMs: 3000,
    handlerConfig: { url: 'https://example.com/hook' },
    signingSecret: null,
    deadLetterQueue: null,
    maxRetryAttempts: 3,
    retryDelayMs: 1000,
    retryBackoff: 'fixed',
    messageFilter: null,
    ordering: 'none',
  })
  const schedule = await new ScheduleRepository(db).create({
    id: randomUUID(),
    tenantId: tenant,
    queueId: queue.id,
    cron: '* * * * *',
    timezone: 'UTC',
    payloadText: '{"tick":true}',
    sealed: false,
    headers: {},
    key: null,
    status: 'active',
    nextRunAt: new Date(Date.now() - 1000),
    lastRunAt: null,
    runs: 0,
    maxRuns: null,
    startAt: null,
    endAt: null,
  })
  const messageId = `m-${tenant.slice(0, 8)}`
  const records = systemLedgerRecords(db, logger)
  await records.recordMessages([streamMessage(queue, messageId, '{"a":1}', 1)])
  await records.recordAttempts([
    {
      tenantId: tenant,
      queueId: queue.id,
      subscriptionId: sub.id,
      consumer: 'c',
      attempts: [
        {
          messageId,
          partition: 0,
          streamId: '1-0',
          deliveryCount: 1,
          status: 'success',
          at: Date.now(),
          processingMs: 5,
          error: null,
          nextRetryAt: null,
          message: null,
        },
      ],
    },
  ])
  return { tenant, queueId: queue.id, subscriptionId: sub.id, scheduleId: schedule.id, messageId }
}

/**
 * Stores, through the ledger writer's records, a batch with a row PostgreSQL refuses for its
 * headers, plus `more`. @returns the rows of the batch that were stored, by message id.
 */
async function recordRefusedBatch(db: Db, o: Owned, more: ReturnType<typeof streamMessage>[] = []) {
  const refused = streamMessage({ tenantId: o.tenant, id: o.queueId }, 'nul', '{}', 11)
  // Headers jsonb cannot hold (\u0000).
  refused.message.headers = { h: '\u0000' }
  const batch = [
    streamMessage({ tenantId: o.tenant, id: o.queueId }, 'good', '{"ok":true}', 10),
    refused,
    ...more,
  ]
  await systemLedgerRecords(db, logger).recordMessages(batch)
  const ids = batch.map((m) => m.message.messageId)
  return withTenant(db, o.tenant, (tx) =>
    rows<{ message_id: string; payload: unknown }>(
      tx,
      sql`select message_id, payload from message_records
           where message_id in ${ids} order by message_id collate "C"`
    )
  )
}

/** A row for `table` owned by `o.tenant`, referring to `o`'s queue and subscription. */
function insertRow(table: string, o: Owned): SQL {
  const t = sql.raw(`"${table}"`)
  switch (table) {
    case 'message_topics':
      return sql`insert into ${t} (tenant_id, name) values (${o.tenant}, ${`q-${randomUUID()}`})`
    case 'message_subscriptions':
      return sql`insert into ${t} (tenant_id, topic_id, consumer_group, consumer_name, subscription_type)
                 values (${o.tenant}, ${o.queueId}, 'g2', 'c2', 'pull')`
    case 'message_records':
      return sql`insert into ${t} (tenant_id, topic_id, message_id) values (${o.tenant}, ${o.queueId}, ${randomUUID()})`
    case 'consumption_records':
      return sql`insert into ${t} (tenant_id, subscription_id, message_id, consumer_instance, status)
                 values (${o.tenant}, ${o.subscriptionId}, 'x', 'c', 'success')`
    case 'message_schedules':
      return sql`insert into ${t} (tenant_id, topic_id, cron) values (${o.tenant}, ${o.queueId}, '* * * * *')`
    default:
      throw new Error(`no sample row for ${table}: add one`)
  }
}

/** The error PostgreSQL raised (drizzle wraps it), or null when `run` succeeded. */
async function refusal(run: () => Promise<unknown>): Promise<{ code?: string } | null> {
  try {
    await run()
    return null
  } catch (err) {
    let e: unknown = err
    while (e instanceof Error && !(e as { code?: unknown }).code && e.cause) e = e.cause
    return e as { code?: string }
  }
}

const count = async (db: Db, table: string) =>
  Number(
    (
      await rows<{ n: string | number }>(
        db,
        sql`select count(*) as n from ${sql.raw(`"${table}"`)}`
      )
    )[0]?.n
  )

describe('row-level security on PostgreSQL, as a role that is neither superuser nor BYPASSRLS', () => {
  let created: Awaited<ReturnType<typeof createTestDatabase>>
  let admin: postgres.Sql | undefined
  let database: Database | undefined
  const role = `mq_rls_${process.pid}_${randomBytes(3).toString('hex')}`
  let a: Owned
  let b: Owned
  let tables: string[]

  beforeAll(async () => {
    created = await createTestDatabase()
    if (!created) {
      console.warn('PostgreSQL is unreachable (TEST_PG_URL): skipping the row-level security test')
      return
    }
    const password = randomBytes(12).toString('hex')
    admin = postgres(created.url, { max: 1, onnotice: () => {} })
    const [me] = await admin`select rolsuper from pg_roles where rolname = current_user`
    if (!me?.rolsuper) {
      // Already a role held to row-level security (TEST_PG_URL), which cannot make another.
      console.warn('TEST_PG_URL is not a superuser: skipping the row-level security test')
      await created.drop()
      created = undefined
      return
    }
    await admin.unsafe(
      `create role ${role} login password '${password}' nosuperuser nobypassrls nocreatedb nocreaterole`
    )
    const dbName = new URL(created.url).pathname.slice(1)
    await admin.unsafe(`alter database ${dbName} owner to ${role}`)
    const url = new URL(created.url)
    url.username = role
    url.password = password
    // One connection: a tenant set by one call would be seen by the next if it outlived its
    // transaction.
    database = await openDatabase({ url: url.toString(), pgliteDir: 'memory://', poolSize: 1 })
    await database.migrate(migrations)
    a = await seed(database.db, randomUUID())
    b = await seed(database.db, randomUUID())
    tables = await tenantTables(database.db)
  })

  afterAll(async () => {
    await database?.close()
    if (created && admin) {
      // Here, before the database goes: dropping it (with force) ends this connection too.
      const dbName = new URL(created.url).pathname.slice(1)
      await admin.unsafe(`alter database ${dbName} owner to current_user`)
      await admin.unsafe(`drop owned by ${role}`)
      await admin.unsafe(`drop role ${role}`)
    }
    await admin?.end({ timeout: 1 })
    await created?.drop()
  })

  test('every tenant table has row-level security enabled and forced, and is owned by the role', async () => {
    if (!database) return
    expect(tables).toEqual([
      'consumption_records',
      'message_records',
      'message_schedules',
      'message_subscriptions',
      'message_topics',
    ])
    const flags = await rows<{ relname: string; rls: boolean; force: boolean; owner: string }>(
      database.db,
      sql`select relname, relrowsecurity as rls, relforcerowsecurity as force,
                 pg_get_userbyid(relowner) as owner
            from pg_class where relnamespace = 'public'::regnamespace and relkind = 'r'
             and relname in (select table_name from information_schema.columns
                             where table_schema = 'public' and column_name = 'tenant_id')
           order by relname collate "C"`
    )
    expect(flags).toEqual(
      tables.map((relname) => ({ relname, rls: true, force: true, owner: role }))
    )
    const policies = await rows<{ tablename: string }>(
      database.db,
      sql`select tablename from pg_policies where schemaname = 'public' order by tablename collate "C"`
    )
    expect(policies.map((p) => p.tablename)).toEqual(tables)
  })

  test('the role passes nothing; the warning names a superuser connection', async () => {
    if (!database || !created) return
    expect(await rowSecurityBypass(database)).toBeNull()
    const asAdmin = await openDatabase({ url: created.url, pgliteDir: 'memory://', poolSize: 1 })
    try {
      expect(await rowSecurityBypass(asAdmin)).toMatch(/is a superuser/)
      const warnings: unknown[] = []
      const spy = { warn: (...args: unknown[]) => warnings.push(args) } as never
      await warnIfRowSecurityBypassed(asAdmin, spy)
      expect(warnings).toHaveLength(1)
      await warnIfRowSecurityBypassed(database, spy)
      expect(warnings).toHaveLength(1)
    } finally {
      await asAdmin.close()
    }
  })

  test('with no tenant set, every table reads empty and refuses inserts', async () => {
    if (!database) return
    for (const table of tables) {
      expect({ table, n: await count(database.db, table) }).toEqual({ table, n: 0 })
      const err = await refusal(() => database!.db.execute(insertRow(table, a)))
      expect({ table, code: err?.code }).toEqual({ table, code: '42501' })
    }
  })

  test("with tenant A set, B's rows are invisible and UPDATE/DELETE of them touch 0 rows", async () => {
    if (!database) return
    await withTenant(database.db, a.tenant, async (tx) => {
      for (const table of tables) {
        const t = sql.raw(`"${table}"`)
        // No tenant filter of our own: only the policy stands between A and B here.
        const seen = await rows<{ tenant_id: string }>(tx, sql`select tenant_id from ${t}`)
        expect({ table, tenants: [...new Set(seen.map((r) => r.tenant_id))] }).toEqual({
          table,
          tenants: [a.tenant],
        })
        const updated = await rows<{ tenant_id: string }>(
          tx,
          sql`update ${t} set tenant_id = tenant_id where tenant_id = ${b.tenant} returning tenant_id`
        )
        const deleted = await rows<{ tenant_id: string }>(
          tx,
          sql`delete from ${t} where tenant_id = ${b.tenant} returning tenant_id`
        )
        expect({ table, updated: updated.length, deleted: deleted.length }).toEqual({
          table,
          updated: 0,
          deleted: 0,
        })
      }
      // Nor can A move one of its rows to B.
      const moved = await refusal(() =>
        tx.transaction((sp) =>
          sp.execute(sql`update message_topics set tenant_id = ${b.tenant} where id = ${a.queueId}`)
        )
      )
      expect(moved?.code).toBe('42501')
    })
    // B's rows are all still there.
    await withTenant(database.db, b.tenant, async (tx) => {
      for (const table of tables) expect(await count(tx, table)).toBeGreaterThan(0)
    })
  })

  test("inserting B's row while A is set is refused, on every table", async () => {
    if (!database) return
    for (const table of tables) {
      const err = await refusal(() =>
        withTenant(database!.db, a.tenant, (tx) => tx.execute(insertRow(table, b)))
      )
      expect({ table, code: err?.code }).toEqual({ table, code: '42501' })
    }
  })

  test('the tenant does not outlive its transaction on a pooled connection', async () => {
    if (!database) return
    expect(await withTenant(database.db, a.tenant, (tx) => count(tx, 'message_topics'))).toBe(1)
    // The pool has one connection, so this is the connection that just had A set.
    expect(await count(database.db, 'message_topics')).toBe(0)
    expect(await asSystem(database.db, (tx) => count(tx, 'message_topics'))).toBe(2)
    expect(await count(database.db, 'message_topics')).toBe(0)
  })

  test('the repositories work under it: tenant calls see their own, system calls see all', async () => {
    if (!database) return
    const db = database.db
    const queues = new QueueRepository(db)
    expect((await queues.get(a.tenant, 'orders'))?.id).toBe(a.queueId)
    expect(await queues.count(a.tenant)).toBe(1)
    expect((await queues.list(b.tenant, { limit: 10 })).items.map((q) => q.id)).toEqual([b.queueId])
    expect((await queues.listAny(undefined, 100)).map((q) => q.id).sort()).toEqual(
      [a.queueId, b.queueId].sort()
    )
    expect((await queues.listAny(a.tenant, 100)).map((q) => q.id)).toEqual([a.queueId])
    expect((await queues.page(null, 100)).length).toBe(2)
    expect(await queues.countAll()).toBe(2)
    expect((await queues.update(a.tenant, 'orders', { description: 'x' }))?.description).toBe('x')

    const subs = new SubscriptionRepository(db)
    expect((await subs.get(a.tenant, a.subscriptionId))?.queue).toBe('orders')
    expect(await subs.get(a.tenant, b.subscriptionId)).toBeNull()
    expect(
      (await subs.update(b.tenant, b.subscriptionId, { maxRetryAttempts: 5 }))?.maxRetryAttempts
    ).toBe(5)
    expect((await subs.inGroup(a.tenant, a.queueId, 'g')).map((s) => s.id)).toEqual([
      a.subscriptionId,
    ])
    expect((await subs.listActiveWebhooks()).map((s) => s.id).sort()).toEqual(
      [a.subscriptionId, b.subscriptionId].sort()
    )

    const schedules = new ScheduleRepository(db)
    const due = await schedules.due(new Date(), 100)
    expect(due.map((s) => s.id).sort()).toEqual([a.scheduleId, b.scheduleId].sort())
    const mine = due.find((s) => s.id === a.scheduleId)!
    expect(
      await schedules.recordRun(mine, {
        runs: 1,
        lastRunAt: new Date(),
        nextRunAt: new Date(Date.now() + 60_000),
        status: 'active',
      })
    ).toBe(true)
    expect((await schedules.get(a.tenant, a.scheduleId))?.runs).toBe(1)
    expect(await schedules.get(b.tenant, a.scheduleId)).toBeNull()

    const ledger = tenantLedgerReader(db, logger)
    const entry = await ledger.find(a.tenant, a.queueId, a.messageId)
    expect(entry?.status).toBe('acked')
    expect(entry?.attempts.map((x) => x.subscriptionId)).toEqual([a.subscriptionId])
    expect(await ledger.find(b.tenant, a.queueId, a.messageId)).toBeNull()
  })

  test('a ledger batch with refused rows keeps the rest of it (each statement in a savepoint)', async () => {
    if (!database) return
    const db = database.db
    const gone = await new QueueRepository(db).create(a.tenant, settings('gone'))
    await new QueueRepository(db).remove(a.tenant, 'gone')
    const stored = await recordRefusedBatch(db, a, [
      streamMessage(gone, 'orphan', '{"ok":true}', 12),
    ])
    expect(stored).toEqual([{ message_id: 'good', payload: '{"ok":true}' }])
  })
})

describe('row-level security on PGlite, under a role that is not a superuser', () => {
  let database: Database

  beforeAll(async () => {
    database = await openDatabase({ pgliteDir: 'memory://', poolSize: 1 })
    await database.migrate(migrations)
  })
  afterAll(async () => {
    await database.close()
  })

  test('the same policies hold there: nothing without a tenant, only the tenant with one', async () => {
    const db = database.db
    // PGlite's one user is a superuser; the service's code runs the same either way.
    const a = await seed(db, randomUUID())
    const b = await seed(db, randomUUID())
    const tables = await tenantTables(db)
    expect(tables).toHaveLength(5)
    await db.execute(sql`create role mq_rls_pglite nosuperuser nobypassrls`)
    await db.execute(
      sql`grant select, insert, update, delete on all tables in schema public to mq_rls_pglite`
    )
    await db.execute(sql`set role mq_rls_pglite`)
    try {
      for (const table of tables) {
        expect({ table, n: await count(db, table) }).toEqual({ table, n: 0 })
        const err = await refusal(() => db.execute(insertRow(table, a)))
        expect({ table, code: err?.code }).toEqual({ table, code: '42501' })
      }
      await withTenant(db, a.tenant, async (tx) => {
        for (const table of tables) {
          const t = sql.raw(`"${table}"`)
          const seen = await rows<{ tenant_id: string }>(tx, sql`select tenant_id from ${t}`)
          expect([...new Set(seen.map((r) => r.tenant_id))]).toEqual([a.tenant])
          const deleted = await rows<{ tenant_id: string }>(
            tx,
            sql`delete from ${t} where tenant_id = ${b.tenant} returning tenant_id`
          )
          expect({ table, deleted: deleted.length }).toEqual({ table, deleted: 0 })
        }
      })
      expect((await new QueueRepository(db).get(b.tenant, 'orders'))?.id).toBe(b.queueId)
      expect(await new QueueRepository(db).countAll()).toBe(2)
      expect(await recordRefusedBatch(db, a)).toEqual([
        { message_id: 'good', payload: '{"ok":true}' },
      ])
    } finally {
      await db.execute(sql`reset role`)
    }
  })
})
