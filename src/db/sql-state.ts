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
