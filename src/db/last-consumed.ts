import type { MessageMetrics } from '../domain/metrics'
import type { Logger } from '../observability/logger'

/** How often the times seen are written; `lastConsumedAt` may lag by this much. */
const FLUSH_EVERY_MS = 5000

export interface LastConsumedStore {
  recordConsumed(seen: ReadonlyArray<{ tenantId: string; id: string; at: Date }>): Promise<void>
  lastConsumedAt(tenantId: string, id: string): Promise<Date | null>
}

/**
 * Each subscription's `lastConsumedAt` (its latest delivery or ack), kept in memory as pulls,
 * pushes and acks happen and written to PostgreSQL in one statement every few seconds, so the
 * data plane never waits on PostgreSQL for it. A write that fails keeps its times for the next
 * one (a later time for the same subscription supersedes them); what a crash loses is a few
 * seconds of a timestamp, never a message.
 */
export class LastConsumed {
  /** subscription id -> its tenant and latest time (ms), not yet written. */
  private pending = new Map<string, { tenantId: string; at: number }>()
  private timer: Timer | undefined
  private writing: Promise<void> = Promise.resolve()
  private lastWarnAt = 0

  constructor(
    private readonly deps: {
      store: LastConsumedStore
      logger: Logger
      flushEveryMs?: number
    }
  ) {}

  /** Notes that `sub` had a message delivered or acked at `at` (ms). Synchronous and cheap. */
  seen(sub: { id: string; tenantId: string }, at = Date.now()): void {
    const known = this.pending.get(sub.id)
    if (known === undefined || known.at < at)
      this.pending.set(sub.id, { tenantId: sub.tenantId, at })
  }

  /** Starts writing every few seconds (the timer does not keep the process alive). */
  start(): void {
    this.timer ??= setInterval(() => void this.flush(), this.deps.flushEveryMs ?? FLUSH_EVERY_MS)
    this.timer.unref()
  }

  /** Stops the timer and writes what is still pending. */
  async close(): Promise<void> {
    clearInterval(this.timer)
    this.timer = undefined
    await this.flush()
  }

  /** Writes what was seen so far; resolves when this and every earlier write is done. */
  flush(): Promise<void> {
    const batch = this.pending
    this.pending = new Map()
    if (batch.size === 0) return this.writing
    const seen = [...batch].map(([id, s]) => ({ id, tenantId: s.tenantId, at: new Date(s.at) }))
    const write = this.deps.store.recordConsumed(seen).catch((err) => {
      for (const s of seen) this.seen(s, s.at.getTime())
      this.warn(err)
    })
    this.writing = Promise.all([this.writing, write]).then(() => undefined)
    return this.writing
  }

  /** The subscription's `lastConsumedAt`: as written, or this process's newer one not yet written. */
  async read(tenantId: string, id: string): Promise<Date | null> {
    const stored = await this.deps.store.lastConsumedAt(tenantId, id)
    const local = this.pending.get(id)
    if (local === undefined || local.tenantId !== tenantId) return stored
    return stored !== null && stored.getTime() >= local.at ? stored : new Date(local.at)
  }

  private warn(err: unknown): void {
    // During an outage this fails at every flush; once a minute in the log says enough.
    if (Date.now() - this.lastWarnAt < 60_000) return
    this.lastWarnAt = Date.now()
    // The SQLSTATE only: a driver's message may repeat the statement's values.
    const code = (err as { code?: unknown }).code
    this.deps.logger.warn(
      { code: typeof code === 'string' ? code : null },
      'lastConsumedAt not written'
    )
  }
}

/** `metrics`, also noting each delivery and ack in `last` (consumption reports both to it). */
export function noteConsumption(metrics: MessageMetrics, last: LastConsumed): MessageMetrics {
  return {
    published: (queue, counts) => metrics.published(queue, counts),
    delivered: (sub, entries, now) => {
      metrics.delivered(sub, entries, now)
      if (entries.length > 0) last.seen(sub, now)
    },
    acked: (sub, n, processingMs) => {
      metrics.acked(sub, n, processingMs)
      if (n > 0) last.seen(sub)
    },
    nacked: (sub, n) => metrics.nacked(sub, n),
    deadLettered: (sub, n) => metrics.deadLettered(sub, n),
  }
}
