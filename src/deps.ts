import { hkdfSync } from 'node:crypto'
import { join } from 'node:path'
import pkg from '../package.json' with { type: 'json' }
import type { Config } from './config'
import { type Database, openDatabase, resolveMigrationsDir } from './db/client'
import { LastConsumed, noteConsumption } from './db/last-consumed'
import { CachedQueueStore, CachedSubscriptionStore } from './db/metadata-cache'
import { QueueRepository } from './db/queue-repository'
import { ScheduleRepository } from './db/schedule-repository'
import { tenantLedgerReader } from './db/scoped-ledger'
import { SubscriptionRepository } from './db/subscription-repository'
import { warnIfRowSecurityBypassed } from './db/tenant-scope'
import type { ConsumeDeps } from './domain/consume'
import type { InspectDeps } from './domain/inspect'
import { JsonSchemas } from './domain/json-schema'
import { type PublishDeps, publishMessage } from './domain/publish'
import { ensureQueueLike, type Queue, type QueueDeps } from './domain/queues'
import type { ScheduleDeps } from './domain/schedules'
import { loadSubscription, type SubscriptionDeps } from './domain/subscription-admin'
import { type HostResolver, WebhookUrlGuard } from './egress/ssrf'
import { type Authenticator, createAuthenticator } from './http/middleware/auth'
import { type PrivateRedis, startPrivateRedis } from './local/redis-server'
import { localSecret } from './local/secrets'
import { AuditSink } from './observability/audit'
import { HealthService } from './observability/health'
import type { Logger } from './observability/logger'
import { createMetrics, type Metrics } from './observability/metrics'
import type { MetricsReporter } from './observability/metrics-report'
import type { StatusDeps } from './observability/status'
import { ReceiptCodec } from './streams/codec'
import { PayloadCipher } from './streams/crypto'
import { Keys } from './streams/keys'
import { LedgerEventLog } from './streams/ledger'
import { RedisRateLimiter } from './streams/rate-limiter'
import { createRedis, type RedisClient, type RedisTarget } from './streams/redis'
import { defineScripts } from './streams/scripts'
import { createStreamStores, type StreamStores } from './streams/stores'
import { BlockingWaiter } from './streams/waiter'

/** Everything the roles share, built once at start-up and closed once at shutdown. */
export interface Deps {
  config: Config
  logger: Logger
  database: Database
  redisTarget: RedisTarget
  /** Fail-fast connection for request handlers. */
  redis: RedisClient
  keys: Keys
  auth: Authenticator
  queueDeps: QueueDeps
  publishDeps: PublishDeps
  subscriptionDeps: SubscriptionDeps
  consumeDeps: ConsumeDeps
  scheduleDeps: ScheduleDeps
  /** Queues of every tenant a page at a time, for the worker's sweeps. */
  queuePages(afterId: string | null, limit: number): Promise<Queue[]>
  inspectDeps: InspectDeps
  /** Messages in Redis Streams (also `queueDeps.messages`). */
  messages: StreamStores
  /** Encrypts payloads of encrypted queues and webhook signing secrets at rest. */
  cipher: PayloadCipher
  /** Per-tenant request token buckets (`TENANT_RATE_LIMIT`). */
  rateLimiter: RedisRateLimiter
  /** Where webhooks may go (SSRF), checked at create/update and at every delivery attempt. */
  webhookGuard: WebhookUrlGuard
  receipts: ReceiptCodec
  health: HealthService
  statusDeps: StatusDeps
  /** The process's one metrics registry, shared by the api and worker roles. */
  metrics: Metrics
  /** The JSON metrics views. */
  reporter: MetricsReporter
  /** Audit events of management operations (fire and forget). */
  audit: AuditSink
  close(): Promise<void>
}

/** How long a message that failed its last attempt stays hidden while it is dead-lettered. */
const DEAD_LETTER_HOLD_MS = 30_000

/** The JWT secret: configured, or (with neither JWT_SECRET nor JWKS_URL) the local one. */
export function resolveJwtSecret(config: Config): string | undefined {
  if (config.JWT_SECRET) return config.JWT_SECRET
  return config.JWKS_URL ? undefined : localSecret(config.DATA_DIR, 'jwt-secret')
}

