import type { SQL } from 'drizzle-orm'
import { PgDialect } from 'drizzle-orm/pg-core'
import type { Db } from './client'

const dialect = new PgDialect()

/**
 * Runs `statement` as a prepared statement, for one whose text repeats (the ledger's inserts,
 * a transaction's scope). `db.execute` has drizzle send it unnamed: postgres.js then asks
 * PostgreSQL for its parameter types first, one more round trip, and PostgreSQL parses and
 * plans it each time. Prepared, postgres.js keeps it per connection, for the connection's life,
 * and sends it in one: so only statements of a fixed text belong here.
 * @param name names it for drizzle; postgres.js keys its statements by their text
 */
export function executePrepared(db: Db, name: string, statement: SQL): Promise<unknown> {
  return db._.session.prepareQuery(dialect.sqlToQuery(statement), undefined, name, false).execute()
}
