import type { FlowFigures } from '../domain/flow'
import type { Queue, QueueStats } from '../domain/queues'
import type { Subscription, SubscriptionCounters } from '../domain/subscriptions'
import type { FlowWindow } from './flow-window'
import { type FlowTotals, latencyQuantile, WINDOW_SECONDS } from './flow-window'
import type { QueueLoad } from './metrics'

/** The seed's `MessageQueueMetrics`. Rates are per second over the last minute; latencies ms. */
export interface MessageQueueMetrics {
  redisStreams: {
    totalStreams: number
    totalConsumerGroups: number
    totalMessages: number
    pendingMessages: number
  }
  consumers: {
    activeConsumers: number
    totalLag: number
    processingRate: number
    errorRate: number
  }
  performance: {
    averageLatency: number
    p95Latency: number
    p99Latency: number
    throughput: number
  }
}

/** One queue in `GET /metrics/topics`; `tenantId` only in the all-tenant view. */
export interface TopicMetrics {
  tenantId?: string
  queue: string
  partitions: number
  length: number
  pending: number
  scheduled: number
  lag: number
  publishRate: number
  consumeRate: number
  consumerGroups: number
}

/** One subscription in `GET /metrics/consumers`; `tenantId` only in the all-tenant view. */
export interface ConsumerMetrics {
  tenantId?: string
  subscriptionId: string
  queue: string
  consumerGroup: string
  consumerName: string
  lag: number
  pending: number
  delivered: number
  acked: number
  failed: number
  deadLettered: number
  avgProcessingMs: number | null
  lastConsumedAt: string | null
  /** Webhooks: their flow limits and how they act now. */
  flow?: Omit<FlowFigures, 'pausedUntil'> & { pausedUntil: string | null }
}

/** Where the views read from: metadata in PostgreSQL, figures in Redis. */
export interface MetricsReportDeps {
  /** The first `limit` queues by name, of one tenant or (no tenant) of all. */
  listQueues(tenantId: string | undefined, limit: number): Promise<Queue[]>
  getQueue(tenantId: string, name: string): Promise<Queue | null>
  listSubscriptions(tenantId: string, limit: number): Promise<Subscription[]>
  queueStats(queue: Queue): Promise<QueueStats>
  groupStats(queue: Queue, group: string): Promise<{ lag: number; pending: number }>
  counters(sub: Subscription): Promise<SubscriptionCounters>
  flowFigures(sub: Subscription): Promise<FlowFigures>
  flow: FlowWindow
}

const presentFlow = (flow: FlowFigures | null | undefined) =>
  flow ? { flow: { ...flow, pausedUntil: flow.pausedUntil?.toISOString() ?? null } } : {}

/** Bounds that keep one answer's Redis and PostgreSQL work small. */
export const REPORT_LIMITS = { queues: 2000, subscriptionsPerTenant: 1000, concurrency: 16 }

const round = (n: number, digits: number) => Math.round(n * 10 ** digits) / 10 ** digits
const perSecond = (n: number) => round(n / WINDOW_SECONDS, 3)
const sum = (values: Iterable<number>) => {
  let total = 0
  for (const v of values) total += v
  return total
}

/** Runs `fn` over `items`, at most `limit` at a time, keeping the order. */
async function mapLimit<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T) => Promise<R>
): Promise<R[]> {
  const out = new Array<R>(items.length)
  let next = 0
  const worker = async () => {
    while (next < items.length) {
      const i = next++
      out[i] = await fn(items[i]!)
    }
  }
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker))
  return out
}

/** Live figures of one queue and of each consumer group with a subscription on it. */
interface QueueFigures {
  queue: Queue
  stats: QueueStats
  groups: Map<string, { lag: number; pending: number }>
  lag: number
}

/** What every view starts from: queues with their figures, subscriptions, and flows. */
interface Snapshot {
  figures: QueueFigures[]
  subscriptions: Subscription[]
  flows: Map<string, FlowTotals>
}

/**
 * The JSON metrics: one tenant's (a tenant caller) or every tenant's (a service token).
 * Queue and group figures are read live from Redis; rates and latencies come from the flow
 * window every process writes to, so they are the service's, not one process's.
 */
