import type { StreamMessage } from '../../src/db/ledger-rows'
import { systemLedgerRecords } from '../../src/db/scoped-ledger'
import type { Deps } from '../../src/deps'
import type { StoredMessage } from '../../src/domain/messages'
import type { Queue } from '../../src/domain/queues'
import { openLedgerStreams } from '../../src/wiring/worker'
import { LedgerWriter } from '../../src/worker/ledger-writer'
import type { LedgerWriterOptions } from '../../src/worker/ledger-writer-options'

/** A message as the ledger writer reads it from the queue's first partition, entered at `ms`. */
export function streamMessage(
  queue: Pick<Queue, 'tenantId' | 'id'>,
  messageId: string,
  payloadText: string,
  ms: number
): StreamMessage {
  return {
    tenantId: queue.tenantId,
    queueId: queue.id,
    partition: 0,
    streamId: `${ms}-0`,
    message: storedMessage(messageId, payloadText, ms),
  }
}

/** A plain message as the stores keep it: no headers, key, ids or expiry, published at `ms`. */
export function storedMessage(
  messageId: string,
  payloadText: string,
  ms: number
): StoredMessage & { publishedAt: number } {
  return {
    messageId,
    payloadText,
    encrypted: false,
    headers: {},
    key: null,
    correlationId: null,
    traceId: null,
    expiresAt: null,
    publishedAt: ms,
  }
}

/**
 * A started ledger writer over the queues of `tenants` only (the test database holds every
 * test's queues), with short intervals so tests need not wait. The caller stops it.
 */
export function startLedgerWriter(
  deps: Deps,
  tenants: string[],
  options: LedgerWriterOptions & { consumer?: string } = {}
): LedgerWriter {
  const writer = new LedgerWriter(
    {
      mode: deps.config.LEDGER_MODE,
      queues: async (after) =>
        after
          ? []
          : (
              await Promise.all(tenants.map((t) => deps.queueDeps.queues.list(t, { limit: 100 })))
            ).flatMap((page) => page.items),
      connect: () => openLedgerStreams(deps, options.consumer),
      // As the service wires it: one transaction a batch, so a batch's attempts and the message
      // rows they update become visible together.
      records: systemLedgerRecords(deps.database.db, deps.logger),
      multiKey: deps.redisTarget.clusterNodes.length === 0,
      logger: deps.logger,
    },
    { refreshMs: 100, idleMs: 20, gapCheckMs: 100, ...options }
  )
  writer.start()
  return writer
}
