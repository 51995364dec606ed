import { createHmac } from 'node:crypto'
import { SubscriptionRepository } from '../db/subscription-repository'
import type { Deps } from '../deps'
import {
  ackDeliveries,
  type ConsumeDeps,
  type Delivery,
  nackDeliveries,
  pullOnce,
  type ReceiptData,
} from '../domain/consume'
import type { DomainContext } from '../domain/context'
import type { SubscriptionStore } from '../domain/ports'
import type { Queue } from '../domain/queues'
import { MAX_RETRY_DELAY_MS, retryDelay } from '../domain/retry'
import { openSigningSecret, WEBHOOK_DEFAULTS } from '../domain/subscription-admin'
import type { Subscription } from '../domain/subscriptions'
import { type Connector, pinnedFetch } from '../egress/pinned-fetch'
import { UnsafeWebhookUrlError, type WebhookUrlGuard } from '../egress/ssrf'
import type { Logger } from '../observability/logger'
import type { WebhookOutcome } from '../observability/metrics'
import { createRedis, type RedisClient } from '../streams/redis'
import type { Loop } from '.'

/** What the delivery loop needs; {@link createWebhookDelivery} wires it from the process's deps. */
export interface WebhookDeliveryDeps {
  consume: ConsumeDeps
  /** Pauses a subscription whose endpoint answered 410 (the cached store tells other processes). */
  subscriptions: Pick<SubscriptionStore, 'update'>
  /** Every active webhook subscription of every tenant, read afresh (not from a cache). */
  listActiveWebhooks(): Promise<Subscription[]>
  /** The subscription's `whsec_…` secret in clear. */
  signingSecret(sub: Subscription): string | null
  /** Validates a URL and resolves it to the one address to connect to, at every attempt. */
  guard: Pick<WebhookUrlGuard, 'check'>
  /** Opens the socket; Bun's fetch unless a test records connections. */
  connect?: Connector
  /** The newest entry id of each partition, taken before a pull so nothing slips between. */
  lastIds(queue: Queue): Promise<string[]>
  /**
   * Waits on `client` (blocking) until an entry newer than `after` arrives, the timeout, or
   * (on a cluster, where the wait polls) `signal`.
   */
  waitForEntries(
    client: RedisClient,
    queue: Queue,
    after: string[],
    timeoutMs: number,
    signal?: AbortSignal
  ): Promise<void>
  /** A dedicated connection for one dispatcher's blocking reads. */
  openBlockingConnection(): RedisClient
  /** Ends another connection's blocking read early (`CLIENT UNBLOCK`). @returns 1 if it did. */
  unblock(clientId: number): Promise<number>
  /** Counts one push attempt by what it came to (Prometheus). */
  recordAttempt(outcome: WebhookOutcome): void
  logger: Logger
}

export interface WebhookDeliveryOptions {
  /**
   * Deliveries in flight per subscription (`MAX_CONCURRENT_CONSUMERS`), each from its pull
   * until it is settled: the bound on requests one endpoint can have open at once.
   */
  perSubscription: number
  /** Requests in flight across all subscriptions of this process. */
  maxInFlight: number
  /** Cap on a subscription's `timeoutMs` (`PROCESSING_TIMEOUT_MS`). */
  maxTimeoutMs: number
  /** How often subscriptions are re-read: pause, resume, delete and edits take effect this fast. */
  refreshMs?: number
  /** How long stop() waits for requests in flight before abandoning them. */
  stopDeadlineMs?: number
}

const REFRESH_MS = 1000
/** A blocking read never outlasts this, so a lost wake-up costs at most this long (STYLE 15). */
const MAX_WAIT_SLICE_MS = 5000
/** Below the process's 10 s shutdown deadline, leaving time to close connections. */
const STOP_DEADLINE_MS = 8000
/** Beyond the request timeout, the time a delivery may take to be settled before it is redelivered. */
const SETTLE_MARGIN_MS = 5000
/**
 * Between pulls of a dispatcher that keeps finding a few messages: at 2,000 messages/s that is
 * a few more per pull (and per ack), a Redis round trip fewer each, for at most this much
 * latency. A new message still ends an idle dispatcher's wait at once.
 */
