import { type SQL, sql } from 'drizzle-orm'
import type { PgColumn } from 'drizzle-orm/pg-core'
import { MqError } from '../domain/errors'
import { isUuid } from './tenant-row'

/**
 * List cursors: opaque base64url strings the service hands out as `nextCursor`. Anything else
 * given back is `400`, on every list alike, never an empty page or the first page: a client
 * with a broken cursor must hear about it, not loop over page one or stop early.
 */

const invalid = () =>
  new MqError('MQ_VALIDATION_FAILED', 'cursor: not a cursor this service returned', {
    issues: [{ path: 'cursor', code: 'custom', message: 'invalid cursor' }],
  })

const encode = (text: string) => Buffer.from(text).toString('base64url')

/** The text inside a cursor, only when the cursor is spelled exactly as {@link encode} writes it. */
function decode(cursor: string): string {
  const text = Buffer.from(cursor, 'base64url').toString('utf8')
  if (encode(text) !== cursor) throw invalid()
  return text
}

const QUEUE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$/

/** A cursor after one queue name. */
export const encodeNameCursor = (name: string) => encode(name)

/** @throws MqError MQ_VALIDATION_FAILED unless `cursor` came from {@link encodeNameCursor}. */
export function decodeNameCursor(cursor: string): string {
  const name = decode(cursor)
  if (!QUEUE_NAME.test(name)) throw invalid()
  return name
}

/*
 * A cursor after one (created_at, id) row. Rows are written with a JavaScript Date
 * (millisecond precision, not PostgreSQL's microseconds), so the time in a cursor compares
 * exactly with the stored one.
 */
export const encodeTimeIdCursor = (row: { createdAt: Date; id: string }) =>
  encode(`${row.createdAt.toISOString()}|${row.id}`)

/** @throws MqError MQ_VALIDATION_FAILED unless `cursor` came from {@link encodeTimeIdCursor}. */
export function decodeTimeIdCursor(cursor: string): { at: Date; id: string } {
  const [at = '', id = '', ...rest] = decode(cursor).split('|')
  const time = new Date(at)
  const exact = !Number.isNaN(time.getTime()) && time.toISOString() === at
  if (rest.length > 0 || !isUuid(id) || !exact) throw invalid()
  return { at: time, id }
}

/**
 * The rows after a (created_at, id) cursor, in the order a time-id list reads them; undefined
 * without a cursor. Decoded here, before any query: a bad cursor is the client's 400.
 */
export function afterTimeId(createdAt: PgColumn, id: PgColumn, cursor?: string): SQL | undefined {
  if (!cursor) return undefined
  const after = decodeTimeIdCursor(cursor)
  return sql`(${createdAt}, ${id}) > (${after.at.toISOString()}::timestamptz, ${after.id}::uuid)`
}

/** A page of a time-id list read one row past `limit`, with the cursor after it when more follow. */
export function timeIdPage<R, T extends { createdAt: Date; id: string }>(
  rows: R[],
  limit: number,
  toItem: (row: R) => T
): { items: T[]; nextCursor: string | null } {
  const items = rows.slice(0, limit).map(toItem)
  const last = items.at(-1)
  return { items, nextCursor: rows.length > limit && last ? encodeTimeIdCursor(last) : null }
}
