import type { DeliveryRecord, History, PublishResult } from './oracle'

const B = '/api/v1/mq'

/** An HTTP answer; `status` 0 means none came (refused, reset or timed out). */
export interface Answer {
  status: number
  body: any
  /** How long the request took, ms. */
  ms: number
  error?: string
}

/** Bearer tokens per tenant; a function so the consumer processes can bring their own. */
export type TokenSource = (tenant: string) => Promise<string>

/**
 * A tenant's view of the service over real HTTP. `base` is read at every request, so a test
 * may point its clients at another api instance.
 */
export class MqClient {
  private readonly tokens = new Map<string, Promise<string>>()
  /** Sees every answer (or its absence), for tests that count status codes. */
  observe?: (method: string, path: string, answer: Answer) => void

  constructor(
    private readonly base: () => string,
    private readonly tokenFor: TokenSource
  ) {}

  async call(
    tenant: string,
    method: string,
    path: string,
    body?: unknown,
    opts: { timeoutMs?: number; signal?: AbortSignal } = {}
  ): Promise<Answer> {
    let token = this.tokens.get(tenant)
    if (!token) {
      token = this.tokenFor(tenant)
      this.tokens.set(tenant, token)
    }
    const headers: Record<string, string> = { authorization: `Bearer ${await token}` }
    if (body !== undefined) headers['content-type'] = 'application/json'
    const timeout = AbortSignal.timeout(opts.timeoutMs ?? 10_000)
    const start = performance.now()
    try {
      const res = await fetch(`${this.base()}${B}${path}`, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: opts.signal ? AbortSignal.any([timeout, opts.signal]) : timeout,
      })
      const text = await res.text()
      let parsed: unknown = text
      try {
        parsed = text ? JSON.parse(text) : null
      } catch {}
      return this.seen(method, path, {
        status: res.status,
        body: parsed,
        ms: performance.now() - start,
      })
    } catch (err) {
      return this.seen(method, path, {
        status: 0,
        body: null,
        ms: performance.now() - start,
        error: (err as Error).name,
      })
    }
  }

  private seen(method: string, path: string, answer: Answer): Answer {
    this.observe?.(method, path, answer)
    return answer
  }

  /** Like {@link call}, but anything other than `expected` is an error (for set-up steps). */
  async must(
    tenant: string,
    method: string,
    path: string,
    body: unknown,
    expected: number
  ): Promise<any> {
    const answer = await this.call(tenant, method, path, body)
    if (answer.status !== expected) {
      throw new Error(
        `${method} ${path}: ${answer.status} ${answer.error ?? JSON.stringify(answer.body)}`
      )
    }
    return answer.body
  }
}

/** Creates a queue and a pull subscription on it reading from the start; @returns its id. */
export async function queueWithSubscription(
  client: MqClient,
  tenant: string,
  queue: Record<string, unknown> & { name: string },
  subscription: Record<string, unknown> = {}
): Promise<string> {
  await client.must(tenant, 'POST', '/queues', queue, 201)
  const sub = await client.must(
    tenant,
    'POST',
    '/subscriptions',
    {
      queue: queue.name,
      consumerGroup: 'workers',
      consumerName: 'worker',
      subscriptionType: 'redis_consumer',
      offsetResetPolicy: 'earliest',
      ...subscription,
    },
    201
  )
  return sub.id
}

/** One message a producer sends; the payload always carries its id, so a consumer can check it. */
export interface Outgoing {
  tenant: string
  queue: string
  messageId: string
  /** Further fields of the publish body (`delayMs`, `key`, …). */
  extra?: Record<string, unknown>
}

export interface PublishOptions {
  /** Per request. */
  timeoutMs?: number
  /** Keep retrying unknown outcomes until then (ms since the epoch). */
  retryUntil?: number
  /** How many 429 answers to take before giving the message up as failed. */
  maxFullAttempts?: number
  /** Called with every answer, for tests that look at status codes and latencies. */
  onAnswer?(answer: Answer, started: number): void
}

/**
 * Publishes one message with its `messageId` as the idempotency key, retrying what may not
 * have been stored: 2xx is `ok`; 429 is `fail` (nothing stored), retried a few times; no
 * answer or a 5xx is `unknown` (the write may have happened) and retried until `retryUntil`.
 * Every attempt goes into `history`. @returns the folded result.
 */
export async function publish(
  client: MqClient,
  history: History,
  msg: Outgoing,
  opts: PublishOptions = {}
): Promise<PublishResult> {
  const retryUntil = opts.retryUntil ?? Date.now() + 60_000
  let fullAttempts = 0
  let backoff = 50
  for (;;) {
    const started = Date.now()
    const answer = await client.call(
      msg.tenant,
      'POST',
      '/publish',
      { queue: msg.queue, messageId: msg.messageId, payload: { id: msg.messageId }, ...msg.extra },
      { timeoutMs: opts.timeoutMs ?? 5000 }
    )
    opts.onAnswer?.(answer, started)
    if (answer.status === 200 || answer.status === 201) {
      history.attempt(msg.messageId, msg.tenant, msg.queue, 'ok')
      return 'ok'
    }
    if (answer.status === 429) {
      history.attempt(msg.messageId, msg.tenant, msg.queue, 'fail')
      if (++fullAttempts >= (opts.maxFullAttempts ?? 1)) return 'fail'
      await Bun.sleep(100 + Math.random() * 200)
      continue
    }
    if (answer.status !== 0 && answer.status < 500) {
      history.attempt(msg.messageId, msg.tenant, msg.queue, 'fail')
      throw new Error(`publish ${msg.messageId}: ${answer.status} ${JSON.stringify(answer.body)}`)
    }
    history.attempt(msg.messageId, msg.tenant, msg.queue, 'unknown')
    if (Date.now() > retryUntil) return 'unknown'
    await Bun.sleep(backoff)
    backoff = Math.min(backoff * 2, 1000)
  }
}