const BUSY_PULL_PAUSE_MS = 1
/** After a failed pull or wait, so a failing Redis or PostgreSQL is not hammered. */
const ERROR_PAUSE_MS = 1000
/**
 * Requests in flight per process across all subscriptions, unless one subscription may have
 * more: twenty hanging endpoints at the default per-subscription limit before the others wait.
 */
const MAX_IN_FLIGHT = 1000

/** Headers a message or `handlerConfig.headers` may not set: ours, and those of the transport. */
const RESERVED_HEADER =
  /^(host|content-.*|transfer-encoding|connection|keep-alive|upgrade|te|trailer|expect|proxy-.*|webhook-.*|x-mq-.*)$/i

/** The actor the worker acts as when it acks, nacks and dead-letters. */
const workerContext = (sub: Subscription): DomainContext => ({
  tenantId: sub.tenantId,
  principal: { kind: 'service', name: 'webhook-delivery' },
  requestId: `webhook-${sub.id}`,
})

/** `handlerConfig` of a webhook with its defaults; `timeoutMs` capped by the operator's limit. */
function endpointOf(sub: Subscription, maxTimeoutMs: number) {
  const c = sub.handlerConfig
  return {
    url: String(c.url),
    method: typeof c.method === 'string' ? c.method : WEBHOOK_DEFAULTS.method,
    headers: (c.headers ?? {}) as Record<string, string>,
    timeoutMs: Math.min(
      typeof c.timeoutMs === 'number' ? c.timeoutMs : WEBHOOK_DEFAULTS.timeoutMs,
      maxTimeoutMs
    ),
  }
}

/** What an attempt came to. */
type Outcome =
  | { kind: 'ack' }
  | { kind: 'retry'; reason: string; notBeforeMs?: number }
  | { kind: 'gone'; reason: string }

/**
 * `Retry-After` as milliseconds from now: delta-seconds or an HTTP date (RFC 9110 §10.2.3),
 * at most the longest retry delay. @returns null when absent or unreadable.
 */
export function retryAfterMs(value: string | null, now = Date.now()): number | null {
  if (!value) return null
  const trimmed = value.trim()
  const ms = /^\d+$/.test(trimmed) ? Number(trimmed) * 1000 : Date.parse(trimmed) - now
  return Number.isNaN(ms) ? null : Math.min(Math.max(0, ms), MAX_RETRY_DELAY_MS)
}

function judge(res: Response): Outcome {
  if (res.status >= 200 && res.status < 300) return { kind: 'ack' }
  if (res.status === 410) return { kind: 'gone', reason: 'endpoint answered 410 Gone' }
  const reason =
    res.status >= 300 && res.status < 400
      ? `endpoint answered ${res.status} (redirects are not followed)`
      : `endpoint answered ${res.status}`
  const wait =
    res.status === 429 || res.status === 503 ? retryAfterMs(res.headers.get('retry-after')) : null
  return wait === null ? { kind: 'retry', reason } : { kind: 'retry', reason, notBeforeMs: wait }
}

/** Rejects with the signal's reason as soon as it aborts, whatever `promise` is doing. */
function abortable<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason)
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason)
    signal.addEventListener('abort', onAbort, { once: true })
    promise.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort))
  })
}

/**
 * The Standard Webhooks signature: `v1,` + base64 HMAC-SHA256 of `id.timestamp.body`, keyed
 * with the base64-decoded part of the `whsec_` secret.
 */
export function signWebhook(secret: string, id: string, timestamp: number, body: string): string {
  const key = Buffer.from(secret.replace(/^whsec_/, ''), 'base64')
  return `v1,${createHmac('sha256', key).update(`${id}.${timestamp}.${body}`).digest('base64')}`
}

