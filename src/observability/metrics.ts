import {
  Counter,
  collectDefaultMetrics,
  Gauge,
  Histogram,
  type Metric,
  type MetricValue,
  Registry,
} from 'prom-client'
import type { DeliveredEntry, MessageMetrics, PublishCounts } from '../domain/metrics'
import type { ThrottleReason } from '../domain/ports'
import type { Queue } from '../domain/queues'
import type { Subscription } from '../domain/subscriptions'
import type { FlowWindow } from './flow-window'
import type { Logger } from './logger'

/**
 * What one webhook push attempt came to, the label of `mq_webhook_attempts_total`:
 * `success` a 2xx; `http_error` any other status (3xx included: redirects are not followed);
 * `timeout` no answer within the subscription's `timeoutMs`; `network_error` refused, reset
 * or unresolvable; `blocked` the URL resolved to an address the SSRF guard refuses.
 */
export type WebhookOutcome = 'success' | 'http_error' | 'timeout' | 'network_error' | 'blocked'

/** Live figures of one queue, read from Redis when Prometheus scrapes. */
export interface QueueLoad {
  tenantId: string
  queue: string
  length: number
  pending: number
  lag: number
  /** Entries trimmed before the ledger read them, since the queue began. */
  ledgerGap: number
}

/** At most this many queues get lag, pending and length series (their labels stay bounded). */
export const MAX_SCRAPED_QUEUES = 500

const HTTP_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']
const METHOD_INDEX = new Map(HTTP_METHODS.map((m, i) => [m, i]))

/** Seconds; from a local round trip to a slow long poll (pulls wait up to 20 s). */
export const HTTP_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30]
/** Seconds; from a consumer waiting on the stream to one that is minutes behind. */
const LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300]
/** Seconds; the ticker runs every second, so most promotions are under one. */
const LATENESS_BUCKETS = [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300]

const PUBLISH_OUTCOMES = ['published', 'scheduled', 'duplicate'] as const

/** When a stream entry was added: the milliseconds part of its id. */
const entryTime = (streamId: string) => Number(streamId.slice(0, streamId.indexOf('-')))

/** One method, route and status of the HTTP series. */
interface HttpCell {
  readonly labels: { method: string; route: string; status: string }
  count: number
  sum: number
  /** Observations by the first bucket bound they are under (not cumulative). */
  readonly buckets: number[]
}

/**
 * `mq_http_requests_total` and `mq_http_request_duration_seconds`, kept per label set in a cell
 * found by route, then status and method, and put in prom-client's form when scraped. Through
 * prom-client's own Counter and Histogram every request built and validated a label object and
 * joined the labels into a string to find its series, twice: as much as the rest of the
 * request's observation and log line. The text exposition is the same.
 */
class HttpSeries {
  private readonly cells = new Map<string, Map<number, HttpCell>>()
  /** The same cells in the order they were first seen, the order prom-client would show. */
  private readonly ordered: HttpCell[] = []

  observe(method: string, route: string, status: number, seconds: number): void {
    const methodIndex = METHOD_INDEX.get(method) ?? HTTP_METHODS.length
    let byStatus = this.cells.get(route)
    if (byStatus === undefined) {
      byStatus = new Map()
      this.cells.set(route, byStatus)
    }
    const key = status * 8 + methodIndex
    let cell = byStatus.get(key)
    if (cell === undefined) {
      cell = {
        labels: { method: HTTP_METHODS[methodIndex] ?? 'OTHER', route, status: String(status) },
        count: 0,
        sum: 0,
        buckets: HTTP_BUCKETS.map(() => 0),
      }
      byStatus.set(key, cell)
      this.ordered.push(cell)
    }
    cell.count++
    cell.sum += seconds
    const bucket = HTTP_BUCKETS.findIndex((bound) => seconds <= bound)
    if (bucket >= 0) cell.buckets[bucket] = (cell.buckets[bucket] ?? 0) + 1
  }

  private reset(): void {
    this.cells.clear()
    this.ordered.length = 0
  }

  /** The two series as prom-client metrics, for a registry. */
  metrics(): Metric[] {
    const counter = {
      name: 'mq_http_requests_total',
      help: 'HTTP requests by method, route pattern and status',
      type: 'counter',
      aggregator: 'sum',
      get: async () => {
        const values: Array<MetricValue<string>> = []
        for (const c of this.ordered) values.push({ labels: c.labels, value: c.count })
        return { name: counter.name, help: counter.help, type: counter.type, values }
      },
      reset: () => this.reset(),
    }
    const histogram = {
      name: 'mq_http_request_duration_seconds',
      help: 'HTTP request duration by method, route pattern and status',
      type: 'histogram',
      aggregator: 'sum',
      get: async () => {
        const values: Array<MetricValue<string> & { metricName: string }> = []
        for (const c of this.ordered) {
          let below = 0
          HTTP_BUCKETS.forEach((le, i) => {
            below += c.buckets[i] ?? 0
            values.push({
              labels: { le, ...c.labels },
              value: below,
              metricName: `${histogram.name}_bucket`,
            })
          })
          values.push(
            {
              labels: { le: '+Inf', ...c.labels },
              value: c.count,
              metricName: `${histogram.name}_bucket`,
            },
            { labels: c.labels, value: c.sum, metricName: `${histogram.name}_sum` },
            { labels: c.labels, value: c.count, metricName: `${histogram.name}_count` }
          )
        }
        return { name: histogram.name, help: histogram.help, type: histogram.type, values }
      },
      reset: () => this.reset(),
    }
    return [counter, histogram] as unknown as Metric[]
  }
}

