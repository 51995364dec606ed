import { type SQL, sql } from 'drizzle-orm'
import { PgTransaction } from 'drizzle-orm/pg-core'
import type { Logger } from '../observability/logger'
import type { Database, Db } from './client'
import { executePrepared } from './prepared'
import { sqlState } from './sql-state'

/*
 * The scope a transaction runs in, for the row-level security policies of migration 0002
 * (`tenant_isolation` on every table with a `tenant_id`). Both settings are set with
 * `set_config(…, true)`, transaction-local: a pooled connection goes back to the pool with
 * neither, so no later query inherits a tenant. A query outside these helpers sees no row and
 * may write none (when the service's role is held to row-level security at all: see
 * {@link warnIfRowSecurityBypassed}). These are the second line: every query keeps its own
 * `tenant_id` filter.
 */

/**
 * SQLSTATEs of a transaction PostgreSQL aborted that may go through when run again: a deadlock
 * (a queue deleted while the ledger writer's batch inserts rows referencing it) or a
 * serialization failure.
 */
const RETRYABLE = new Set(['40P01', '40001'])
const ATTEMPTS = 4

/**
 * `fn` in a transaction that first applies `scope`. A transaction PostgreSQL aborted for a
 * deadlock is run again (it was rolled back whole, so `fn` starts over), up to four times with
 * a short random pause; inside a caller's transaction (a savepoint) the abort is the caller's.
 */
async function scoped<T>(db: Db, scope: SQL, fn: (tx: Db) => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await db.transaction(async (tx) => {
        await executePrepared(tx, 'scope', scope)
        return fn(tx)
      })
    } catch (err) {
      const again = !(db instanceof PgTransaction) && RETRYABLE.has(sqlState(err) ?? '')
      if (!again || attempt >= ATTEMPTS) throw err
      await Bun.sleep(Math.random() * 25 * attempt)
    }
  }
}

/**
 * Runs `fn` in a transaction that may see and write only `tenantId`'s rows.
 * @param db the database, or a transaction (then a savepoint, and the setting lasts until the
 *   outer transaction ends)
 * @returns what `fn` returns; the transaction commits when it resolves, rolls back when it throws
 */
export function withTenant<T>(db: Db, tenantId: string, fn: (tx: Db) => Promise<T>): Promise<T> {
  return scoped(db, sql`select set_config('mq.tenant_id', ${tenantId}, true)`, fn)
}

/**
 * Runs `fn` in a transaction that sees every tenant's rows: for the paths that work across
 * tenants by design (the ledger writer, the worker's queue pages and webhook list, due
 * schedules, the operators' all-tenant views). Never for a request of one tenant.
 * @returns what `fn` returns; the transaction commits when it resolves, rolls back when it throws
 */
export function asSystem<T>(db: Db, fn: (tx: Db) => Promise<T>): Promise<T> {
  return scoped(db, sql`select set_config('mq.scope', 'system', true)`, fn)
}

/** `tenantId`'s scope when there is one, else the system's (for "one tenant or all" views). */
export function withTenantOrSystem<T>(
  db: Db,
  tenantId: string | undefined,
  fn: (tx: Db) => Promise<T>
): Promise<T> {
  return tenantId ? withTenant(db, tenantId, fn) : asSystem(db, fn)
}

/** Why the connected role passes row-level security, or null when it is held to it. */
export async function rowSecurityBypass(database: Database): Promise<string | null> {
  const result = (await database.db.execute(
    sql`select rolname, rolsuper, rolbypassrls from pg_roles where rolname = current_user`
  )) as unknown as { rows?: RoleRow[] } | RoleRow[]
  const [role] = Array.isArray(result) ? result : (result.rows ?? [])
  if (!role) return null
  if (role.rolsuper) return `role ${role.rolname} is a superuser`
  if (role.rolbypassrls) return `role ${role.rolname} has BYPASSRLS`
  return null
}

interface RoleRow {
  rolname: string
  rolsuper: boolean
  rolbypassrls: boolean
}

/**
 * Logs a warning when the service's PostgreSQL role passes row-level security (superusers and
 * BYPASSRLS roles always do, FORCE or not), so the backstop is known to be off. PGlite's only
 * user is a superuser: it is embedded in one process, and there is nothing to warn about.
 * A failed check is logged and does not stop the start.
 */
export async function warnIfRowSecurityBypassed(database: Database, logger: Logger): Promise<void> {
  if (database.kind !== 'postgres') return
  try {
    const reason = await rowSecurityBypass(database)
    if (reason) {
      logger.warn(
        { reason },
        'PostgreSQL row-level security does not apply to this service: run it as a role that is neither superuser nor BYPASSRLS'
      )
    }
  } catch (err) {
    logger.warn({ err: (err as Error).message }, 'could not check the PostgreSQL role')
  }
}