/**
 * Acknowledgements of one subscription, gathered while the previous settle call runs: every
 * delivery answered meanwhile goes in the next call, one round trip for all of them instead of
 * one each. The first ack is sent at once (no timer), so batching costs no latency; it only
 * grows with the load.
 */
class AckBatch {
  private pending: Array<{ receipt: ReceiptData; done: PromiseWithResolvers<void> }> = []
  private flushing = false

  constructor(private readonly send: (receipts: ReceiptData[]) => Promise<unknown>) {}

  /** @returns once the call carrying `receipt` has settled it (or rejects as that call did). */
  add(receipt: ReceiptData): Promise<void> {
    const done = Promise.withResolvers<void>()
    this.pending.push({ receipt, done })
    if (!this.flushing) void this.flush()
    return done.promise
  }

  private async flush(): Promise<void> {
    this.flushing = true
    while (this.pending.length > 0) {
      const batch = this.pending.splice(0)
      try {
        await this.send(batch.map((p) => p.receipt))
        for (const p of batch) p.done.resolve()
      } catch (err) {
        for (const p of batch) p.done.reject(err)
      }
    }
    this.flushing = false
  }
}

/** Slots shared by every dispatcher of a process: the global in-flight cap. */
class Slots {
  private waiters: Array<() => void> = []

  constructor(private free: number) {}

  /** Takes up to `n` slots. @returns how many it got. */
  take(n: number): number {
    const got = Math.max(0, Math.min(n, this.free))
    this.free -= got
    return got
  }

  give(n: number): void {
    if (n <= 0) return
    this.free += n
    for (const wake of this.waiters.splice(0)) wake()
  }

  /** Resolves the next time slots are given back. */
  freed(): Promise<void> {
    return new Promise((resolve) => this.waiters.push(resolve))
  }
}

interface Shared {
  deps: WebhookDeliveryDeps
  options: Required<WebhookDeliveryOptions>
  slots: Slots
}

/**
 * Pushes one subscription's messages. Dispatchers share nothing but the global slot count, so
 * one slow or dead endpoint holds at most `perSubscription` slots for at most its timeout and
 * never delays another subscription's deliveries.
 */
class Dispatcher {
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
  private readonly acks = new AckBatch((receipts) =>
    ackDeliveries(this.shared.deps.consume, this.sub, this.queue, receipts)
  )

