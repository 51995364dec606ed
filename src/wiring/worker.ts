import { randomUUID } from 'node:crypto'
import { hostname } from 'node:os'
import { systemLedgerRecords } from '../db/scoped-ledger'
import { SubscriptionRepository } from '../db/subscription-repository'
import type { Deps } from '../deps'
import { LEDGER_TRIM_GRACE_MS } from '../domain/ledger'
import { openSigningSecret } from '../domain/subscription-admin'
import { LedgerStreams } from '../streams/ledger'
import { createRedis } from '../streams/redis'
import { defineScripts } from '../streams/scripts'
import { DelayedTicker } from '../worker/delayed-ticker'
import { LedgerWriter } from '../worker/ledger-writer'
import type { Loop } from '../worker/loop'
import { ScheduleTicker } from '../worker/schedule-ticker'
import { Trimmer } from '../worker/trimmer'
import {
  WebhookDelivery,
  type WebhookDeliveryDeps,
  type WebhookDeliveryOptions,
} from '../worker/webhook-delivery'

/**
 * A connection of the ledger writer's own, reading as `consumer`: by default a name no other
 * process uses (host, pid and a random part), so each process holds only what it read.
 */
export function openLedgerStreams(
  deps: Pick<Deps, 'redisTarget' | 'keys' | 'logger'>,
  consumer = `${hostname()}-${process.pid}-${randomUUID().slice(0, 8)}`
): LedgerStreams {
  const redis = createRedis(deps.redisTarget, 'worker', deps.logger)
  defineScripts(redis)
  return new LedgerStreams(redis, deps.keys, consumer)
}

/** The ledger writer over the process's shared dependencies and configuration. */
export function createLedgerWriter(deps: Deps): LedgerWriter {
  return new LedgerWriter({
    mode: deps.config.LEDGER_MODE,
    queues: deps.queuePages,
    connect: () => openLedgerStreams(deps),
    // Every tenant's rows, in the system's row-level security scope, a transaction per batch.
    records: systemLedgerRecords(deps.database.db, deps.logger, (sqlstate) =>
      deps.metrics.ledgerRefused(sqlstate)
    ),
    multiKey: deps.redisTarget.clusterNodes.length === 0,
    logger: deps.logger,
  })
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
      connect: fetch,
      lastIds: (queue) => deps.messages.lastIds(queue),
      waitForEntries: (client, queue, after, timeoutMs, signal) =>
        deps.messages.waitForEntries(client, queue, after, timeoutMs, signal),
      openBlockingConnection: () => createRedis(deps.redisTarget, 'blocking', deps.logger),
      unblock: async (clientId) => Number(await deps.redis.client('UNBLOCK', clientId)),
      recordAttempt: (outcome) => deps.metrics.webhookAttempt(outcome),
      flow: deps.messages,
      recordThrottle: (reason) => deps.metrics.webhookThrottled(reason),
      logger: deps.logger,
      ...overrides,
    },
    {
      perSubscription: deps.config.MAX_CONCURRENT_CONSUMERS,
      maxTimeoutMs: deps.config.PROCESSING_TIMEOUT_MS,
      ...options,
    }
  )
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
