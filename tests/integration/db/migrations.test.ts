import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { sql } from 'drizzle-orm'
import { readMigrationFiles } from 'drizzle-orm/migrator'
import { type Database, openDatabase, resolveMigrations } from '../../../src/db/client'
import { QueueRepository } from '../../../src/db/queue-repository'
import type { QueueSettings } from '../../../src/domain/queues'
import { newTenant } from '../../helpers/harness'
import { createTestDatabase } from '../../helpers/infra'

const TABLES = [
  'consumption_records',
  'message_records',
  'message_schedules',
  'message_subscriptions',
  'message_topics',
]
const migrations = resolveMigrations()
const DRIZZLE = join(import.meta.dir, '../../../drizzle')
const journal = JSON.parse(readFileSync(join(DRIZZLE, 'meta', '_journal.json'), 'utf8')) as {
  entries: unknown[]
}

async function rows<T>(database: Database, query: ReturnType<typeof sql>): Promise<T[]> {
  const result = (await database.db.execute(query)) as unknown as { rows?: T[] } | T[]
  return Array.isArray(result) ? result : (result.rows ?? [])
}

/** The schema as the migrations left it, and how many migrations were recorded. */
async function inspect(database: Database) {
  const tables = await rows<{ table_name: string }>(
    database,
    sql`select table_name from information_schema.tables
        where table_schema = 'public' and table_type = 'BASE TABLE' order by table_name`
  )
  const unique = await rows<{ tablename: string; indexname: string; indexdef: string }>(
    database,
    sql`select tablename, indexname, indexdef from pg_indexes
        where schemaname = 'public' and indexdef like 'CREATE UNIQUE INDEX%'
          -- Surrogate keys are unique by themselves; a natural key must start at the tenant.
          and indexdef not like '%USING btree (id)'`
  )
  const tenantColumns = await rows<{ table_name: string; is_nullable: string }>(
    database,
    sql`select table_name, is_nullable from information_schema.columns
        where table_schema = 'public' and column_name = 'tenant_id'`
  )
  const rowSecurity = await rows<{
    relname: string
    rls: boolean
    force: boolean
    policies: number
  }>(
    database,
    sql`select relname, relrowsecurity as rls, relforcerowsecurity as force,
               (select count(*)::int from pg_policies p
                 where p.schemaname = 'public' and p.tablename = c.relname) as policies
          from pg_class c
         where relnamespace = 'public'::regnamespace and relkind = 'r'
           and relname in (select table_name from information_schema.columns
                           where table_schema = 'public' and column_name = 'tenant_id')
         order by relname collate "C"`
  )
  const [applied] = await rows<{ n: number | string }>(
    database,
    sql`select count(*) as n from drizzle.__drizzle_migrations`
  )
  return {
    tables: tables.map((t) => t.table_name),
    unique,
    tenantColumns,
    rowSecurity,
    applied: Number(applied?.n),
  }
}

/**
 * The checks every backend must pass: applied twice, the five tables, tenant-scoped keys,
 * row-level security forced on each of them.
 */
async function expectMigratedTwice(database: Database) {
  await database.migrate(migrations)
  const first = await inspect(database)
  await database.migrate(migrations)
  const second = await inspect(database)
  expect(second).toEqual(first)
  expect(first.applied).toBe(journal.entries.length)

  expect(first.tables).toEqual(expect.arrayContaining(TABLES))
  for (const table of TABLES) {
    expect(first.tenantColumns).toContainEqual({ table_name: table, is_nullable: 'NO' })
  }
  expect(first.unique.map((i) => i.tablename).sort()).toEqual(
    expect.arrayContaining(['message_records', 'message_subscriptions', 'message_topics'])
  )
  for (const index of first.unique) {
    const columns = /\(([^)]*)\)/.exec(index.indexdef)?.[1] ?? ''
    expect({ index: index.indexname, columns }).toEqual({
      index: index.indexname,
      columns: expect.stringMatching(/^tenant_id\b/),
    })
  }
  // Row-level security (S3's backstop) on every table with a tenant_id, forced so the owner
  // is held to it too, with the tenant policy.
  expect(first.rowSecurity.map((t) => t.relname)).toEqual(
    first.tenantColumns.map((c) => c.table_name).sort()
  )
  for (const table of first.rowSecurity) {
    expect(table).toEqual({ relname: table.relname, rls: true, force: true, policies: 1 })
  }
  const topics = first.unique.find((i) => i.tablename === 'message_topics')
  expect(topics?.indexdef).toMatch(/\(tenant_id, name\)/)
}

