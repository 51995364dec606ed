/** Timings of the ledger writer (ledger-writer.ts); each has a default. */
export interface LedgerWriterOptions {
  /** How often the queue list is read again: a new queue's messages are recorded this soon. */
  refreshMs?: number
  /** The pause after a pass that found nothing. */
  idleMs?: number
  /** How long another writer's unacknowledged entries wait before this one takes them over. */
  claimIdleMs?: number
  /** How often one of the writers looks for such entries and for consumers that are gone. */
  sweepMs?: number
  /** How often the queues' ledger gaps are looked at, to warn of a new one (a call a partition). */
  gapCheckMs?: number
  /** How long a consumer holding nothing stays idle before it counts as a writer that is gone. */
  forgetAfterMs?: number
  /** How long stop() waits for the batch in hand to be stored. */
  stopDeadlineMs?: number
  /** The first pause after a failure (doubled after each failure in a row, up to the cap). */
  retryMs?: number
  /** The longest pause between retries while PostgreSQL or Redis stays out of reach. */
  retryCapMs?: number
}

export const LEDGER_WRITER_DEFAULTS: Required<LedgerWriterOptions> = {
  refreshMs: 2000,
  idleMs: 200,
  claimIdleMs: 60_000,
  sweepMs: 30_000,
  gapCheckMs: 10_000,
  forgetAfterMs: 10 * 60_000,
  // Below the process's 10 s shutdown deadline, leaving time to close connections.
  stopDeadlineMs: 8000,
  retryMs: 250,
  retryCapMs: 5000,
}