/**
 * Publishes `messages` with `concurrency` producers in parallel. @returns when all are done,
 * or when `shouldStop()` says so (what was not started yet is not published).
 */
export async function produce(
  client: MqClient,
  history: History,
  messages: Iterable<Outgoing>,
  opts: PublishOptions & { concurrency: number; shouldStop?: () => boolean; pauseMs?: number }
): Promise<void> {
  const source = messages[Symbol.iterator]()
  await Promise.all(
    Array.from({ length: opts.concurrency }, async () => {
      for (;;) {
        if (opts.shouldStop?.()) return
        const next = source.next()
        if (next.done) return
        await publish(client, history, next.value, opts)
        if (opts.pauseMs) await Bun.sleep(opts.pauseMs)
      }
    })
  )
}

/** A delivery as the pull API returns it (API.md "A delivery"). */
export interface PulledMessage {
  receipt: string
  messageId: string
  payload: unknown
  deliveryCount: number
  partition: number
  headers: Record<string, string>
}

/** What a consumer's handler decides for one message. */
export type Verdict = 'ack' | 'nack'

export interface ConsumerOptions {
  client: MqClient
  tenant: string
  subscriptionId: string
  /** Recorded with every delivery. */
  name: string
  /** Called for every delivery as it arrives, before it is handled. */
  onDelivery(record: DeliveryRecord, message: PulledMessage): void
  /** Called with the ids a settle request acknowledged or gave back. */
  onSettled?(messageIds: string[], verdict: Verdict): void
  max?: number
  waitMs?: number
  visibilityTimeoutMs?: number
  /** Handler time per message, ms, drawn uniformly from [min, max]. */
  processingMs?: [number, number]
  /** The verdict per message (default: ack). A nack waits the subscription's retry backoff. */
  handle?(message: PulledMessage): Verdict
  /** How long a failed ack or nack is retried before the message is left to time out. */
  settleRetryMs?: number
}

/**
 * A pull consumer: long polls, records each delivery, "handles" it (sleeps), then acks or
 * nacks, retrying a settle that got no answer (the receipt stays valid until the message
 * times out). Tests that kill consumers run it in a process of its own
 * (tests/chaos/consumer-process.ts).
 */
export class Consumer {
  /** When a pull last answered 200, ms since the epoch. */
  lastPullOkAt = 0
  /** Every pull: when it started and how long it took (ms), for tests that bound them. */
  readonly pulls: Array<{ at: number; ms: number; status: number }> = []
  private stopped = false
  private loop: Promise<void> | undefined
  private gate: Promise<void> | undefined
  private openGate: (() => void) | undefined
  private busy = false

  constructor(private readonly opts: ConsumerOptions) {}

  get name(): string {
    return this.opts.name
  }

  start(): this {
    this.loop = this.run()
    return this
  }

  private async run(): Promise<void> {
    const { client, tenant, subscriptionId } = this.opts
    const waitMs = this.opts.waitMs ?? 2000
    while (!this.stopped) {
      if (this.gate) await this.gate
      if (this.stopped) break
      this.busy = true
      try {
        const answer = await client.call(
          tenant,
          'POST',
          `/subscriptions/${subscriptionId}/pull`,
          {
            max: this.opts.max ?? 10,
            waitMs,
            ...(this.opts.visibilityTimeoutMs
              ? { visibilityTimeoutMs: this.opts.visibilityTimeoutMs }
              : {}),
          },
          { timeoutMs: waitMs + 10_000 }
        )
        this.pulls.push({ at: Date.now() - answer.ms, ms: answer.ms, status: answer.status })
        if (answer.status !== 200) {
          await Bun.sleep(200)
          continue
        }
        this.lastPullOkAt = Date.now()
        const messages = answer.body.messages as PulledMessage[]
        if (messages.length === 0) continue
        const now = Date.now()
        for (const m of messages) {
          this.opts.onDelivery(
            {
              messageId: m.messageId,
              deliveryCount: m.deliveryCount,
              consumer: this.opts.name,
              ts: now,
              intact: (m.payload as { id?: unknown } | null)?.id === m.messageId,
            },
            m
          )
        }
        const [min, max] = this.opts.processingMs ?? [0, 0]
        if (max > 0) await Bun.sleep(min + Math.random() * (max - min))
        const verdicts = messages.map((m) => this.opts.handle?.(m) ?? 'ack')
        await Promise.all([
          this.settle(
            messages.filter((_, i) => verdicts[i] === 'ack'),
            'ack'
          ),
          this.settle(
            messages.filter((_, i) => verdicts[i] === 'nack'),
            'nack'
          ),
        ])
      } finally {
        this.busy = false
      }
    }
  }