/**
 * The process's metrics: one prom-client registry (default process metrics plus the `mq_`
 * series) and the message flow counters behind the JSON metrics. Built once per process in
 * `buildDeps`, so the api and worker roles of one process count into the same series once.
 * It is the domain's {@link MessageMetrics}; the ticker reports promotions through
 * {@link Metrics.delayLateness} and the webhook worker attempts through
 * {@link Metrics.webhookAttempt}.
 */
export class Metrics implements MessageMetrics {
  readonly registry = new Registry()

  private readonly http = new HttpSeries()
  /**
   * Publish outcomes not yet added to `mq_messages_published_total`: they are added when it is
   * scraped, as prom-client's inc built and hashed a label object on every publish.
   */
  private readonly unpublished: PublishCounts = { published: 0, scheduled: 0, duplicate: 0 }
  private readonly publishedTotal = new Counter({
    name: 'mq_messages_published_total',
    help: 'Messages accepted by publish calls, by outcome: published, scheduled or duplicate',
    labelNames: ['outcome'] as const,
    registers: [this.registry],
    collect: () => {
      for (const outcome of PUBLISH_OUTCOMES) {
        const n = this.unpublished[outcome]
        if (n > 0) this.publishedTotal.inc({ outcome }, n)
        this.unpublished[outcome] = 0
      }
    },
  })
  private readonly deliveredTotal = new Counter({
    name: 'mq_messages_delivered_total',
    help: 'Deliveries handed to consumers (pulled or pushed), by attempt: first or redelivery',
    labelNames: ['attempt'] as const,
    registers: [this.registry],
  })
  private readonly ackedTotal = new Counter({
    name: 'mq_messages_acked_total',
    help: 'Deliveries acknowledged',
    registers: [this.registry],
  })
  private readonly nackedTotal = new Counter({
    name: 'mq_messages_nacked_total',
    help: 'Deliveries given back to be delivered again',
    registers: [this.registry],
  })
  private readonly deadLetteredTotal = new Counter({
    name: 'mq_messages_dead_lettered_total',
    help: 'Messages moved to a dead-letter queue after their last attempt',
    registers: [this.registry],
  })
  private readonly publishToDelivery = new Histogram({
    name: 'mq_publish_to_delivery_seconds',
    help: 'From a message becoming deliverable (published, or promoted when delayed) to its first delivery',
    buckets: LATENCY_BUCKETS,
    registers: [this.registry],
  })
  private readonly lateness = new Histogram({
    name: 'mq_delay_lateness_seconds',
    help: 'How long after its due time a delayed message was promoted to its stream',
    buckets: LATENESS_BUCKETS,
    registers: [this.registry],
  })
  private readonly webhookAttempts = new Counter({
    name: 'mq_webhook_attempts_total',
    help: 'Webhook push attempts by outcome',
    labelNames: ['outcome'] as const,
    registers: [this.registry],
  })

  private readonly webhookThrottles = new Counter({
    name: 'mq_webhook_throttled_total',
    help: 'Waits of webhook deliveries for a permit (rate, parallelism or a receiver pause)',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  })

  private readonly maintenanceFailures = new Counter({
    name: 'mq_maintenance_failures_total',
    help: "Work a worker sweep could not do and went past, by task: trim (a partition), delayed (a partition's registry repair) or removed (re-deleting deleted queues' keys)",
    labelNames: ['task'] as const,
    registers: [this.registry],
  })

  private readonly ledgerRefusals = new Counter({
    name: 'mq_ledger_refused_rows_total',
    help: 'Ledger rows PostgreSQL refused and the writer left out (each logged with its ids), by SQLSTATE or driver code',
    labelNames: ['sqlstate'] as const,
    registers: [this.registry],
  })

  private loading: Promise<QueueLoad[]> | undefined

