import type { Keys } from '../streams/keys'
import type { RedisClient } from '../streams/redis'
import type { Logger } from './logger'

/**
 * Upper bounds (ms) of the publish-to-delivery latency buckets; one more, open bucket follows.
 * Steps of about 1.5x keep a percentile read from them within a third of the true value.
 */
export const LATENCY_BOUNDS_MS = [
  1, 2, 3, 5, 7, 10, 15, 20, 30, 50, 75, 100, 150, 200, 300, 500, 750, 1000, 1500, 2000, 3000, 5000,
  7500, 10_000, 15_000, 30_000, 60_000, 120_000, 300_000,
] as const

/** The JSON metrics' rates are per second over this many seconds. */
export const WINDOW_SECONDS = 60

/** How long a tenant's last-ack times are kept after its last acknowledgement. */
const LAST_ACK_TTL_S = 7 * 86_400

/** What one tenant's message flow added up to over the last {@link WINDOW_SECONDS}. */
export interface FlowTotals {
  /** Messages accepted (published or scheduled, not duplicates), by queue name. */
  published: Map<string, number>
  /** Deliveries handed out, by subscription id. */
  delivered: Map<string, number>
  acked: Map<string, number>
  /** Redeliveries and dead letters, by subscription id. */
  failed: Map<string, number>
  /** Summed delivery-to-ack time of the acknowledged deliveries, by subscription id. */
  processingMs: Map<string, number>
  /** First deliveries per latency bucket ({@link LATENCY_BOUNDS_MS} plus the open one). */
  latencyBuckets: number[]
  latencySumMs: number
}

/** The per-id counters of {@link FlowTotals}, each stored under a field prefix. */
export type FlowCounter = 'published' | 'delivered' | 'acked' | 'failed' | 'processingMs'

const FIELD_PREFIX: Record<FlowCounter, string> = {
  published: 'p:',
  delivered: 'd:',
  acked: 'a:',
  failed: 'f:',
  processingMs: 'pm:',
}
const LATENCY_SUM_FIELD = 'ls'
const latencyField = (bucket: number) => `l:${bucket}`

/** The bucket of a latency: the first bound at or above it, else the open one. */
export function latencyBucket(ms: number): number {
  const i = LATENCY_BOUNDS_MS.findIndex((bound) => ms <= bound)
  return i === -1 ? LATENCY_BOUNDS_MS.length : i
}

/**
 * The `q` quantile (0..1) of latencies counted in buckets, interpolated linearly inside its
 * bucket as Prometheus' histogram_quantile does; the open bucket answers its lower bound.
 * @returns null when nothing was counted.
 */
export function latencyQuantile(buckets: readonly number[], q: number): number | null {
  const total = buckets.reduce((a, b) => a + b, 0)
  if (total === 0) return null
  const rank = q * total
  let below = 0
  for (let i = 0; i < buckets.length; i++) {
    const count = buckets[i] ?? 0
    if (count > 0 && below + count >= rank) {
      const lower = i === 0 ? 0 : LATENCY_BOUNDS_MS[i - 1]!
      const upper = LATENCY_BOUNDS_MS[i]
      if (upper === undefined) return lower
      return lower + ((upper - lower) * (rank - below)) / count
    }
    below += count
  }
  return LATENCY_BOUNDS_MS.at(-1)!
}

const emptyTotals = (): FlowTotals => ({
  published: new Map(),
  delivered: new Map(),
  acked: new Map(),
  failed: new Map(),
  processingMs: new Map(),
  latencyBuckets: new Array(LATENCY_BOUNDS_MS.length + 1).fill(0),
  latencySumMs: 0,
})

const bump = <K>(map: Map<K, number>, key: K, n: number) => map.set(key, (map.get(key) ?? 0) + n)

function entry<K, V>(map: Map<K, V>, key: K, make: () => V): V {
  let value = map.get(key)
  if (value === undefined) {
    value = make()
    map.set(key, value)
  }
  return value
}

/** Adds one second's hash (HGETALL reply) to `totals`. */
function addFields(totals: FlowTotals, fields: Record<string, string>): void {
  for (const [field, raw] of Object.entries(fields)) {
    const n = Number(raw)
    if (field === LATENCY_SUM_FIELD) {
      totals.latencySumMs += n
      continue
    }
    if (field.startsWith('l:')) {
      const bucket = Number(field.slice(2))
      totals.latencyBuckets[bucket] = (totals.latencyBuckets[bucket] ?? 0) + n
      continue
    }
    for (const [counter, prefix] of Object.entries(FIELD_PREFIX) as Array<[FlowCounter, string]>) {
      if (field.startsWith(prefix)) {
        bump(totals[counter], field.slice(prefix.length), n)
        break
      }
    }
  }
}

/**
 * Per-second message flow counters of each tenant, kept in Redis so every api and worker
 * process adds to the same figures and the rates of the JSON metrics are the service's, not
 * one process's. Counting is in memory and costs the hot path nothing; a timer adds each
 * second's counts to a short-lived hash per tenant and second (HINCRBY, so processes add up),
 * and a read sums the last minute of hashes. A flush that fails (Redis down) drops its counts:
 * these are rates for a dashboard, not a ledger.
 */
export class FlowWindow {
  /** tenant -> second -> field -> count, not yet in Redis. */
  private pending = new Map<string, Map<number, Map<string, number>>>()
  /** tenant -> subscription id -> time of its latest ack (ms), not yet in Redis. */
  private lastAcks = new Map<string, Map<string, number>>()
  private inflight: Promise<void> = Promise.resolve()
  private timer: Timer | undefined
  private lastWarnAt = 0

