import type {
  FlowControl,
  GroupStore,
  MaintenanceStore,
  QueueStore,
  SubscriptionStore,
} from '../domain/ports'
import type { Queue } from '../domain/queues'
import { FlowWindow } from '../observability/flow-window'
import type { Logger } from '../observability/logger'
import { MAX_SCRAPED_QUEUES, Metrics } from '../observability/metrics'
import { MetricsReporter } from '../observability/metrics-report'
import type { Keys } from '../streams/keys'
import type { RedisClient } from '../streams/redis'
import type { Closers } from './closers'
import type { Metadata } from './metadata'

/** Where the metrics read queue metadata and figures; the stores the root wires. */
export interface MetricsSources {
  redis: RedisClient
  keys: Keys
  logger: Logger
  /** Queues of one tenant or (no tenant) of all, by name. */
  listQueues(tenantId: string | undefined, limit: number): Promise<Queue[]>
  queues: Pick<QueueStore, 'get'>
  subscriptions: Pick<SubscriptionStore, 'list'>
  messages: Pick<MaintenanceStore, 'queueStats'> &
    Pick<GroupStore, 'groupStats' | 'counters'> &
    Pick<FlowControl, 'flowFigures'>
}

/**
 * The process's metrics, the flow window behind them (flushing every second) and the JSON
 * views; built once per process. `close` stops the timer and writes the last counts.
 */
export function createMetrics(sources: MetricsSources): {
  metrics: Metrics
  reporter: MetricsReporter
  close(): Promise<void>
} {
  const flow = new FlowWindow(sources)
  const reporter = new MetricsReporter({
    flow,
    listQueues: sources.listQueues,
    getQueue: (tenantId, name) => sources.queues.get(tenantId, name),
    listSubscriptions: async (tenantId, limit) =>
      (await sources.subscriptions.list(tenantId, { limit })).items,
    queueStats: (queue) => sources.messages.queueStats(queue),
    groupStats: (queue, group) => sources.messages.groupStats(queue, group),
    counters: (sub) => sources.messages.counters(sub),
    flowFigures: (sub) => sources.messages.flowFigures(sub),
  })
  const metrics = new Metrics({
    flow,
    logger: sources.logger,
    queueLoads: () => reporter.queueLoads(MAX_SCRAPED_QUEUES),
  })
  flow.start()
  return { metrics, reporter, close: () => flow.close() }
}

/** The process's metrics over its stores; the flow window is closed (last counts written) at shutdown. */
export function openMetrics(
  sources: Omit<MetricsSources, 'listQueues' | 'queues' | 'subscriptions'>,
  metadata: Metadata,
  closers: Closers
): { metrics: Metrics; reporter: MetricsReporter } {
  const { metrics, reporter, close } = createMetrics({
    ...sources,
    listQueues: (tenantId, limit) => metadata.queueRepository.listAny(tenantId, limit),
    queues: metadata.queues,
    subscriptions: metadata.subscriptions,
  })
  closers.add(close)
  return { metrics, reporter }
}
