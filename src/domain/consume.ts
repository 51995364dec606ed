import type { DomainContext } from './context'
import { MqError } from './errors'
import { matchesFilter } from './filter'
import type { MessageView } from './inspect'
import {
  type Attempt,
  type ConsumptionLog,
  settleDetails,
  settledAttempts,
  timedOutAttempts,
} from './ledger'
import type { GroupPosition, StoredDelivery, StoredMessage } from './messages'
import type { MessageMetrics } from './metrics'
import type { DelayedStore, GroupStore, MessageStore, QueueStore } from './ports'
import { choosePartition, type PayloadSealer, writeMessages } from './publish'
import type { Queue } from './queues'
import { retryDelay } from './retry'
import { assertMayConsume } from './subscription-admin'
import { deadLetterQueueOf, type Subscription } from './subscriptions'

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
  /** Told of deliveries, acks, nacks and dead letters; optional so tests may leave it out. */
  metrics?: MessageMetrics
  /** Where attempts go on their way to the ledger; none when it is left out. */
  ledger?: ConsumptionLog
  /**
   * Aborted when the process begins to shut down: a long poll then answers with what it has
   * after its current wait (at most 5 s) instead of holding the shutdown for its whole wait.
   */
  stopping?: AbortSignal
}

/** A message handed to a consumer (API.md "A delivery"): as peeked, plus receipt and count. */
export interface Delivery extends Omit<MessageView, 'expiresAt'> {
  receipt: string
  deliveryCount: number
}

/** Longest single wait of a long poll; a client going away is noticed this often. */
const MAX_WAIT_SLICE_MS = 5000

const partitionsFrom = (queue: Queue, start: number) =>
  Array.from({ length: queue.partitionCount }, (_, i) => (start + i) % queue.partitionCount)

/**
 * A stored message's payload, or null when it cannot be opened: an envelope tampered with in
 * Redis, or sealed under a key no longer configured. One such message must not fail the
 * others pulled with it, so it is dead-lettered instead of delivered.
 */
