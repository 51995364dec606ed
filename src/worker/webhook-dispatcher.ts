import {
  ackDeliveries,
  type ConsumeDeps,
  type Delivery,
  nackDeliveries,
  pullOnce,
  type ReceiptData,
} from '../domain/consume'
import type { DomainContext } from '../domain/context'
import type { SubscriptionStore, WaitStore } from '../domain/ports'
import type { Queue } from '../domain/queues'
import { retryDelay } from '../domain/retry'
import type { Subscription } from '../domain/subscriptions'
import type { RedisClient } from '../streams/redis'
import { ERROR_PAUSE_MS, missedDeadline } from './loop'
import { Batch, type Slots } from './webhook-flow'
import { type PermitDeps, Permits } from './webhook-permits'
import { attemptDelivery, endpointOf, type Outcome, type RequestDeps } from './webhook-request'

/** What one subscription's dispatcher needs besides its HTTP attempts. */
export interface DispatcherDeps extends RequestDeps, PermitDeps, WaitStore {
  consume: ConsumeDeps
  /** Pauses a subscription whose endpoint answered 410 (the cached store tells other processes). */
  subscriptions: Pick<SubscriptionStore, 'update'>
  /** The subscription's `whsec_…` secret in clear. */
  signingSecret(sub: Subscription): string | null
  /** A dedicated connection for one dispatcher's blocking reads. */
  openBlockingConnection(): RedisClient
  /** Ends another connection's blocking read early (`CLIENT UNBLOCK`). @returns 1 if it did. */
  unblock(clientId: number): Promise<number>
}

/** What every dispatcher of a process shares. */
export interface Shared {
  deps: DispatcherDeps
  options: {
    /** Deliveries in flight per subscription, from pull until settled. */
    perSubscription: number
    /** Cap on a subscription's `timeoutMs`. */
    maxTimeoutMs: number
  }
  /** The global in-flight cap. */
  slots: Slots
}

/** A blocking read never outlasts this, so a lost wake-up costs at most this long (STYLE 15). */
const MAX_WAIT_SLICE_MS = 5000
/** Beyond the request timeout, the time a delivery may take to be settled before it is redelivered. */
const SETTLE_MARGIN_MS = 5000
/**
 * Between pulls of a dispatcher that keeps finding a few messages: at 2,000 messages/s that is
 * a few more per pull (and per ack), a Redis round trip fewer each, for at most this much
 * latency. A new message still ends an idle dispatcher's wait at once.
 */
const BUSY_PULL_PAUSE_MS = 1

/** The actor the worker acts as when it acks, nacks and dead-letters. */
const workerContext = (sub: Subscription): DomainContext => ({
  tenantId: sub.tenantId,
  principal: { kind: 'service', name: 'webhook-delivery' },
  requestId: `webhook-${sub.id}`,
})

/**
 * Pushes one subscription's messages. Dispatchers share nothing but the global slot count, so
 * one slow or dead endpoint holds at most `perSubscription` slots for at most its timeout and
 * never delays another subscription's deliveries. Each delivery also holds one of the
 * subscription's permits, shared by every process (its rate, parallelism and pause).
 */
export class Dispatcher {
  /** Set when it should take no more work: stopped, or the endpoint answered 410. */
  halted = false
  /** Every delivery not yet settled: its request, then its ack or nack. */
  private readonly inFlight = new Set<Promise<void>>()
  /** Deliveries whose request has no answer yet: what `perSubscription` bounds. */
  private requests = 0
  private readonly aborter = new AbortController()
  private wakeRequested = false
  /** What a wake-up ends: the waits in progress, each removed again when it ends. */
  private readonly wakers = new Set<() => void>()
  private connection: RedisClient | undefined
  private blockedId: number | null = null
  private interrupting = false
  private running: Promise<void> = Promise.resolve()
  private secret: string | null | undefined
  private readonly acks = new Batch((receipts: ReceiptData[]) =>
    ackDeliveries(this.shared.deps.consume, this.sub, this.queue, receipts)
  )
  private readonly permits: Permits

  constructor(
    private readonly shared: Shared,
    private sub: Subscription,
    private readonly queue: Queue
  ) {
    this.permits = new Permits(shared.deps, () => this.sub)
  }

  start(): void {
    this.running = this.run()
  }

  /** Takes new settings (URL, headers, retry policy…) for the attempts that follow. */
  update(sub: Subscription): void {
    if (sub.updatedAt.getTime() === this.sub.updatedAt.getTime()) return
    if (sub.signingSecret !== this.sub.signingSecret) this.secret = undefined
    this.sub = sub
  }

  /**
   * Takes no more work, lets requests in flight finish and settle for up to `deadlineMs`, then
   * aborts the rest without settling them: they stay in flight in Redis and are delivered
   * again once their visibility timeout passes.
   */
  async stop(deadlineMs: number): Promise<void> {
    this.halted = true
    this.wake()
    // Ends a blocking read at once; its rejection is expected while halted.
    this.connection?.disconnect()
    await this.running
    const done = Promise.all(this.inFlight)
    if (await missedDeadline(done, deadlineMs)) {
      this.aborter.abort(new Error('worker stopping'))
      await done
    }
    await this.permits.settled()
  }