describe('migrations on PostgreSQL', () => {
  let database: Database | undefined
  let created: Awaited<ReturnType<typeof createTestDatabase>>

  beforeAll(async () => {
    created = await createTestDatabase()
    if (!created) {
      console.warn(
        'PostgreSQL is unreachable (TEST_PG_URL): skipping the PostgreSQL migration test'
      )
      return
    }
    database = await openDatabase({ url: created.url, pgliteDir: 'memory://', poolSize: 2 })
  })
  afterAll(async () => {
    await database?.close()
    await created?.drop()
  })

  test('apply to an empty database, idempotently, with tenant_id in every unique index', async () => {
    if (!database) return
    const before = await inspect(database).catch(() => undefined)
    // An empty database has no migrations table: inspecting it fails.
    expect(before).toBeUndefined()
    await expectMigratedTwice(database)
  })
})

describe('migrations on PostgreSQL from processes starting together', () => {
  test('three at once on an empty database all succeed, and apply each migration once', async () => {
    const created = await createTestDatabase()
    if (!created) return
    const databases = await Promise.all(
      [1, 2, 3].map(() => openDatabase({ url: created.url, pgliteDir: 'memory://', poolSize: 1 }))
    )
    try {
      await Promise.all(databases.map((d) => d.migrate(migrations)))
      expect((await inspect(databases[0]!)).applied).toBe(journal.entries.length)
    } finally {
      await Promise.all(databases.map((d) => d.close()))
      await created.drop()
    }
  })
})

describe('migrations on PGlite', () => {
  let database: Database

  beforeAll(async () => {
    database = await openDatabase({ pgliteDir: 'memory://', poolSize: 1 })
  })
  afterAll(async () => {
    await database.close()
  })

  test('apply to an empty in-memory database, idempotently, with tenant_id in every unique index', async () => {
    await expectMigratedTwice(database)
  })

  test('QueueRepository works on PGlite: create, get, list, count, unique per tenant', async () => {
    const repo = new QueueRepository(database.db)
    const [tenant, other] = [newTenant(), newTenant()]
    const settings = (name: string): QueueSettings => ({
      name,
      displayName: name,
      description: '',
      partitionCount: 2,
      replicationFactor: 1,
      retentionMs: 60_000,
      maxLength: 100,
      overflow: 'reject',
      messageFormat: 'json',
      schema: { type: 'object' },
      compression: 'none',
      encrypted: false,
      isPublic: false,
      allowedProducers: ['svc-a'],
      allowedConsumers: [],
      status: 'active',
    })

    const created = await repo.create(tenant, settings('orders'))
    expect(created).toMatchObject({
      tenantId: tenant,
      name: 'orders',
      partitionCount: 2,
      retentionMs: 60_000,
      schema: { type: 'object' },
      allowedProducers: ['svc-a'],
    })
    expect(created.createdAt).toBeInstanceOf(Date)
    expect(await repo.get(tenant, 'orders')).toEqual(created)
    expect(await repo.get(other, 'orders')).toBeNull()

    await expect(repo.create(tenant, settings('orders'))).rejects.toMatchObject({
      code: 'MQ_QUEUE_EXISTS',
    })
    // The same name in another tenant is another queue.
    expect((await repo.create(other, settings('orders'))).tenantId).toBe(other)

    await repo.create(tenant, settings('billing'))
    const page = await repo.list(tenant, { limit: 1 })
    expect(page.items.map((q) => q.name)).toEqual(['billing'])
    const rest = await repo.list(tenant, { limit: 1, cursor: page.nextCursor! })
    expect(rest).toEqual({ items: [expect.objectContaining({ name: 'orders' })], nextCursor: null })
    expect(await repo.count(tenant)).toBe(2)
    expect(await repo.count(other)).toBe(1)

    const updated = await repo.update(tenant, 'orders', { status: 'paused' })
    expect(updated?.status).toBe('paused')
    expect(await repo.update(other, 'billing', { status: 'paused' })).toBeNull()
    expect((await repo.remove(tenant, 'orders'))?.id).toBe(created.id)
    expect(await repo.get(tenant, 'orders')).toBeNull()
    expect(await repo.get(other, 'orders')).not.toBeNull()
  })
})

describe('where the migrations come from', () => {
  test('embedded: the same migrations, hashes and all, as the repository folder', () => {
    const embedded = resolveMigrations()
    expect(embedded.length).toBe(journal.entries.length)
    expect(embedded).toEqual(readMigrationFiles({ migrationsFolder: DRIZZLE }))
  })

  test('MIGRATIONS_DIR overrides them: a folder holding only the first migration applies one', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mq-migrations-'))
    const first = (journal as { entries: Array<{ tag: string }> }).entries[0]!
    try {
      mkdirSync(join(dir, 'meta'))
      writeFileSync(
        join(dir, 'meta', '_journal.json'),
        JSON.stringify({ ...journal, entries: [first] })
      )
      copyFileSync(join(DRIZZLE, `${first.tag}.sql`), join(dir, `${first.tag}.sql`))
      const database = await openDatabase({ pgliteDir: 'memory://', poolSize: 1 })
      try {
        await database.migrate(resolveMigrations(dir))
        expect((await inspect(database)).applied).toBe(1)
      } finally {
        await database.close()
      }
      expect(() => resolveMigrations(join(dir, 'missing'))).toThrow(/_journal\.json/)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})
