/** The PostgreSQL error inside `err` (drizzle wraps it as `cause`), the one with a SQLSTATE. */
export function postgresError(err: unknown): (Error & { code: string }) | undefined {
  for (let e = err; e instanceof Error; e = (e as { cause?: unknown }).cause) {
    const code = (e as { code?: unknown }).code
    if (typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code)) return e as Error & { code: string }
  }
  return undefined
}

/** The SQLSTATE of a PostgreSQL error, through drizzle's wrapping. */
export const sqlState = (err: unknown): string | undefined => postgresError(err)?.code

/**
 * SQLSTATEs of a PostgreSQL that cannot serve now, whatever was asked: connection exceptions
 * (class 08), insufficient resources (class 53: too many connections, out of memory, disk full),
 * a database not accepting connections (55000, `ALLOW_CONNECTIONS false`), and an operator
 * intervening (57P01 admin shutdown, 57P02 crash shutdown, 57P03 starting up, 57P04 database
 * dropped, 57P05 idle session timeout).
 */
const UNAVAILABLE = /^(08[0-9A-Z]{3}|53[0-9A-Z]{3}|55000|57P0[1-5])$/

/** Whether `err` (through drizzle's wrapping) is PostgreSQL saying it cannot serve now. */
export const isPostgresUnavailable = (err: unknown): boolean =>
  UNAVAILABLE.test(sqlState(err) ?? '')

/**
 * Codes of the driver (postgres.js) and the runtime for a connection that failed, closed or
 * never opened: the socket's fault, not the statement's.
 */
const SOCKET_CODES =
  /^(CONNECT_TIMEOUT|CONNECTION_(CLOSED|ENDED|DESTROYED)|ECONN\w+|EPIPE|ETIMEDOUT|EHOSTUNREACH|ENETUNREACH|ENOTFOUND|EAI_AGAIN|ConnectionRefused|ConnectionClosed|FailedToOpenSocket)$/

/**
 * SQLSTATEs of a server that cannot run the statement now but may later: connection (08),
 * insufficient resources (53), shutting down (57P01–57P05), not in the prerequisite state
 * (55000) or a lock not available (55P03), serialization failure (40001), deadlock (40P01),
 * and the system errors outside PostgreSQL (58: I/O, a file missing during recovery).
 */
const TRANSIENT_STATES = /^(08|53|57P0|58|55000$|55P03$|40001$|40P01$)/

/** Whether `err` says the database is (for now) out of reach rather than the statement wrong. */
export function transientDbError(err: unknown): boolean {
  const state = sqlState(err)
  if (state !== undefined) return TRANSIENT_STATES.test(state)
  for (let e = err; e instanceof Error; e = (e as { cause?: unknown }).cause) {
    const code = (e as { code?: unknown }).code
    if (typeof code === 'string' && SOCKET_CODES.test(code)) return true
  }
  return false
}

/**
 * What may be logged of a database error: its SQLSTATE, constraint and table, or the driver's
 * code. Never its message: drizzle's holds the whole statement with every parameter, and
 * PostgreSQL's may quote a value ("invalid input syntax for type json … Token …").
 */
export function dbErrorFields(err: unknown): {
  sqlState?: string
  constraint?: string
  table?: string
  code?: string
} {
  const pg = postgresError(err) as
    | (Error & { code: string; constraint_name?: string; table_name?: string })
    | undefined
  if (pg) {
    return {
      sqlState: pg.code,
      ...(pg.constraint_name ? { constraint: pg.constraint_name } : {}),
      ...(pg.table_name ? { table: pg.table_name } : {}),
    }
  }
  for (let e = err; e instanceof Error; e = (e as { cause?: unknown }).cause) {
    const code = (e as { code?: unknown }).code
    if (typeof code === 'string') return { code }
  }
  return { code: err instanceof Error ? err.name : typeof err }
}