  constructor(
    private readonly deps: {
      flow: FlowWindow
      logger: Logger
      /** Reads the first {@link MAX_SCRAPED_QUEUES} queues' figures at scrape time. */
      queueLoads: () => Promise<QueueLoad[]>
    }
  ) {
    collectDefaultMetrics({ register: this.registry })
    for (const metric of this.http.metrics()) this.registry.registerMetric(metric)
    const metrics = this
    const perQueue = (name: string, help: string, pick: (l: QueueLoad) => number) =>
      new Gauge({
        name,
        help: `${help}, per queue (the first ${MAX_SCRAPED_QUEUES} by name), read at scrape time`,
        labelNames: ['tenant', 'queue'] as const,
        registers: [this.registry],
        async collect() {
          this.reset()
          for (const l of await metrics.loadQueues()) {
            this.set({ tenant: l.tenantId, queue: l.queue }, pick(l))
          }
        },
      })
    perQueue('mq_queue_lag_messages', 'Entries no consumer group has read yet', (l) => l.lag)
    perQueue('mq_queue_pending_messages', 'Deliveries awaiting an ack', (l) => l.pending)
    perQueue('mq_queue_length_messages', 'Entries in the streams', (l) => l.length)
    new Counter({
      name: 'mq_ledger_gap_messages_total',
      help: `Messages trimmed (retention, maxLength) before the ledger recorded them, per queue (the first ${MAX_SCRAPED_QUEUES} by name), read at scrape time`,
      labelNames: ['tenant', 'queue'] as const,
      registers: [this.registry],
      async collect() {
        this.reset()
        for (const l of await metrics.loadQueues()) {
          this.inc({ tenant: l.tenantId, queue: l.queue }, l.ledgerGap)
        }
      },
    })
  }

  /** One Redis read per scrape, shared by the per-queue series collected together. */
  private loadQueues(): Promise<QueueLoad[]> {
    this.loading ??= this.deps
      .queueLoads()
      .catch((err) => {
        this.deps.logger.warn(
          { err: (err as Error).message },
          'queue figures not read for /metrics'
        )
        return []
      })
      .finally(() => {
        this.loading = undefined
      })
    return this.loading
  }

  /** Records one HTTP request; `route` is the matched pattern, never the raw path. */
  observeHttp(method: string, route: string, status: number, seconds: number): void {
    this.http.observe(method, route, status, seconds)
  }

  published(queue: Queue, counts: PublishCounts): void {
    this.unpublished.published += counts.published
    this.unpublished.scheduled += counts.scheduled
    this.unpublished.duplicate += counts.duplicate
    this.deps.flow.count(
      queue.tenantId,
      'published',
      queue.name,
      counts.published + counts.scheduled
    )
  }

  delivered(sub: Subscription, entries: readonly DeliveredEntry[], now: number): void {
    let redelivered = 0
    for (const e of entries) {
      if (e.deliveryCount > 1) {
        redelivered++
        continue
      }
      // Measured from the entry's time, not publishedAt: a delayed message keeps the time it
      // was sent, and its intended delay is not latency (lateness has its own histogram).
      const ms = Math.max(0, now - entryTime(e.streamId))
      this.publishToDelivery.observe(ms / 1000)
      this.deps.flow.latency(sub.tenantId, ms, now)
    }
    const first = entries.length - redelivered
    if (first > 0) this.deliveredTotal.inc({ attempt: 'first' }, first)
    if (redelivered > 0) this.deliveredTotal.inc({ attempt: 'redelivery' }, redelivered)
    this.deps.flow.count(sub.tenantId, 'delivered', sub.id, entries.length, now)
    // A redelivery means the previous attempt failed, as the subscription's counters say.
    this.deps.flow.count(sub.tenantId, 'failed', sub.id, redelivered, now)
  }

  acked(sub: Subscription, n: number, processingMs: number): void {
    if (n <= 0) return
    this.ackedTotal.inc(n)
    this.deps.flow.count(sub.tenantId, 'acked', sub.id, n)
    this.deps.flow.count(sub.tenantId, 'processingMs', sub.id, Math.round(processingMs))
    this.deps.flow.ackedAt(sub.tenantId, sub.id)
  }

  nacked(_sub: Subscription, n: number): void {
    if (n > 0) this.nackedTotal.inc(n)
  }

  deadLettered(sub: Subscription, n: number): void {
    if (n <= 0) return
    this.deadLetteredTotal.inc(n)
    this.deps.flow.count(sub.tenantId, 'failed', sub.id, n)
  }

  /**
   * For the delayed-message ticker: how late (ms after the due time) each promoted message
   * was. Negative values (clock skew between hosts) count as on time.
   */
  delayLateness(latenessMs: readonly number[]): void {
    for (const ms of latenessMs) this.lateness.observe(Math.max(0, ms) / 1000)
  }

  /** For the webhook worker: one push attempt and what it came to. */
  webhookAttempt(outcome: WebhookOutcome): void {
    this.webhookAttempts.inc({ outcome })
  }

  /** One wait of a webhook dispatcher for a permit of its subscription, by why. */
  webhookThrottled(reason: ThrottleReason): void {
    this.webhookThrottles.inc({ reason })
  }

  /** For the worker's sweeps: one piece of work failed and the sweep went on without it. */
  maintenanceFailed(task: MaintenanceTask): void {
    this.maintenanceFailures.inc({ task })
  }

  /** A ledger row refused for good, by its SQLSTATE (or the driver's code). */
  ledgerRefused(sqlstate: string): void {
    this.ledgerRefusals.inc({ sqlstate })
  }

  /** The Prometheus text exposition of every series. */
  async exposition(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() }
  }
}

/** What a worker sweep does per queue partition. */
export type MaintenanceTask = 'trim' | 'delayed' | 'removed'