  private async settle(messages: PulledMessage[], verdict: Verdict): Promise<void> {
    if (messages.length === 0) return
    const giveUp = Date.now() + (this.opts.settleRetryMs ?? 20_000)
    const body = { receipts: messages.map((m) => m.receipt) }
    for (;;) {
      const answer = await this.opts.client.call(
        this.opts.tenant,
        'POST',
        `/subscriptions/${this.opts.subscriptionId}/${verdict}`,
        body
      )
      if (answer.status === 200) {
        this.opts.onSettled?.(
          messages.map((m) => m.messageId),
          verdict
        )
        return
      }
      if (Date.now() > giveUp) return
      await Bun.sleep(200)
    }
  }

  /** Stops pulling; whatever it holds is still handled and settled. */
  async stop(): Promise<void> {
    this.stopped = true
    this.openGate?.()
    await this.loop
  }

  /** Holds the consumer before its next pull; @returns once nothing is in flight. */
  async pause(): Promise<void> {
    if (!this.gate) this.gate = new Promise((resolve) => (this.openGate = resolve))
    while (this.busy) await Bun.sleep(5)
  }

  resume(): void {
    this.gate = undefined
    this.openGate?.()
  }
}

/** A subscription a drain must empty. */
export interface DrainTarget {
  tenant: string
  queue: string
  subscriptionId: string
}

/**
 * Consumes until every subscription has nothing pending or unread and its queue nothing
 * scheduled, then reads their dead-letter queues into the history. Throws when that takes
 * longer than `timeoutMs`: a drain that never completes is itself a failure (a message
 * stuck somewhere). @returns how long the drain took, ms.
 */
export async function drain(
  client: MqClient,
  history: History,
  targets: DrainTarget[],
  opts: Partial<ConsumerOptions> & { timeoutMs?: number } = {}
): Promise<number> {
  const started = Date.now()
  const consumers = targets.map((t) =>
    new Consumer({
      client,
      tenant: t.tenant,
      subscriptionId: t.subscriptionId,
      name: 'drain',
      waitMs: 500,
      max: 100,
      onDelivery: (record) => history.deliver(record),
      ...opts,
    }).start()
  )
  try {
    const deadline = started + (opts.timeoutMs ?? 60_000)
    let quiet = 0
    while (quiet < 2) {
      if (Date.now() > deadline) {
        const left = await Promise.all(targets.map((t) => leftovers(client, t)))
        throw new Error(`drain did not finish: ${JSON.stringify(left)}`)
      }
      await Bun.sleep(300)
      const left = await Promise.all(targets.map((t) => leftovers(client, t)))
      quiet = left.every((l) => l !== null && l.pending + l.lag + l.scheduled === 0) ? quiet + 1 : 0
    }
  } finally {
    await Promise.all(consumers.map((c) => c.stop()))
  }
  await readDeadLetters(client, history, targets)
  return Date.now() - started
}

/** What a subscription still has to give: pending, unread and scheduled; null when unknown. */
async function leftovers(
  client: MqClient,
  t: DrainTarget
): Promise<{ pending: number; lag: number; scheduled: number } | null> {
  const [sub, queue] = await Promise.all([
    client.call(t.tenant, 'GET', `/subscriptions/${t.subscriptionId}`),
    client.call(t.tenant, 'GET', `/queues/${t.queue}`),
  ])
  if (sub.status !== 200 || queue.status !== 200) return null
  return {
    pending: sub.body.stats.pending,
    lag: sub.body.stats.lag,
    scheduled: queue.body.stats.scheduled,
  }
}

/** Adds every message of the targets' dead-letter queues (`<queue>.dlq`) to the history. */
export async function readDeadLetters(
  client: MqClient,
  history: History,
  targets: DrainTarget[]
): Promise<void> {
  const seen = new Set<string>()
  for (const t of targets) {
    const dlq = `${t.queue}.dlq`
    if (seen.has(`${t.tenant}/${dlq}`)) continue
    seen.add(`${t.tenant}/${dlq}`)
    let cursor: string | null = null
    do {
      const query: string = cursor ? `&from=${encodeURIComponent(cursor)}` : ''
      const page = await client.call(t.tenant, 'GET', `/queues/${dlq}/messages?limit=1000${query}`)
      if (page.status === 404) break
      if (page.status !== 200) throw new Error(`peek ${dlq}: ${page.status}`)
      for (const m of page.body.items as Array<{ messageId: string }>)
        history.deadLetter(m.messageId)
      cursor = page.body.nextCursor
    } while (cursor)
  }
}

/** Waits until `condition()` holds, polling; throws with `what` after `timeoutMs`. */
export async function until(
  condition: () => boolean | Promise<boolean>,
  what: string,
  timeoutMs = 30_000,
  everyMs = 50
): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await Bun.sleep(everyMs)
  }
}