  constructor(
    private readonly shared: Shared,
    private sub: Subscription,
    private readonly queue: Queue
  ) {}

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
    let timer: Timer | undefined
    const late = await Promise.race([
      done.then(() => false),
      new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(true), deadlineMs)
      }),
    ])
    clearTimeout(timer)
    if (late) {
      this.aborter.abort(new Error('worker stopping'))
      await done
    }
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
      // A slot is given back once its request has an answer, before the ack goes out: the ack
      // waits for the one in flight (AckBatch), and holding the slot through that wait too
      // left a subscription barely faster than the bench's 2,000 messages/s. Answered
      // deliveries still settling count as well, up to as many again, so a slow Redis holds
      // back new requests instead of piling up acks.
      const requestRoom = options.perSubscription - this.requests
      const settleRoom = 2 * options.perSubscription - this.inFlight.size
      let room = slots.take(Math.min(requestRoom, settleRoom))
      if (room === 0) {
        await this.sleep(
          requestRoom > 0 && settleRoom <= 0 ? Promise.race(this.inFlight) : slots.freed()
        )
        continue
      }
      try {
        const { deliveries, nextDeadline, read } = await pullOnce(
          deps.consume,
          workerContext(this.sub),
          this.sub,
          this.queue,
          room,
          this.visibilityMs()
        )
        slots.give(room - deliveries.length)
        const asked = room
        room = 0
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
    const answer = () => {
      if (answered) return
      answered = true
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

  /** Our headers win over `handlerConfig.headers`, which win over the message's own. */
  private headers(
    sub: Subscription,
    d: Delivery,
    configured: Record<string, string>,
    body: string
  ): Headers {
    const headers = new Headers()
    for (const source of [d.headers, configured]) {
      for (const [name, value] of Object.entries(source)) {
        if (RESERVED_HEADER.test(name)) continue
        try {
          headers.set(name, value)
        } catch {
          // A name or value HTTP cannot carry (a space, a line break): left out, not fatal.
        }
      }
    }
    const timestamp = Math.floor(Date.now() / 1000)
    headers.set('content-type', 'application/json')
    headers.set('webhook-id', d.messageId)
    headers.set('webhook-timestamp', String(timestamp))
    headers.set(
      'webhook-signature',
      signWebhook(this.signingSecret(), d.messageId, timestamp, body)
    )
    headers.set('x-mq-queue', sub.queue)
    headers.set('x-mq-delivery-count', String(d.deliveryCount))
    if (d.correlationId) headers.set('x-mq-correlation-id', d.correlationId)
    return headers
  }

  /** Calls `answered` once the request is over, whatever its outcome, before settling it. */
  private async deliver(d: Delivery, answered: () => void): Promise<void> {
    const sub = this.sub
    const receipt = this.shared.deps.consume.receipts.decode(sub.tenantId, d.receipt)
    if (!receipt) throw new Error('a receipt of our own did not decode')
    const endpoint = endpointOf(sub, this.shared.options.maxTimeoutMs)
    // One deadline for the whole attempt, resolving the name included.
    const signal = AbortSignal.any([AbortSignal.timeout(endpoint.timeoutMs), this.aborter.signal])
    let outcome: Outcome
    try {
      // Checked again at every attempt: what the name resolves to may have changed.
      const target = await abortable(this.shared.deps.guard.check(endpoint.url), signal)
      const body = JSON.stringify(d.payload)
      const res = await pinnedFetch(
        target,
        {
          method: endpoint.method,
          headers: this.headers(sub, d, endpoint.headers, body),
          body,
          signal,
        },
        this.shared.deps.connect
      )
      // The answer's body is never needed; not reading it keeps a huge one out of memory.
      void res.body?.cancel().catch(() => {})
      outcome = judge(res)
      this.shared.deps.recordAttempt(outcome.kind === 'ack' ? 'success' : 'http_error')
    } catch (err) {
      if (this.aborter.signal.aborted) return
      const timedOut = (err as Error).name === 'TimeoutError'
      this.shared.deps.recordAttempt(
        timedOut ? 'timeout' : err instanceof UnsafeWebhookUrlError ? 'blocked' : 'network_error'
      )
      const reason = timedOut ? `no answer within ${endpoint.timeoutMs} ms` : (err as Error).message
      outcome = { kind: 'retry', reason }
    }
    answered()
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
    })
    // The retry may come due before the loop's current wait ends.
    this.wake()
  }
}

/**
 * Pushes messages of webhook subscriptions (API.md "Subscriptions"; RELIABILITY.md R12, R13,
 * S1, S2). Every `refreshMs` it reads the active webhook subscriptions of all tenants and runs
 * one dispatcher for each: created, resumed and edited subscriptions are picked up, paused
 * and deleted ones stop, within about a second. Many workers may run at once: pulls go through
 * the same atomic script as the pull API, so each message is handed to one of them at a time.
 */
export class WebhookDelivery implements Loop {
  readonly name = 'webhook-delivery'
  private readonly dispatchers = new Map<string, Dispatcher>()
  private readonly retiring = new Set<Promise<void>>()
  private readonly shared: Shared
  private running: Promise<void> | undefined
  private stopping = false
  private wakeStop: (() => void) | undefined

  constructor(deps: WebhookDeliveryDeps, options: WebhookDeliveryOptions) {
    this.shared = {
      deps,
      options: { refreshMs: REFRESH_MS, stopDeadlineMs: STOP_DEADLINE_MS, ...options },
      slots: new Slots(options.maxInFlight),
    }
  }

  start(): void {
    if (this.running) return
    this.stopping = false
    this.running = this.run()
  }

  /** Wake-up callbacks the dispatchers hold: bounded by their count, whatever the traffic. */
  heldWakers(): number {
    let held = 0
    for (const dispatcher of this.dispatchers.values()) held += dispatcher.heldWakers
    return held
  }

