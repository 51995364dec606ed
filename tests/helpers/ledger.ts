import type { StreamMessage } from '../../src/db/ledger-repository'
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
    message: {
      messageId,
      payloadText,
      encrypted: false,
      headers: {},
      key: null,
      correlationId: null,
      traceId: null,
      expiresAt: null,
      publishedAt: ms,
    },
  }
}
