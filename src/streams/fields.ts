import type { StoredMessage } from '../domain/messages'

/**
 * The field names of a message's stream entry, declared here once. They are one or two letters
 * because every entry repeats them. codec.ts writes and reads them; the Lua scripts that look
 * into an entry (pull.lua the expiry, settle.lua, removeEntries.lua and trimming.lua the id)
 * and the ledger's SQL (ledger-repository.ts, fed by readLedgerRows.lua) name them too, which
 * tests/unit/stream-fields.test.ts holds to this table.
 */
export const STREAM_FIELDS = {
  messageId: 'i',
  payloadText: 'p',
  /** '1' when sealed. */
  encrypted: 'e',
  /** JSON. */
  headers: 'h',
  key: 'k',
  correlationId: 'c',
  traceId: 't',
  /** Expiry, ms. */
  expiresAt: 'x',
  /** Publish time, ms; only when it differs from the entry id's time. */
  publishedAt: 'ts',
} as const satisfies Record<keyof StoredMessage, string>

/** Fields the ledger's rows add to an entry's own (readLedgerRows.lua, ledger-repository.ts). */
export const LEDGER_ROW_EXTRAS = ['s', 'tenant_id', 'topic_id', 'partition_id'] as const