function openPayload(
  deps: ConsumeDeps,
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

async function consumable(deps: ConsumeDeps, ctx: DomainContext, id: string) {
  const { subscription, queue } = await deps.loadSubscription(ctx, id)
  assertMayConsume(queue, ctx.principal)
  return { sub: subscription, queue }
}

/**
 * Moves deliveries that failed too often to the subscription's dead-letter queue (created on
 * first use, like the source queue). The copy is written first, deduplicated on the source
 * entry, and only then is the source acknowledged: a crash in between leaves the message
 * pending, to be moved again and stored once.
 * @returns how many were moved.
 */
export async function moveToDeadLetter(
  deps: ConsumeDeps,
  ctx: DomainContext,
  sub: Subscription,
  queue: Queue,
  dead: StoredDelivery[],
  reason: string
): Promise<number> {
  if (dead.length === 0) return 0
  const dlq = await deps.ensureQueue(ctx, deadLetterQueueOf(sub), queue)
  const now = Date.now()
  const prepared = dead.map((d) => {
    // The group's, not the subscription's: a group-mate moving the same entry again (after
    // this move stalled past its hold) must meet this copy's dedup marker.
    const dedupId = `dlq:${sub.consumerGroup}:${d.partition}:${d.streamId}`
    const opened = openPayload(deps, queue, d.message)
    const plaintext = opened ? JSON.stringify(opened.payload) : 'null'
    const message: StoredMessage = {
      ...d.message,
      payloadText: dlq.encrypted
        ? deps.cipher.encrypt(plaintext, {
            tenantId: dlq.tenantId,
            queueId: dlq.id,
            messageId: d.message.messageId,
          })
        : plaintext,
      encrypted: dlq.encrypted,
      headers: {
        ...d.message.headers,
        'x-mq-original-queue': queue.name,
        'x-mq-subscription-id': sub.id,
        'x-mq-consumer-group': sub.consumerGroup,
        'x-mq-delivery-count': String(d.deliveryCount),
        'x-mq-dead-letter-reason': reason,
        'x-mq-failed-at': new Date(now).toISOString(),
        ...(opened ? {} : { 'x-mq-payload-unreadable': 'could not be decrypted or parsed' }),
      },
      // A dead letter is kept until someone looks at it, whatever its TTL was.
      expiresAt: null,
    }
    return {
      write: { message, dedupId, deliverAt: 0 },
      partition: choosePartition(dlq, message.key ?? undefined, dedupId),
      deliverAt: 0,
    }
  })
  const outcomes = await writeMessages(deps, dlq, prepared, now)
  const stored = dead.filter((_, i) => outcomes[i] !== 'full')
  let moved = 0
  const attempts: Attempt[] = []
  for (const [partition, items] of groupByPartition(stored)) {
    const settling = items.map((d) => ({
      streamId: d.streamId,
      deliveryCount: d.deliveryCount,
      delayMs: 0,
      messageId: d.message.messageId,
    }))
    const { settled, done } = await deps.messages.settle(
      queue,
      partition,
      sub.consumerGroup,
      'ack',
      items.map((d, i) => ({ ...settling[i]!, deliveryCount: d.heldAs ?? d.deliveryCount })),
      {
        now,
        maxDeliveries: sub.maxRetryAttempts,
        deadHoldMs: deps.deadHoldMs,
        details: settleDetails(deps.ledger, 'dead_letter'),
      }
    )
    moved += settled
    attempts.push(
      ...settledAttempts(partition, settling, done, {
        status: 'dead_letter',
        at: now,
        error: reason,
      })
    )
  }
  await deps.messages.countOutcome(sub, 'deadLettered', moved)
  await deps.messages.countOutcome(sub, 'failed', moved)
  await deps.ledger?.append(sub, queue, attempts)
  deps.metrics?.deadLettered(sub, moved)
  return moved
}

function groupByPartition<T extends { partition: number }>(items: T[]): Map<number, T[]> {
  const out = new Map<number, T[]>()
  for (const item of items) {
    const list = out.get(item.partition) ?? []
    list.push(item)
    out.set(item.partition, list)
  }
  return out
}

/**
 * One pass over the partitions for one subscription, shared by pulls and webhook pushes:
 * hands out up to `max` deliveries with `visibilityMs` to ack them, moves messages that ran
 * out of attempts to the dead-letter queue, acknowledges those its filter skips, decrypts
 * payloads and counts deliveries (redeliveries also as failures).
 * @returns the deliveries, the earliest open visibility deadline, and how many entries the
 * store handed out, filtered ones included, or read past (when positive, more may be waiting).
 */
export async function pullOnce(
  deps: ConsumeDeps,
  ctx: DomainContext,
  sub: Subscription,
  queue: Queue,
  max: number,
  visibilityMs: number
): Promise<{ deliveries: Delivery[]; nextDeadline: number | null; read: number }> {
  const deliveries: Delivery[] = []
  const timedOut: Attempt[] = []
  let nextDeadline: number | null = null
  let read = 0
  for (const partition of partitionsFrom(queue, Math.floor(Math.random() * queue.partitionCount))) {
    if (deliveries.length >= max) break
    const now = Date.now()
    const result = await deps.messages.pull(queue, partition, {
      group: sub.consumerGroup,
      consumer: sub.consumerName,
      max: max - deliveries.length,
      now,
      visibilityMs,
      maxDeliveries: sub.maxRetryAttempts,
      deadHoldMs: deps.deadHoldMs,
    })
    if (result.nextDeadline !== null)
      nextDeadline = Math.min(nextDeadline ?? Infinity, result.nextDeadline)
    read += result.delivered.length + result.dead.length + result.passed
    timedOut.push(...timedOutAttempts(deps.ledger, result.delivered, now))
    await moveToDeadLetter(
      deps,
      ctx,
      sub,
      queue,
      result.dead,
      'visibility timeout after the last attempt'
    )
    const skipped: StoredDelivery[] = []
    const unreadable: StoredDelivery[] = []
    for (const d of result.delivered) {
      const opened = openPayload(deps, queue, d.message)
      if (!opened) {
        unreadable.push(d)
        continue
      }
      const { payload } = opened
      if (
        !matchesFilter(sub.messageFilter, {
          headers: d.message.headers,
          key: d.message.key,
          payload,
        })
      ) {
        skipped.push(d)
        continue
      }
      deliveries.push({
        receipt: deps.receipts.encode(sub.tenantId, {
          subscriptionId: sub.id,
          partition,
          streamId: d.streamId,
          deliveryCount: d.deliveryCount,
          messageId: d.message.messageId,
        }),
        messageId: d.message.messageId,
        queue: queue.name,
        partition,
        payload,
        headers: d.message.headers,
        key: d.message.key,
        correlationId: d.message.correlationId,
        traceId: d.message.traceId,
        publishedAt: new Date(d.message.publishedAt),
        deliveryCount: d.deliveryCount,
      })
    }
    await moveToDeadLetter(
      deps,
      ctx,
      sub,
      queue,
      unreadable,
      'payload could not be decrypted or parsed'
    )
    deps.metrics?.delivered(
      sub,
      result.delivered.filter((d) => !skipped.includes(d) && !unreadable.includes(d)),
      now
    )
    if (skipped.length > 0) {
      // Filtered out: acknowledged for this subscription, never delivered.
      await deps.messages.settle(
        queue,
        partition,
        sub.consumerGroup,
        'ack',
        skipped.map((d) => ({ streamId: d.streamId, deliveryCount: d.deliveryCount, delayMs: 0 })),
        { now, maxDeliveries: sub.maxRetryAttempts, deadHoldMs: deps.deadHoldMs }
      )
    }
  }
  const redelivered = deliveries.filter((d) => d.deliveryCount > 1).length
  // Sent together, so counting adds one round trip to a pull, not three.
  await Promise.all([
    deps.messages.countOutcome(sub, 'delivered', deliveries.length),
    deps.messages.countOutcome(sub, 'failed', redelivered),
    deps.ledger?.append(sub, queue, timedOut),
  ])
  return { deliveries, nextDeadline, read }
}

/**
 * Pulls up to `max` messages for a pull subscription, waiting up to `waitMs` for the first
 * one. Deliveries not acknowledged within `visibilityTimeoutMs` (default: the subscription's
 * `sessionTimeoutMs`) come back with `deliveryCount + 1`; after `maxRetryAttempts` they go to
 * the dead-letter queue instead.
 * @throws MqError MQ_SUBSCRIPTION_NOT_FOUND, MQ_SUBSCRIPTION_PAUSED, MQ_VALIDATION_FAILED.
 */
export async function pullMessages(
  deps: ConsumeDeps,
  ctx: DomainContext,
  subscriptionId: string,
  opts: { max?: number; waitMs?: number; visibilityTimeoutMs?: number; signal?: AbortSignal }
): Promise<Delivery[]> {
  const { sub, queue } = await consumable(deps, ctx, subscriptionId)
  if (sub.subscriptionType !== 'redis_consumer') {
    throw new MqError(
      'MQ_VALIDATION_FAILED',
      'webhook subscriptions are pushed to, not pulled from'
    )
  }
  if (sub.status === 'paused') {
    throw new MqError('MQ_SUBSCRIPTION_PAUSED', `subscription '${sub.id}' is paused`)
  }
  const max = opts.max ?? 10
  if (max > sub.maxPollRecords) {
    throw new MqError(
      'MQ_VALIDATION_FAILED',
      `max is over this subscription's maxPollRecords (${sub.maxPollRecords})`,
      {
        issues: [{ path: 'max', code: 'too_big', message: `at most ${sub.maxPollRecords}` }],
      }
    )
  }
  const visibilityMs = opts.visibilityTimeoutMs ?? sub.sessionTimeoutMs
  const started = Date.now()
  const deadline = started + (opts.waitMs ?? 0)
  // What a wait must see newer entries than. Taken once a pull came back empty and followed
  // by one more pull, so that nothing published between the two is slept past: a consumer
  // that finds messages pays no round trip for it.
  let after: string[] | null = null
  for (;;) {
    const { deliveries, nextDeadline, read } = await pullOnce(
      deps,
      ctx,
      sub,
      queue,
      max,
      visibilityMs
    )
    const now = Date.now()
    // Everything read was filtered out: more may wait behind it, already in the stream, which
    // a wait for new entries would not see. Read on (for a second at least, even unasked).
    if (deliveries.length === 0 && read > 0 && now < Math.max(deadline, started + FILTER_BUDGET_MS))
      continue
    if (
      deliveries.length > 0 ||
      now >= deadline ||
      opts.signal?.aborted ||
      deps.stopping?.aborted
    ) {
      return deliveries
    }
    if (after === null) {
      after = await deps.waiter.lastIds(queue)
      continue
    }
    // Sleep until something is published, a delivery's visibility runs out, or time is up.
    const until = Math.min(deadline, nextDeadline ?? Infinity, now + MAX_WAIT_SLICE_MS)
    await deps.waiter.wait(queue, after, Math.max(1, until - now))
    after = null
    // The client went away while this waited (a consumer killed mid-poll): what a pull took
    // now would reach nobody and stay hidden for the whole visibility timeout.
    if (opts.signal?.aborted) return []
    // Deleted while this waited: a pull now would bring its consumer back into the group and
    // hand out receipts that can never acknowledge (404 MQ_SUBSCRIPTION_NOT_FOUND).
    await deps.loadSubscription(ctx, sub.id)
  }
}

/** How long a pull may read on past messages its filter drops before answering empty. */
const FILTER_BUDGET_MS = 1000

/**
 * Decodes receipts of this subscription. One that cannot be its own (malformed, forged, another
 * tenant's or subscription's, or signed before a key rotation) fails the whole request with
 * 400, settling nothing: answering `{"acked": 0}` hid a client's bug as a stale receipt.
 * @throws MqError MQ_VALIDATION_FAILED naming each such receipt's index.
 */
function ownReceipts(deps: ConsumeDeps, sub: Subscription, receipts: string[]): ReceiptData[] {
  const decoded = receipts.map((r) => deps.receipts.decode(sub.tenantId, r))
  const foreign = decoded.flatMap((r, i) => (r === null || r.subscriptionId !== sub.id ? [i] : []))
  if (foreign.length > 0) {
    throw new MqError(
      'MQ_VALIDATION_FAILED',
      `receipts.${foreign[0]}: not a receipt of this subscription`,
      {
        issues: foreign.map((i) => ({
          path: `receipts.${i}`,
          code: 'invalid_receipt',
          message: 'not a receipt of this subscription',
        })),
      }
    )
  }
  return decoded as ReceiptData[]
}

/**
 * Acknowledges deliveries. A stale receipt (the message was delivered again since) acknowledges
 * nothing; one that is not this subscription's is refused (see {@link ownReceipts}).
 * @returns how many were acknowledged.
 */
export async function ackMessages(
  deps: ConsumeDeps,
  ctx: DomainContext,
  subscriptionId: string,
  receipts: string[]
): Promise<number> {
  const { sub, queue } = await consumable(deps, ctx, subscriptionId)
  return ackDeliveries(deps, sub, queue, ownReceipts(deps, sub, receipts))
}

/**
 * Acknowledges decoded receipts of one subscription; a stale one (delivered again since)
 * acknowledges nothing.
 * @returns how many were acknowledged.
 */
export async function ackDeliveries(
  deps: ConsumeDeps,
  sub: Subscription,
  queue: Queue,
  receipts: ReceiptData[]
): Promise<number> {
  let acked = 0
  let processingMs = 0
  const attempts: Attempt[] = []
  for (const [partition, items] of groupByPartition(receipts)) {
    const now = Date.now()
    const settling = items.map((r) => ({
      streamId: r.streamId,
      deliveryCount: r.deliveryCount,
      delayMs: 0,
      messageId: r.messageId,
    }))
    const settle = await deps.messages.settle(
      queue,
      partition,
      sub.consumerGroup,
      'ack',
      settling,
      {
        now,
        maxDeliveries: sub.maxRetryAttempts,
        deadHoldMs: deps.deadHoldMs,
        details: settleDetails(deps.ledger, 'success'),
      }
    )
    acked += settle.settled
    processingMs += settle.processingMs
    attempts.push(
      ...settledAttempts(partition, settling, settle.done, { status: 'success', at: now })
    )
  }
  // Sent together, so logging the attempts adds no round trip to an ack.
  await Promise.all([
    deps.messages.countOutcome(sub, 'acked', acked),
    deps.ledger?.append(sub, queue, attempts),
  ])
  deps.metrics?.acked(sub, acked, processingMs)
  return acked
}

/**
 * Gives deliveries back: each comes again after `delayMs`, or after the subscription's retry
 * backoff, unless it has had `maxRetryAttempts` deliveries; then it goes to the dead-letter
 * queue.
 */
export async function nackMessages(
  deps: ConsumeDeps,
  ctx: DomainContext,
  subscriptionId: string,
  receipts: string[],
  opts: { delayMs?: number; reason?: string }
): Promise<{ requeued: number; deadLettered: number }> {
  const { sub, queue } = await consumable(deps, ctx, subscriptionId)
  return nackDeliveries(deps, ctx, sub, queue, ownReceipts(deps, sub, receipts), opts)
}

/**
 * Gives decoded receipts of one subscription back, as {@link nackMessages} does: each comes
 * again after `delayMs` (default: the retry backoff), or goes to the dead-letter queue once it
 * has had `maxRetryAttempts` deliveries. A stale receipt changes nothing.
 */
export async function nackDeliveries(
  deps: ConsumeDeps,
  ctx: DomainContext,
  sub: Subscription,
  queue: Queue,
  receipts: ReceiptData[],
  opts: { delayMs?: number; reason?: string }
): Promise<{ requeued: number; deadLettered: number }> {
  let requeued = 0
  let deadLettered = 0
  const attempts: Attempt[] = []
  const reason = opts.reason ?? 'rejected by the consumer'
  for (const [partition, items] of groupByPartition(receipts)) {
    const now = Date.now()
    const settling = items.map((r) => ({
      streamId: r.streamId,
      deliveryCount: r.deliveryCount,
      delayMs: opts.delayMs ?? retryDelay(sub, r.deliveryCount),
      messageId: r.messageId,
    }))
    const { settled, dead, done } = await deps.messages.settle(
      queue,
      partition,
      sub.consumerGroup,
      'nack',
      settling,
      {
        now,
        maxDeliveries: sub.maxRetryAttempts,
        deadHoldMs: deps.deadHoldMs,
        details: settleDetails(deps.ledger, 'retrying'),
      }
    )
    requeued += settled
    attempts.push(
      ...settledAttempts(partition, settling, done, { status: 'retrying', at: now, error: reason })
    )
    deadLettered += await moveToDeadLetter(deps, ctx, sub, queue, dead, reason)
  }
  await deps.ledger?.append(sub, queue, attempts)
  deps.metrics?.nacked(sub, requeued)
  // Each requeued delivery counts as failed when it is delivered again.
  return { requeued, deadLettered }
}

/**
 * Moves the whole group's read position: `earliest` replays what the stream still holds,
 * `latest` skips to new messages, a time replays from then on.
 * @returns the position as a stream id.
 */
export async function seekSubscription(
  deps: ConsumeDeps,
  ctx: DomainContext,
  subscriptionId: string,
  to: GroupPosition
): Promise<string> {
  const { sub, queue } = await consumable(deps, ctx, subscriptionId)
  return deps.messages.seek(queue, sub.consumerGroup, to)
}
