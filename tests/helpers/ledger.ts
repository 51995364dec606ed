import type { StreamMessage } from '../../src/db/ledger-rows'
import type { StoredMessage } from '../../src/domain/messages'
import type { Queue } from '../../src/domain/queues'

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
