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
