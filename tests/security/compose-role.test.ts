import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { randomBytes, randomUUID } from 'node:crypto'
import { join, resolve } from 'node:path'
import { type SQL, sql } from 'drizzle-orm'
import postgres from 'postgres'
import { type Database, type Db, openDatabase, resolveMigrations } from '../../src/db/client'
import { rowSecurityBypass, withTenant } from '../../src/db/tenant-scope'
import { createTestDatabase } from '../helpers/infra'

/*
 * docker-compose.yml (issue 24): `migrate` connects as the owner, `api` and `worker` as the role
 * docker/postgres/app-role.sql makes. Here that file runs, with psql as the postgres image runs
 * it, in a fresh database on the real PostgreSQL; then the service is checked as that role.
 */

const ROOT = resolve(import.meta.dir, '../..')
const psql = Bun.which('psql')

async function rows<T>(db: Db, query: SQL): Promise<T[]> {
  const result = (await db.execute(query)) as unknown as { rows?: T[] } | T[]
  return Array.isArray(result) ? result : (result.rows ?? [])
}

const count = async (db: Db) =>
  Number((await rows<{ n: number }>(db, sql`select count(*)::int as n from message_topics`))[0]?.n)

describe('compose: the api and worker role', () => {
  const role = `mq_app_${process.pid}_${randomBytes(3).toString('hex')}`
  const password = randomBytes(12).toString('hex')
  let created: Awaited<ReturnType<typeof createTestDatabase>>
  let owner: Database | undefined
  let app: Database | undefined

  beforeAll(async () => {
    created = psql ? await createTestDatabase() : undefined
    if (!created) {
      console.warn('PostgreSQL or psql is missing: skipping the compose role test')
      return
    }
    const init = Bun.spawnSync(
      [
        psql!,
        '--no-psqlrc',
        '--quiet',
        '-v',
        `app_role=${role}`,
        '-v',
        `app_password=${password}`,
        '-f',
        join(ROOT, 'docker/postgres/app-role.sql'),
        created.url,
      ],
      { stdout: 'pipe', stderr: 'pipe' }
    )
    expect(init.stderr.toString()).toBe('')
    expect(init.exitCode).toBe(0)
    // `migrate`: the owner applies the migrations.
    owner = await openDatabase({ url: created.url, pgliteDir: 'memory://', poolSize: 1 })
    await owner.migrate(resolveMigrations())
    const url = new URL(created.url)
    url.username = role
    url.password = password
    app = await openDatabase({ url: url.toString(), pgliteDir: 'memory://', poolSize: 1 })
  })

  afterAll(async () => {
    await app?.close()
    await owner?.close()
    await created?.drop()
    if (created) {
      // Its default privileges went with the database; nothing else is left to it.
      const admin = postgres(created.url.replace(/\/[^/]*$/, '/postgres'), { max: 1 })
      await admin.unsafe(`drop role if exists ${role}`)
      await admin.end({ timeout: 1 })
    }
  })

  test('is neither superuser nor BYPASSRLS nor the owner: the service does not warn', async () => {
    if (!app || !owner) return
    expect(await rowSecurityBypass(app)).toBeNull()
    // The image's POSTGRES_USER, like the test server's, is a superuser: the warning's case.
    expect(await rowSecurityBypass(owner)).toMatch(/superuser/)
    const owners = await rows<{ owner: string }>(
      app.db,
      sql`select distinct pg_get_userbyid(relowner) as owner from pg_class
           where relnamespace = 'public'::regnamespace and relkind = 'r'`
    )
    expect(owners.map((o) => o.owner)).not.toContain(role)
  })

  test('starts like api and worker do: the migrations are found applied, nothing is created', async () => {
    if (!app) return
    await app.migrate(resolveMigrations())
    const refused = await app.db.execute(sql`create table intruder (id int)`).catch((e) => e)
    expect(refused).toBeInstanceOf(Error)
    expect(String((refused as Error & { cause?: unknown }).cause ?? refused)).toMatch(
      /permission denied/
    )
  })

  test('row-level security applies: a tenant sees its rows only, no tenant sees none', async () => {
    if (!app || !owner) return
    const [a, b] = [randomUUID(), randomUUID()]
    await withTenant(app.db, a, (tx) =>
      tx.execute(sql`insert into message_topics (tenant_id, name) values (${a}, 'orders')`)
    )
    expect(await count(app.db)).toBe(0)
    expect(await withTenant(app.db, a, count)).toBe(1)
    expect(await withTenant(app.db, b, count)).toBe(0)
    // Another tenant's row cannot be written either.
    const refused = await withTenant(app.db, b, (tx) =>
      tx.execute(sql`insert into message_topics (tenant_id, name) values (${a}, 'sneaky')`)
    ).catch((e) => e)
    expect(refused).toBeInstanceOf(Error)
    // The owner (a superuser in compose) sees past the policies: why api and worker are not it.
    expect(await count(owner.db)).toBe(1)
  })
})