export class MetricsReporter {
  constructor(private readonly deps: MetricsReportDeps) {}

  private async snapshot(
    tenantId: string | undefined,
    opts: { queues?: Queue[]; flows: boolean; limit?: number }
  ): Promise<Snapshot> {
    const queues =
      opts.queues ?? (await this.deps.listQueues(tenantId, opts.limit ?? REPORT_LIMITS.queues))
    const tenants = tenantId ? [tenantId] : [...new Set(queues.map((q) => q.tenantId))]
    const [subscriptionLists, flows] = await Promise.all([
      mapLimit(tenants, REPORT_LIMITS.concurrency, (t) =>
        this.deps.listSubscriptions(t, REPORT_LIMITS.subscriptionsPerTenant)
      ),
      opts.flows
        ? mapLimit(tenants, REPORT_LIMITS.concurrency, (t) => this.deps.flow.read(t))
        : Promise.resolve([]),
    ])
    const subscriptions = subscriptionLists.flat()
    const listed = new Set(queues.map((q) => q.id))
    const groupsOf = new Map<string, Set<string>>()
    for (const sub of subscriptions) {
      if (!listed.has(sub.queueId)) continue
      const groups = groupsOf.get(sub.queueId) ?? new Set()
      groups.add(sub.consumerGroup)
      groupsOf.set(sub.queueId, groups)
    }
    const figures = await mapLimit(queues, REPORT_LIMITS.concurrency, async (queue) => {
      const stats = await this.deps.queueStats(queue)
      const groups = new Map<string, { lag: number; pending: number }>()
      for (const group of groupsOf.get(queue.id) ?? []) {
        groups.set(group, await this.deps.groupStats(queue, group))
      }
      return { queue, stats, groups, lag: sum([...groups.values()].map((g) => g.lag)) }
    })
    return {
      figures,
      subscriptions: subscriptions.filter((s) => listed.has(s.queueId)),
      flows: new Map(flows.map((f, i) => [tenants[i]!, f])),
    }
  }

  private topicOf(f: QueueFigures, snap: Snapshot, allTenants: boolean): TopicMetrics {
    const flow = snap.flows.get(f.queue.tenantId)
    const acked = snap.subscriptions
      .filter((s) => s.queueId === f.queue.id)
      .map((s) => flow?.acked.get(s.id) ?? 0)
    return {
      ...(allTenants ? { tenantId: f.queue.tenantId } : {}),
      queue: f.queue.name,
      partitions: f.queue.partitionCount,
      length: f.stats.length,
      pending: f.stats.pending,
      scheduled: f.stats.scheduled,
      lag: f.lag,
      publishRate: perSecond(flow?.published.get(f.queue.name) ?? 0),
      consumeRate: perSecond(sum(acked)),
      consumerGroups: f.stats.consumerGroups,
    }
  }

  /** Each queue with its figures and rates. */
  async topics(tenantId: string | undefined): Promise<TopicMetrics[]> {
    const snap = await this.snapshot(tenantId, { flows: true })
    return snap.figures.map((f) => this.topicOf(f, snap, tenantId === undefined))
  }

  /** One queue of a tenant with its figures and rates; null when it has none of that name. */
  async topic(tenantId: string, name: string): Promise<TopicMetrics | null> {
    const queue = await this.deps.getQueue(tenantId, name)
    if (!queue) return null
    const snap = await this.snapshot(tenantId, { queues: [queue], flows: true })
    return this.topicOf(snap.figures[0]!, snap, false)
  }

