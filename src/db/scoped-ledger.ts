import type { LedgerMode, LedgerReader, RemovalLog } from '../domain/ledger'
import type { Logger } from '../observability/logger'
import type { Db } from './client'
import { LedgerRepository } from './ledger-repository'
import { dbErrorFields } from './sql-state'
import { asSystem, withTenant } from './tenant-scope'

/*
 * The ledger's two users in their row-level security scopes (src/db/tenant-scope.ts), around
 * LedgerRepository rather than inside it: `GET /messages/{id}` reads one tenant's rows, the
 * worker's writer stores every tenant's.
 */

/** Ledger reads in the scope of the tenant asked about. */
export function tenantLedgerReader(db: Db, logger: Logger): LedgerReader {
  return {
    find: (tenantId, queueId, messageId) =>
      withTenant(db, tenantId, (tx) =>
        new LedgerRepository(tx, logger).find(tenantId, queueId, messageId)
      ),
  }
}

/**
 * Removals noted in the scope of the queue's tenant, beside the writer: an operator's delete or
 * redrive is not the data plane, and the entry is gone from its stream before the writer could
 * read it. A failure is logged and swallowed (the removal stands); LEDGER_MODE=off notes none.
 */
export function tenantRemovalLog(db: Db, logger: Logger, mode: LedgerMode): RemovalLog {
  if (mode === 'off') return { recordRemovals: async () => {} }
  return {
    recordRemovals: async (queue, entries, at) => {
      if (entries.length === 0) return
      try {
        await withTenant(db, queue.tenantId, (tx) =>
          new LedgerRepository(tx, logger).recordRemovals(queue.tenantId, queue.id, entries, at)
        )
      } catch (err) {
        logger.warn(
          {
            ...dbErrorFields(err),
            tenantId: queue.tenantId,
            queueId: queue.id,
            removals: entries.length,
          },
          'ledger removals not recorded'
        )
      }
    },
  }
}

/** What the ledger writer stores with (LedgerWriterDeps.records, and recordMessages for tests). */
export type LedgerRecords = Pick<
  LedgerRepository,
  'recordMessages' | 'recordMessageRows' | 'recordAttempts'
>

/**
 * Ledger writes in the system's scope, one transaction per batch. The repository runs each
 * statement in a savepoint when it is given a transaction, so a batch refused for one of its
 * rows is still retried row by row in this one.
 */
export function systemLedgerRecords(
  db: Db,
  logger: Logger,
  onRefused?: (sqlstate: string) => void
): LedgerRecords {
  const inScope = (store: (records: LedgerRepository) => Promise<number>) =>
    asSystem(db, (tx) => store(new LedgerRepository(tx, logger, onRefused)))
  return {
    recordMessages: (messages) => inScope((records) => records.recordMessages(messages)),
    recordMessageRows: (parts) => inScope((records) => records.recordMessageRows(parts)),
    recordAttempts: (batches) => inScope((records) => records.recordAttempts(batches)),
  }
}