/** The master key: configured, or the local one of a zero-set-up run. */
export function resolveMasterKey(config: Config): string {
  return config.MQ_MASTER_KEY ?? localSecret(config.DATA_DIR, 'master-key')
}

/**
 * Connects to Redis and PostgreSQL (starting the private redis-server and PGlite for a
 * zero-set-up run), applies migrations and wires the repositories.
 * @param options.resolveHost replaces the system resolver for webhook hosts (tests, which must
 * never ask real DNS).
 * @param options.stopping aborted when shutdown begins, so long polls answer early.
 */
export async function buildDeps(
  config: Config,
  logger: Logger,
  options: { resolveHost?: HostResolver; stopping?: AbortSignal } = {}
): Promise<Deps> {
  const closers: Array<() => Promise<unknown>> = []
  const close = async () => {
    for (const fn of closers.reverse()) {
      await fn().catch((err) => logger.warn({ err: (err as Error).message }, 'close failed'))
    }
  }
  try {
    let localRedis: PrivateRedis | undefined
    let url = config.REDIS_URL
    if (!url && config.REDIS_CLUSTER_NODES.length === 0) {
      localRedis = await startPrivateRedis(join(config.DATA_DIR, 'redis'))
      closers.push(() => localRedis!.stop())
      url = localRedis.url
      logger.info({ url, pid: localRedis.pid }, 'started private redis-server')
    }
    const redisTarget: RedisTarget = { url: url ?? '', clusterNodes: config.REDIS_CLUSTER_NODES }

    const database = await openDatabase({
      url: config.DATABASE_URL,
      pgliteDir: join(config.DATA_DIR, 'pg'),
      poolSize: config.DATABASE_POOL_SIZE,
    })
    closers.push(() => database.close())
    await database.migrate(resolveMigrationsDir(config.MIGRATIONS_DIR))
    await warnIfRowSecurityBypassed(database, logger)

    const redis = createRedis(redisTarget, 'command', logger)
    closers.push(() => redis.quit())
    defineScripts(redis)
    const subscriber = createRedis(redisTarget, 'subscriber', logger)
    closers.push(() => subscriber.quit())

    const keys = new Keys(config.REDIS_KEY_PREFIX)
    const repository = new QueueRepository(database.db)
    const queues = new CachedQueueStore(
      repository,
      config.METADATA_CACHE_TTL_MS,
      redis,
      keys.metadataChannel,
      logger
    )
    await queues.listen(subscriber)
    const subscriptionRepository = new SubscriptionRepository(database.db)
    const subscriptions = new CachedSubscriptionStore(
      subscriptionRepository,
      config.METADATA_CACHE_TTL_MS,
      redis,
      keys.metadataChannel,
      logger
    )
    await subscriptions.listen(subscriber)
    const messages = createStreamStores(redis, keys)
    const schemas = new JsonSchemas()
    const masterKey = resolveMasterKey(config)
    // The current key encrypts; previous ones still decrypt what they sealed (key rotation).
    const cipher = new PayloadCipher([masterKey, ...config.MQ_MASTER_KEYS_PREVIOUS])
    const receipts = new ReceiptCodec(
      Buffer.from(hkdfSync('sha256', Buffer.from(masterKey, 'base64'), '', 'mq-receipts-v1', 32))
    )
    const waiter = new BlockingWaiter(messages, redisTarget, logger)
    closers.push(() => waiter.close())
    const webhookGuard = new WebhookUrlGuard(config.WEBHOOK_ALLOWED_HOSTS, options.resolveHost)
    const {
      metrics,
      reporter,
      close: closeMetrics,
    } = createMetrics({
      redis,
      keys,
      logger,
      listQueues: (tenantId, limit) => repository.listAny(tenantId, limit),
      queues,
      subscriptions,
      messages,
    })
    closers.push(closeMetrics)
    const lastConsumed = new LastConsumed({ store: subscriptionRepository, logger })
    lastConsumed.start()
    closers.push(() => lastConsumed.close())
    const publishDeps: PublishDeps = {
      queues,
      messages,
      cipher,
      checkSchema: schemas.check,
      limits: { maxMessageSize: config.MAX_MESSAGE_SIZE, dedupWindowMs: config.DEDUP_WINDOW_MS },
      metrics,
    }
    const audit = new AuditSink({
      publish: (ctx, queue, input) => publishMessage(publishDeps, ctx, queue, input),
      url: config.AUDIT_SERVICE_URL,
      serviceToken: config.INTERNAL_SERVICE_TOKEN,
      logger,
    })
    closers.push(() => audit.settled())
    const queueDeps: QueueDeps = {
      queues,
      messages,
      defaults: { retentionMs: config.DEFAULT_TTL * 1000, maxLength: config.MAX_QUEUE_LENGTH },
      maxQueuesPerTenant: config.TENANT_MAX_QUEUES,
      assertUsableSchema: (schema) => schemas.assertUsable(schema),
    }

    return {
      config,
      logger,
      database,
      redisTarget,
      redis,
      keys,
      auth: createAuthenticator({
        jwtSecret: resolveJwtSecret(config),
        jwksUrl: config.JWKS_URL,
        issuer: config.JWT_ISSUER,
        audience: config.JWT_AUDIENCE,
        clockToleranceS: config.JWT_CLOCK_TOLERANCE_S,
        serviceToken: config.INTERNAL_SERVICE_TOKEN,
      }),
      messages,
      cipher,
      rateLimiter: new RedisRateLimiter(redis, keys),
      receipts,
      webhookGuard,
      publishDeps,
      subscriptionDeps: {
        queues,
        subscriptions,
        messages,
        sealer: cipher,
        defaults: { sessionTimeoutMs: config.CONSUMER_TIMEOUT },
        checkWebhookUrl: (url) => webhookGuard.refusal(url),
        lastConsumedAt: (tenantId, id) => lastConsumed.read(tenantId, id),
      },
      queuePages: (afterId, limit) => repository.page(afterId, limit),
      scheduleDeps: {
        schedules: new ScheduleRepository(database.db),
        queues,
        cipher,
        publish: publishDeps,
        claimOccurrence: (id, at, ttlMs) => messages.claimOccurrence(id, at, ttlMs),
      },
      consumeDeps: {
        queues,
        messages,
        cipher,
        receipts,
        waiter,
        loadSubscription: (ctx, id) => loadSubscription({ queues, subscriptions }, ctx, id),
        ensureQueue: (ctx, name, like) => ensureQueueLike(queueDeps, ctx, name, like),
        limits: { dedupWindowMs: config.DEDUP_WINDOW_MS },
        deadHoldMs: DEAD_LETTER_HOLD_MS,
        metrics: noteConsumption(metrics, lastConsumed),
        ledger: new LedgerEventLog(config.LEDGER_MODE, redis, keys, logger),
        stopping: options.stopping,
      },
      inspectDeps: {
        queues,
        messages,
        cipher,
        limits: { dedupWindowMs: config.DEDUP_WINDOW_MS },
        ledger: tenantLedgerReader(database.db, logger),
      },
      queueDeps,
      health: new HealthService({
        redis,
        database,
        keys,
        version: pkg.version,
        dependencies: {
          'auth-service': config.AUTH_SERVICE_URL,
          'user-service': config.USER_SERVICE_URL,
          'audit-service': config.AUDIT_SERVICE_URL,
          'notification-service': config.NOTIFICATION_SERVICE_URL,
        },
        dependencyCacheMs: config.HEALTH_CHECK_INTERVAL * 1000,
        countQueues: () => repository.countAll(),
      }),
      statusDeps: {
        redis,
        listQueues: (tenantId, limit) => repository.listAny(tenantId, limit),
        queueStats: (queue) => messages.queueStats(queue),
      },
      metrics,
      reporter,
      audit,
      close,
    }
  } catch (err) {
    await close()
    throw err
  }
}