  /** Each subscription with its group's lag and pending, its counters and processing time. */
  async consumers(tenantId: string | undefined): Promise<ConsumerMetrics[]> {
    const snap = await this.snapshot(tenantId, { flows: true })
    const figuresOf = new Map(snap.figures.map((f) => [f.queue.id, f]))
    const byTenant = Map.groupBy(snap.subscriptions, (s) => s.tenantId)
    const [counters, flows, lastAcks] = await Promise.all([
      mapLimit(snap.subscriptions, REPORT_LIMITS.concurrency, (s) => this.deps.counters(s)),
      mapLimit(snap.subscriptions, REPORT_LIMITS.concurrency, async (s) =>
        s.subscriptionType === 'webhook' ? await this.deps.flowFigures(s) : null
      ),
      Promise.all(
        [...byTenant].map(([t, subs]) =>
          this.deps.flow.lastAckTimes(
            t,
            subs.map((s) => s.id)
          )
        )
      ),
    ])
    const lastAck = new Map(lastAcks.flatMap((m) => [...m]))
    return snap.subscriptions.map((sub, i) => {
      const group = figuresOf.get(sub.queueId)?.groups.get(sub.consumerGroup)
      const flow = snap.flows.get(sub.tenantId)
      const acked = flow?.acked.get(sub.id) ?? 0
      // The row may be cached and its column is written every few seconds: the later wins.
      const ack = lastAck.get(sub.id)
      const row = sub.lastConsumedAt
      const lastConsumedAt =
        row && ack ? new Date(Math.max(row.getTime(), ack.getTime())) : (row ?? ack ?? null)
      return {
        ...(tenantId === undefined ? { tenantId: sub.tenantId } : {}),
        subscriptionId: sub.id,
        queue: sub.queue,
        consumerGroup: sub.consumerGroup,
        consumerName: sub.consumerName,
        lag: group?.lag ?? 0,
        pending: group?.pending ?? 0,
        ...counters[i]!,
        avgProcessingMs: acked > 0 ? round((flow?.processingMs.get(sub.id) ?? 0) / acked, 1) : null,
        lastConsumedAt: lastConsumedAt?.toISOString() ?? null,
        ...presentFlow(flows[i]),
      }
    })
  }

  /** The seed's `MessageQueueMetrics` over the tenant's queues, or every tenant's. */
  async summary(tenantId: string | undefined): Promise<MessageQueueMetrics> {
    const snap = await this.snapshot(tenantId, { flows: true })
    const flows = [...snap.flows.values()]
    const latencyBuckets = flows.reduce<number[]>(
      (acc, f) => acc.map((n, i) => n + (f.latencyBuckets[i] ?? 0)),
      flows[0]?.latencyBuckets.map(() => 0) ?? []
    )
    const samples = sum(latencyBuckets)
    const active = snap.subscriptions.filter((s) => {
      const flow = snap.flows.get(s.tenantId)
      return (
        s.status === 'active' &&
        ((flow?.delivered.get(s.id) ?? 0) > 0 || (flow?.acked.get(s.id) ?? 0) > 0)
      )
    })
    const total = (pick: (f: FlowTotals) => Map<string, number>) =>
      sum(flows.map((f) => sum(pick(f).values())))
    const quantile = (q: number) => round(latencyQuantile(latencyBuckets, q) ?? 0, 1)
    return {
      redisStreams: {
        totalStreams: sum(snap.figures.map((f) => f.queue.partitionCount)),
        totalConsumerGroups: sum(snap.figures.map((f) => f.stats.consumerGroups)),
        totalMessages: sum(snap.figures.map((f) => f.stats.length)),
        pendingMessages: sum(snap.figures.map((f) => f.stats.pending)),
      },
      consumers: {
        activeConsumers: active.length,
        totalLag: sum(snap.figures.map((f) => f.lag)),
        processingRate: perSecond(total((f) => f.acked)),
        errorRate: perSecond(total((f) => f.failed)),
      },
      performance: {
        averageLatency: samples > 0 ? round(sum(flows.map((f) => f.latencySumMs)) / samples, 1) : 0,
        p95Latency: quantile(0.95),
        p99Latency: quantile(0.99),
        throughput: perSecond(total((f) => f.published)),
      },
    }
  }

  /** Length, pending and lag of the first `limit` queues of every tenant, for Prometheus. */
  async queueLoads(limit: number): Promise<QueueLoad[]> {
    const snap = await this.snapshot(undefined, { flows: false, limit })
    return snap.figures.map((f) => ({
      tenantId: f.queue.tenantId,
      queue: f.queue.name,
      length: f.stats.length,
      pending: f.stats.pending,
      lag: f.lag,
      ledgerGap: f.stats.ledgerGap,
    }))
  }
}