  constructor(
    private readonly deps: {
      redis: RedisClient
      keys: Keys
      logger: Logger
      flushEveryMs?: number
    }
  ) {}

  /** Starts flushing every second (the timer does not keep the process alive). */
  start(): void {
    this.timer ??= setInterval(() => void this.flush(), this.deps.flushEveryMs ?? 1000)
    this.timer.unref()
  }

  /** Stops the timer and writes what is still counted. */
  async close(): Promise<void> {
    clearInterval(this.timer)
    this.timer = undefined
    await this.flush()
  }

  private add(tenantId: string, field: string, n: number, at: number): void {
    if (n <= 0) return
    const seconds = entry(this.pending, tenantId, () => new Map<number, Map<string, number>>())
    bump(
      entry(seconds, Math.floor(at / 1000), () => new Map<string, number>()),
      field,
      n
    )
  }

  /** Adds `n` to one tenant's counter of `id` (a queue name or a subscription id). */
  count(tenantId: string, counter: FlowCounter, id: string, n: number, at = Date.now()): void {
    this.add(tenantId, `${FIELD_PREFIX[counter]}${id}`, n, at)
  }

  /** Counts one first delivery's publish-to-delivery latency. */
  latency(tenantId: string, ms: number, at = Date.now()): void {
    const clamped = Math.max(0, Math.round(ms))
    this.add(tenantId, latencyField(latencyBucket(clamped)), 1, at)
    this.add(tenantId, LATENCY_SUM_FIELD, clamped, at)
  }

  /** Notes that a subscription acknowledged something at `at`. */
  ackedAt(tenantId: string, subscriptionId: string, at = Date.now()): void {
    const subs = entry(this.lastAcks, tenantId, () => new Map<string, number>())
    subs.set(subscriptionId, Math.max(at, subs.get(subscriptionId) ?? 0))
  }

  /**
   * Writes everything counted so far. Resolves once this and every earlier flush is done, so
   * a read after it sees this process's counts.
   */
  flush(): Promise<void> {
    const pending = this.pending
    const lastAcks = this.lastAcks
    this.pending = new Map()
    this.lastAcks = new Map()
    const tenants = new Set([...pending.keys(), ...lastAcks.keys()])
    const sending = Promise.all(
      [...tenants].map((t) => this.write(t, pending.get(t), lastAcks.get(t)))
    ).then(
      () => undefined,
      (err) => this.warn(err)
    )
    this.inflight = Promise.all([this.inflight, sending]).then(() => undefined)
    return this.inflight
  }

  private async write(
    tenantId: string,
    seconds: Map<number, Map<string, number>> | undefined,
    lastAcks: Map<string, number> | undefined
  ): Promise<void> {
    // One pipeline per tenant: its keys share one hash tag, which a cluster needs.
    const pipeline = this.deps.redis.pipeline()
    for (const [second, fields] of seconds ?? []) {
      const key = this.deps.keys.tenantFlow(tenantId, second)
      for (const [field, n] of fields) pipeline.hincrby(key, field, n)
      pipeline.expire(key, WINDOW_SECONDS * 2)
    }
    if (lastAcks && lastAcks.size > 0) {
      const key = this.deps.keys.tenantLastAck(tenantId)
      // GT: a process flushing an older time after a newer one was written changes nothing.
      pipeline.zadd(key, 'GT', ...[...lastAcks].flatMap(([sub, at]) => [at, sub]))
      pipeline.expire(key, LAST_ACK_TTL_S)
    }
    const failed = ((await pipeline.exec()) ?? []).find(([err]) => err)
    if (failed) throw failed[0]
  }

  private warn(err: unknown): void {
    // During an outage this fails every second; once a minute in the log says enough.
    if (Date.now() - this.lastWarnAt < 60_000) return
    this.lastWarnAt = Date.now()
    this.deps.logger.warn({ err: (err as Error).message }, 'message flow counters not written')
  }

  /**
   * Sums one tenant's flow over the last {@link WINDOW_SECONDS}, this second included, after
   * writing this process's own counts.
   */
  async read(tenantId: string, now = Date.now()): Promise<FlowTotals> {
    await this.flush()
    const last = Math.floor(now / 1000)
    const pipeline = this.deps.redis.pipeline()
    for (let s = last - WINDOW_SECONDS + 1; s <= last; s++) {
      pipeline.hgetall(this.deps.keys.tenantFlow(tenantId, s))
    }
    const totals = emptyTotals()
    for (const [err, fields] of (await pipeline.exec()) ?? []) {
      if (err) throw err
      addFields(totals, fields as Record<string, string>)
    }
    return totals
  }

  /** When each of `subscriptionIds` of a tenant last acknowledged something, if it has. */
  async lastAckTimes(tenantId: string, subscriptionIds: string[]): Promise<Map<string, Date>> {
    const out = new Map<string, Date>()
    if (subscriptionIds.length === 0) return out
    await this.flush()
    const scores = await this.deps.redis.zmscore(
      this.deps.keys.tenantLastAck(tenantId),
      ...subscriptionIds
    )
    subscriptionIds.forEach((id, i) => {
      const score = scores[i]
      if (score !== null && score !== undefined) out.set(id, new Date(Number(score)))
    })
    return out
  }
}
