import { expect, test } from 'bun:test'
import { dbErrorFields, transientDbError } from '../../src/db/sql-state'

/** An error as postgres.js raises it (a SQLSTATE `code`), wrapped as drizzle wraps it. */
function pgError(code: string, extra: Record<string, string> = {}): Error {
  const inner = Object.assign(new Error('server said no'), { code, ...extra })
  return new Error('Failed query: insert into t values ($1)\nparams: secret', { cause: inner })
}

test('transient: the connection, shutdown, resource, lock and serialization classes, and socket errors', () => {
  for (const code of [
    '08006',
    '08001',
    '53300',
    '57P01',
    '57P03',
    '55000',
    '55P03',
    '40001',
    '40P01',
    '58030',
  ]) {
    expect([code, transientDbError(pgError(code))]).toEqual([code, true])
  }
  for (const code of ['CONNECTION_CLOSED', 'CONNECT_TIMEOUT', 'ECONNREFUSED', 'ECONNRESET']) {
    const err = new Error('socket', { cause: Object.assign(new Error('down'), { code }) })
    expect([code, transientDbError(err)]).toEqual([code, true])
  }
})

test('refused: every other SQLSTATE and any other driver error', () => {
  // 21000: ON CONFLICT DO UPDATE naming one row twice; 22P05: \u0000 in jsonb; 22001: too long.
  for (const code of ['21000', '22P05', '22001', '23505', '42703', '57014', '42P01']) {
    expect([code, transientDbError(pgError(code))]).toEqual([code, false])
  }
  expect(transientDbError(new TypeError('bad'))).toBe(false)
  expect(transientDbError(Object.assign(new Error('x'), { code: 'MAX_PARAMETERS_EXCEEDED' }))).toBe(
    false
  )
})

test('what may be logged of a database error: its SQLSTATE, constraint and table, never its text', () => {
  const err = pgError('23505', {
    constraint_name: 'message_records_pkey',
    table_name: 'message_records',
  })
  expect(dbErrorFields(err)).toEqual({
    sqlState: '23505',
    constraint: 'message_records_pkey',
    table: 'message_records',
  })
  expect(JSON.stringify(dbErrorFields(err))).not.toContain('secret')
  expect(dbErrorFields(Object.assign(new Error('x'), { code: 'ECONNRESET' }))).toEqual({
    code: 'ECONNRESET',
  })
})
