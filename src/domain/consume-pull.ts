import { moveToDeadLetter } from './consume-dead-letter'
import { type ConsumeDeps, consumable, openPayload } from './consume-deps'
import type { DomainContext } from './context'
import { MqError } from './errors'
import { matchesFilter } from './filter'
import type { MessageView } from './inspect'
import { type Attempt, timedOutAttempts } from './ledger'
import type { StoredDelivery } from './messages'
import type { Queue } from './queues'
import type { Subscription } from './subscriptions'

/** A message handed to a consumer (API.md "A delivery"): as peeked, plus receipt and count. */
export interface Delivery extends Omit<MessageView, 'expiresAt'> {
  receipt: string
  deliveryCount: number
}

/** Longest single wait of a long poll; a client going away is noticed this often. */
const MAX_WAIT_SLICE_MS = 5000

/** How long a pull may read on past messages its filter drops before answering empty. */
const FILTER_BUDGET_MS = 1000

const partitionsFrom = (queue: Queue, start: number) =>
  Array.from({ length: queue.partitionCount }, (_, i) => (start + i) % queue.partitionCount)

interface PartitionTake {
  deliveries: Delivery[]
  nextDeadline: number | null
  read: number
  timedOut: Attempt[]
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
  const taken: Taken = []
  try {
    return await pullFrom(deps, ctx, sub, queue, max, visibilityMs, taken)
  } catch (err) {
    // What was read reaches nobody: hand it back at once rather than leave it hidden for the
    // whole visibility timeout, where every later pull meeting the same failure would push it
    // on toward its last attempt. Entries settled or moved before the failure are no longer
    // pending under their count and are left alone. If this fails too, the timeout still
    // brings them back; the caller is told of the first failure.
    await releaseTaken(deps, sub, queue, taken).catch(() => {})
    throw err
  }
}

/** What each partition handed out, noted as soon as the store answered. */
type Taken = Array<[number, StoredDelivery[]]>

function releaseTaken(deps: ConsumeDeps, sub: Subscription, queue: Queue, taken: Taken) {
  const now = Date.now()
  return Promise.all(
    taken.map(([partition, read]) =>
      deps.messages.settle(
        queue,
        partition,
        sub.consumerGroup,
        'nack',
        read.map((d) => ({ streamId: d.streamId, deliveryCount: d.deliveryCount, delayMs: 0 })),
        {
          now,
          maxDeliveries: sub.maxRetryAttempts,
          deadHoldMs: deps.deadHoldMs,
          ordered: sub.ordering === 'key',
        }
      )
    )
  )
}

/** {@link pullOnce}, telling `taken` what each partition handed out as soon as it has. */
async function pullFrom(
  deps: ConsumeDeps,
  ctx: DomainContext,
  sub: Subscription,
  queue: Queue,
  max: number,
  visibilityMs: number,
  taken: Taken
): Promise<{ deliveries: Delivery[]; nextDeadline: number | null; read: number }> {
  const deliveries: Delivery[] = []
  const timedOut: Attempt[] = []
  let nextDeadline: number | null = null
  let read = 0
  for (const partition of partitionsFrom(queue, Math.floor(Math.random() * queue.partitionCount))) {
    if (deliveries.length >= max) break
    const take = await pullPartition(deps, ctx, sub, queue, partition, {
      max: max - deliveries.length,
      visibilityMs,
      taken,
    })
    if (take.nextDeadline !== null)
      nextDeadline = Math.min(nextDeadline ?? Infinity, take.nextDeadline)
    read += take.read
    deliveries.push(...take.deliveries)
    timedOut.push(...take.timedOut)
  }
  const redelivered = deliveries.filter((d) => d.deliveryCount > 1).length
  // Sent together, so counting adds one round trip to a pull, not three.
  await Promise.all([
    deps.messages.countOutcome(sub, 'delivered', deliveries.length),
    deps.messages.countOutcome(sub, 'failed', redelivered),
    deps.ledger.append(sub, queue, timedOut),
  ])
  return { deliveries, nextDeadline, read }
}

/** Pulls from one partition: what it hands out, dead-letters, and acknowledges unseen. */
async function pullPartition(
  deps: ConsumeDeps,
  ctx: DomainContext,
  sub: Subscription,
  queue: Queue,
  partition: number,
  opts: { max: number; visibilityMs: number; taken: Taken }
): Promise<PartitionTake> {
  const now = Date.now()
  const settleOpts = {
    now,
    maxDeliveries: sub.maxRetryAttempts,
    deadHoldMs: deps.deadHoldMs,
    ordered: sub.ordering === 'key',
  }
  const result = await deps.messages.pull(queue, partition, {
    ...settleOpts,
    group: sub.consumerGroup,
    consumer: sub.consumerName,
    max: opts.max,
    visibilityMs: opts.visibilityMs,
  })
  if (result.delivered.length > 0) opts.taken.push([partition, result.delivered])
  const timedOut = timedOutAttempts(deps.ledger, result.delivered, now)
  const dead = 'visibility timeout after the last attempt'
  await moveToDeadLetter(deps, ctx, sub, queue, result.dead, dead)
  const deliveries: Delivery[] = []
  const handed: StoredDelivery[] = []
  const skipped: StoredDelivery[] = []
  const unreadable: StoredDelivery[] = []
  for (const d of result.delivered) {
    const opened = openPayload(deps, queue, d.message)
    if (!opened) unreadable.push(d)
    else if (!matchesFilter(sub.messageFilter, { ...pick(d), payload: opened.payload }))
      skipped.push(d)
    else {
      handed.push(d)
      deliveries.push(toDelivery(deps, sub, queue, d, opened.payload))
    }
  }
  const unopened = 'payload could not be decrypted or parsed'
  await moveToDeadLetter(deps, ctx, sub, queue, unreadable, unopened)
  deps.metrics.delivered(sub, handed, now)
  if (skipped.length > 0) {
    // Filtered out: acknowledged for this subscription, never delivered.
    const items = skipped.map((d) => ({
      streamId: d.streamId,
      deliveryCount: d.deliveryCount,
      delayMs: 0,
    }))
    await deps.messages.settle(queue, partition, sub.consumerGroup, 'ack', items, settleOpts)
  }
  return {
    deliveries,
    nextDeadline: result.nextDeadline,
    read: result.delivered.length + result.dead.length + result.passed,
    timedOut,
  }
}

/** What a filter may look at besides the payload. */
const pick = (d: StoredDelivery) => ({ headers: d.message.headers, key: d.message.key })

function toDelivery(
  deps: Pick<ConsumeDeps, 'receipts'>,
  sub: Subscription,
  queue: Queue,
  d: StoredDelivery,
  payload: unknown
): Delivery {
  return {
    receipt: deps.receipts.encode(sub.tenantId, {
      subscriptionId: sub.id,
      partition: d.partition,
      streamId: d.streamId,
      deliveryCount: d.deliveryCount,
      messageId: d.message.messageId,
    }),
    messageId: d.message.messageId,
    queue: queue.name,
    partition: d.partition,
    payload,
    headers: d.message.headers,
    key: d.message.key,
    correlationId: d.message.correlationId,
    traceId: d.message.traceId,
    publishedAt: new Date(d.message.publishedAt),
    deliveryCount: d.deliveryCount,
  }
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