  /**
   * Stops reading, lets requests in flight finish and settle within the stop deadline, then
   * closes the dispatchers' connections.
   */
  async stop(): Promise<void> {
    this.stopping = true
    this.wakeStop?.()
    await this.running
    this.running = undefined
    for (const [id, dispatcher] of this.dispatchers) this.retire(id, dispatcher)
    await Promise.all(this.retiring)
  }

  private async run(): Promise<void> {
    const { deps, options } = this.shared
    while (!this.stopping) {
      try {
        await this.refresh()
      } catch (err) {
        // Dispatchers keep running on what they know; the next refresh tries again.
        deps.logger.warn({ err: (err as Error).message }, 'webhook subscriptions not refreshed')
      }
      if (this.stopping) break
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, options.refreshMs)
        this.wakeStop = () => {
          clearTimeout(timer)
          resolve()
        }
      })
    }
  }

  private async refresh(): Promise<void> {
    const { deps } = this.shared
    const active = new Map((await deps.listActiveWebhooks()).map((s) => [s.id, s]))
    if (this.stopping) return
    for (const [id, dispatcher] of this.dispatchers) {
      const sub = active.get(id)
      if (!sub || dispatcher.halted) this.retire(id, dispatcher)
      else dispatcher.update(sub)
    }
    for (const sub of active.values()) {
      if (this.dispatchers.has(sub.id)) continue
      const queue = await deps.consume.queues.get(sub.tenantId, sub.queue)
      // A queue deleted (perhaps recreated under the name) takes its subscriptions with it.
      if (!queue || queue.id !== sub.queueId || this.stopping) continue
      const dispatcher = new Dispatcher(this.shared, sub, queue)
      this.dispatchers.set(sub.id, dispatcher)
      dispatcher.start()
    }
  }

  private retire(id: string, dispatcher: Dispatcher): void {
    this.dispatchers.delete(id)
    const stopped = dispatcher
      .stop(this.shared.options.stopDeadlineMs)
      .catch((err) => this.shared.deps.logger.error({ err }, 'webhook dispatcher did not stop'))
      .finally(() => this.retiring.delete(stopped))
    this.retiring.add(stopped)
  }
}

/**
 * The delivery loop over the process's shared dependencies and configuration.
 * @param overrides replace single dependencies (tests: a stub resolver's guard, a recording
 * connector) and options (a shorter stop deadline).
 */
export function createWebhookDelivery(
  deps: Deps,
  overrides: Partial<WebhookDeliveryDeps> = {},
  options: Partial<WebhookDeliveryOptions> = {}
): WebhookDelivery {
  const repository = new SubscriptionRepository(deps.database.db)
  return new WebhookDelivery(
    {
      consume: deps.consumeDeps,
      subscriptions: deps.subscriptionDeps.subscriptions,
      listActiveWebhooks: () => repository.listActiveWebhooks(),
      signingSecret: (sub) => openSigningSecret(deps.cipher, sub),
      guard: deps.webhookGuard,
      lastIds: (queue) => deps.messages.lastIds(queue),
      waitForEntries: (client, queue, after, timeoutMs, signal) =>
        deps.messages.waitForEntries(client, queue, after, timeoutMs, signal),
      openBlockingConnection: () => createRedis(deps.redisTarget, 'blocking', deps.logger),
      unblock: async (clientId) => Number(await deps.redis.client('UNBLOCK', clientId)),
      recordAttempt: (outcome) => deps.metrics.webhookAttempt(outcome),
      logger: deps.logger,
      ...overrides,
    },
    {
      perSubscription: deps.config.MAX_CONCURRENT_CONSUMERS,
      maxInFlight: Math.max(MAX_IN_FLIGHT, deps.config.MAX_CONCURRENT_CONSUMERS),
      maxTimeoutMs: deps.config.PROCESSING_TIMEOUT_MS,
      ...options,
    }
  )
}