  private get log() {
    return this.shared.deps.logger
  }

  private async run(): Promise<void> {
    try {
      await this.dispatch()
    } finally {
      this.connection?.disconnect()
    }
  }

  private async dispatch(): Promise<void> {
    const { deps, options, slots } = this.shared
    // The streams' newest ids, taken before the latest pull: only a pull that came after them
    // and found nothing may be followed by a wait for entries newer than these.
    let after: string[] | null = null
    while (!this.halted) {
      this.wakeRequested = false
      // A slot is given back once its request has an answer, before the ack goes out: holding
      // it through the ack's wait (Batch) left a subscription barely faster than 2,000 a second.
      // Answered deliveries still settling count as well, up to as many again, so a slow Redis
      // holds back new requests instead of piling up acks.
      const requestRoom = options.perSubscription - this.requests
      const settleRoom = 2 * options.perSubscription - this.inFlight.size
      let room = slots.take(Math.min(requestRoom, settleRoom))
      if (room === 0) {
        await this.sleep(
          requestRoom > 0 && settleRoom <= 0 ? Promise.race(this.inFlight) : slots.freed()
        )
        continue
      }
      let permitted = 0
      try {
        // Permits are the subscription's (slots the process's): what they refuse goes back.
        const { timeoutMs } = endpointOf(this.sub, options.maxTimeoutMs)
        const { granted, waitMs } = await this.permits.take(room, timeoutMs + SETTLE_MARGIN_MS)
        slots.give(room - granted)
        room = permitted = granted
        if (room === 0) {
          await this.sleep(Bun.sleep(waitMs))
          continue
        }
        const { deliveries, nextDeadline, read } = await pullOnce(
          deps.consume,
          workerContext(this.sub),
          this.sub,
          this.queue,
          room,
          this.visibilityMs()
        )
        slots.give(room - deliveries.length)
        this.permits.give(room - deliveries.length, { unused: true })
        const asked = room
        room = permitted = 0
        for (const d of deliveries) this.launch(d)
        // Entries were handed out (some perhaps filtered away): more may be waiting unread.
        if (read > 0 || this.wakeRequested) {
          after = null
          // Caught up but still busy: the next pull waits a moment, to take what arrives
          // meanwhile in one round trip instead of one or two messages per pull.
          if (read < asked) await this.sleep(Bun.sleep(BUSY_PULL_PAUSE_MS))
          continue
        }
        // While busy, the ids are not read before every pull: that round trip is paid only
        // when a pull comes back empty, and the pull is then tried once more after it, so
        // nothing published in between is left waiting for the next wake-up.
        if (after === null) {
          after = await deps.lastIds(this.queue)
          continue
        }
        await this.idle(after, nextDeadline)
        after = null
      } catch (err) {
        after = null
        slots.give(room)
        this.permits.give(permitted, { unused: true })
        if (this.halted) break
        this.log.warn(
          { err: (err as Error).message, subscriptionId: this.sub.id },
          'webhook pull failed'
        )
        await this.sleep(Bun.sleep(ERROR_PAUSE_MS))
      }
    }
  }

  /** Long enough that a delivery is never handed out again while its request still runs. */
  private visibilityMs(): number {
    const { timeoutMs } = endpointOf(this.sub, this.shared.options.maxTimeoutMs)
    return Math.max(this.sub.sessionTimeoutMs, timeoutMs + SETTLE_MARGIN_MS)
  }

  private launch(d: Delivery): void {
    let answered = false
    const answer = (pauseMs?: number) => {
      if (answered) return
      answered = true
      this.permits.give(1, { pauseMs })
      this.requests--
      // Wakes the loop if it waits for a slot; a blocking read needs no wake-up for an ack.
      this.shared.slots.give(1)
    }
    this.requests++
    const task = this.deliver(d, answer)
      .catch((err) =>
        this.log.error({ err, subscriptionId: this.sub.id }, 'webhook delivery not settled')
      )
      .finally(() => {
        answer()
        this.inFlight.delete(task)
      })
    this.inFlight.add(task)
  }

  /** Waits until `p` settles or something wakes the dispatcher. */
  private async sleep(p: Promise<unknown>): Promise<void> {
    if (this.wakeRequested || this.halted) return
    let waker: (() => void) | undefined
    const woken = new Promise<void>((resolve) => {
      waker = resolve
      this.wakers.add(resolve)
    })
    try {
      await Promise.race([p, woken])
    } finally {
      if (waker) this.wakers.delete(waker)
    }
  }

  /** Wake-up callbacks held: one for the wait in progress, if any. */
  get heldWakers(): number {
    return this.wakers.size
  }

  /** Wakes the loop: out of a local wait, and out of a blocking read via `CLIENT UNBLOCK`. */
  private wake(): void {
    this.wakeRequested = true
    const wakers = [...this.wakers]
    this.wakers.clear()
    for (const resolve of wakers) resolve()
    void this.interrupt()
  }

