import type { DomainContext } from './context'
import type { ConsumptionLog } from './ledger'
import type { StoredMessage } from './messages'
import type { MessageMetrics } from './metrics'
import type { DelayedStore, GroupStore, MessageStore, QueueStore } from './ports'
import type { PayloadSealer } from './publish'
import type { Queue } from './queues'
import { assertMayConsume } from './subscription-admin'
import type { Subscription } from './subscriptions'

/** Decrypts payloads of encrypted queues. */
export interface PayloadOpener {
  decrypt(envelope: string, ctx: { tenantId: string; queueId: string; messageId: string }): string
}

/** What a receipt names: one delivery of one message to one subscription. */
export interface ReceiptData {
  subscriptionId: string
  partition: number
  streamId: string
  deliveryCount: number
  /**
   * The message's id, so settling need not read the entry to log the attempt; missing from
   * receipts handed out before they carried it.
   */
  messageId?: string
}

/** Turns deliveries into opaque, tenant-bound receipts and back. */
export interface ReceiptCodec {
  encode(tenantId: string, r: ReceiptData): string
  /** @returns null for a malformed, forged or foreign receipt. */
  decode(tenantId: string, receipt: string): ReceiptData | null
}

/** Lets a long poll sleep until something is published, without polling Redis in a loop. */
export interface EntryWaiter {
  /** The newest entry id of each partition, taken before a read so nothing slips between. */
  lastIds(queue: Queue): Promise<string[]>
  /** Resolves when an entry newer than `after` arrives, or after `timeoutMs`. */
  wait(queue: Queue, after: string[], timeoutMs: number): Promise<void>
}

export interface ConsumeDeps {
  queues: QueueStore
  messages: MessageStore & GroupStore & Pick<DelayedStore, 'registerDelayed'>
  cipher: PayloadSealer & PayloadOpener
  receipts: ReceiptCodec
  waiter: EntryWaiter
  /** The tenant's subscription with its queue (404 for a missing or foreign one). */
  loadSubscription(
    ctx: DomainContext,
    id: string
  ): Promise<{ subscription: Subscription; queue: Queue }>
  /** Creates a queue like `like` (for a dead-letter queue on first use); an existing one is returned. */
  ensureQueue(ctx: DomainContext, name: string, like: Queue): Promise<Queue>
  limits: { dedupWindowMs: number }
  /** How long a dead message stays hidden while it is moved to its dead-letter queue. */
  deadHoldMs: number
  /** Told of deliveries, acks, nacks and dead letters . */
  metrics: MessageMetrics
  /** Where attempts go on their way to the ledger. */
  ledger: ConsumptionLog
  /**
   * Aborted when the process begins to shut down: a long poll then answers with what it has
   * after its current wait (at most 5 s) instead of holding the shutdown for its whole wait.
   */
  stopping?: AbortSignal
}

/**
 * A stored message's payload, or null when it cannot be opened: an envelope tampered with in
 * Redis, or sealed under a key no longer configured. One such message must not fail the
 * others pulled with it, so it is dead-lettered instead of delivered.
 */
export function openPayload(
  deps: Pick<ConsumeDeps, 'cipher'>,
  queue: Queue,
  m: StoredMessage
): { payload: unknown } | null {
  try {
    const text = m.encrypted
      ? deps.cipher.decrypt(m.payloadText, {
          tenantId: queue.tenantId,
          queueId: queue.id,
          messageId: m.messageId,
        })
      : m.payloadText
    return { payload: JSON.parse(text) }
  } catch {
    return null
  }
}

/** The subscription and its queue, when the caller may consume from it. */
export async function consumable(deps: ConsumeDeps, ctx: DomainContext, id: string) {
  const { subscription, queue } = await deps.loadSubscription(ctx, id)
  assertMayConsume(queue, ctx.principal)
  return { sub: subscription, queue }
}
