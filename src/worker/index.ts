import type { Deps } from '../deps'
import { LEDGER_TRIM_GRACE_MS } from '../domain/ledger'
import { DelayedTicker } from './delayed-ticker'
import { createLedgerWriter } from './ledger-writer'
import { ScheduleTicker } from './schedule-ticker'
import { Trimmer } from './trimmer'
import { createWebhookDelivery } from './webhook-delivery'

/** A long-running loop of the worker role. */
export interface Loop {
  readonly name: string
  start(): void
  /** Stops taking new work and resolves once in-flight work is done. */
  stop(): Promise<void>
}

/** The worker role's loops; every one is safe to run in many processes at once. */
export function workerLoops(deps: Deps): Loop[] {
  return [
    new DelayedTicker({
      store: deps.messages,
      redisTarget: deps.redisTarget,
      wakeupChannel: deps.keys.delayedWakeupChannel,
      logger: deps.logger,
      onPromoted: (lateness) => deps.metrics.delayLateness(lateness),
    }),
    new ScheduleTicker(deps.scheduleDeps, deps.logger),
    createLedgerWriter(deps),
    new Trimmer({
      queues: deps.queuePages,
      trimPartition: (...args) => deps.messages.trimPartition(...args),
      repairDelayed: (queue, partition) => deps.messages.repairDelayed(queue, partition),
      // A stale cached queue lives up to the cache's TTL; a minute more covers a request
      // that had resolved it just before the delete.
      sweepRemovedQueues: (now) =>
        deps.messages.sweepRemovedQueues(
          now - deps.config.METADATA_CACHE_TTL_MS - 60_000,
          async (tenantId, name) => (await deps.queueDeps.queues.get(tenantId, name)) !== null
        ),
      onFailure: (task) => deps.metrics.maintenanceFailed(task),
      ledgerGraceMs: deps.config.LEDGER_MODE === 'all' ? LEDGER_TRIM_GRACE_MS : null,
      logger: deps.logger,
    }),
    createWebhookDelivery(deps),
  ]
}

/** Starts `loops` (by default all of the worker role's). @returns a handle to stop them. */
export function startWorker(deps: Deps, loops: Loop[] = workerLoops(deps)) {
  for (const loop of loops) loop.start()
  deps.logger.info({ loops: loops.map((l) => l.name) }, 'worker started')
  return {
    stop: async () => {
      await Promise.all(loops.map((l) => l.stop()))
    },
  }
}