  /**
   * Unblocks the dispatcher's blocking read. The read may not have reached Redis yet when the
   * wake-up comes, so this tries again for a little while until one unblock lands.
   */
  private async interrupt(): Promise<void> {
    if (this.interrupting) return
    this.interrupting = true
    try {
      for (let i = 0; i < 20 && this.blockedId !== null; i++) {
        if ((await this.shared.deps.unblock(this.blockedId).catch(() => 0)) > 0) return
        await Bun.sleep(5)
      }
    } finally {
      this.interrupting = false
    }
  }

  /**
   * Sleeps on a blocking read of the queue's streams until something is published, the
   * earliest visibility deadline (a retry coming due) passes, or a wake-up. The deadline is a
   * local timer, not the read's timeout: Redis times blocked reads out only on its ~100 ms
   * cron, too coarse for retry delays of a few hundred milliseconds.
   */
  private async idle(after: string[], nextDeadline: number | null): Promise<void> {
    if (this.halted) return
    const due =
      nextDeadline === null
        ? undefined
        : setTimeout(() => this.wake(), Math.max(0, nextDeadline - Date.now()))
    this.connection ??= this.shared.deps.openBlockingConnection()
    const connection = this.connection
    let failure: Error | undefined
    let waker: (() => void) | undefined
    try {
      const id = Number(await connection.client('ID'))
      if (this.wakeRequested || this.halted) return
      this.blockedId = id
      // On a cluster the wait polls and CLIENT UNBLOCK cannot reach it (client ids are per
      // node): a wake-up ends it through this signal instead.
      const woken = new AbortController()
      waker = () => woken.abort()
      this.wakers.add(waker)
      await this.shared.deps.waitForEntries(
        connection,
        this.queue,
        after,
        MAX_WAIT_SLICE_MS,
        woken.signal
      )
    } catch (err) {
      failure = err as Error
    } finally {
      this.blockedId = null
      clearTimeout(due)
      if (waker) this.wakers.delete(waker)
    }
    if (!failure || this.halted) return
    this.log.warn({ err: failure.message, subscriptionId: this.sub.id }, 'webhook wait failed')
    await this.sleep(Bun.sleep(ERROR_PAUSE_MS))
  }

  private signingSecret(): string {
    if (this.secret === undefined) this.secret = this.shared.deps.signingSecret(this.sub)
    if (!this.secret) throw new Error('the subscription has no signing secret')
    return this.secret
  }

  /** Calls `answered` once the request is over (with any pause it asks for), before settling. */
  private async deliver(d: Delivery, answered: (pauseMs?: number) => void): Promise<void> {
    const sub = this.sub
    const receipt = this.shared.deps.consume.receipts.decode(sub.tenantId, d.receipt)
    if (!receipt) throw new Error('a receipt of our own did not decode')
    const outcome = await attemptDelivery(this.shared.deps, {
      sub,
      delivery: d,
      endpoint: endpointOf(sub, this.shared.options.maxTimeoutMs),
      signingSecret: () => this.signingSecret(),
      abort: this.aborter.signal,
    })
    if (!outcome) return
    answered(outcome.kind === 'retry' ? outcome.notBeforeMs : undefined)
    await this.settle(sub, receipt, d, outcome)
  }

  private async settle(
    sub: Subscription,
    receipt: ReceiptData,
    d: Delivery,
    outcome: Outcome
  ): Promise<void> {
    const { deps } = this.shared
    if (outcome.kind === 'ack') {
      await this.acks.add(receipt)
      // An ordered ack releases its key: the next message of it is due now, unseen by a wait.
      if (sub.ordering === 'key') this.wake()
      return
    }
    this.log.debug(
      {
        subscriptionId: sub.id,
        messageId: d.messageId,
        deliveryCount: d.deliveryCount,
        reason: outcome.reason,
      },
      'webhook attempt failed'
    )
    if (outcome.kind === 'gone') {
      // Paused before the nack, so the message waits for a resume instead of being retried.
      this.halted = true
      this.wake()
      const statusReason = `${outcome.reason} at ${new Date().toISOString()}`
      await deps.subscriptions.update(sub.tenantId, sub.id, { status: 'paused', statusReason })
      this.log.info({ subscriptionId: sub.id, statusReason }, 'webhook subscription paused')
    }
    const backoff = outcome.kind === 'gone' ? 0 : retryDelay(sub, d.deliveryCount)
    const notBefore = outcome.kind === 'retry' ? (outcome.notBeforeMs ?? 0) : 0
    await nackDeliveries(deps.consume, workerContext(sub), sub, this.queue, [receipt], {
      delayMs: Math.max(backoff, notBefore),
      reason: `webhook: ${outcome.reason}`,
      ...(outcome.kind === 'retry' && outcome.statusCode !== undefined
        ? { statusCode: outcome.statusCode }
        : {}),
    })
    // The retry may come due before the loop's current wait ends.
    this.wake()
  }
}
