import pkg from '../package.json' with { type: 'json' }
import type { Config } from './config'
import type { Database } from './db/client'
import { LastConsumed } from './db/last-consumed'
import type { QueueRepository } from './db/queue-repository'
import type { ConsumeDeps } from './domain/consume'
import type { InspectDeps } from './domain/inspect'
import { type PublishDeps, publishMessage } from './domain/publish'
import type { Queue, QueueDeps } from './domain/queues'
import type { ScheduleDeps } from './domain/schedules'
import type { SubscriptionDeps } from './domain/subscription-admin'
import { type HostResolver, WebhookUrlGuard } from './egress/ssrf'
import { type Authenticator, createAuthenticator } from './http/middleware/auth'
import { localSecret } from './local/secrets'
import { AuditSink } from './observability/audit'
import { HealthService } from './observability/health'
import type { Logger } from './observability/logger'
import type { Metrics } from './observability/metrics'
import type { MetricsReporter } from './observability/metrics-report'
import type { StatusDeps } from './observability/status'
import type { ReceiptCodec } from './streams/codec'
import type { PayloadCipher } from './streams/crypto'
import { Keys } from './streams/keys'
import { RedisRateLimiter } from './streams/rate-limiter'
import type { RedisClient, RedisTarget } from './streams/redis'
import { createStreamStores, type StreamStores } from './streams/stores'
import { BlockingWaiter } from './streams/waiter'
import { type Backends, openBackends } from './wiring/backends'
import { Closers } from './wiring/closers'
import { createCiphers, wireDomain } from './wiring/domain'
import { openMetadata } from './wiring/metadata'
import { openMetrics } from './wiring/metrics'

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

/** The JWT secret: configured, or (with neither JWT_SECRET nor JWKS_URL) the local one. */
export function resolveJwtSecret(config: Config): string | undefined {
  if (config.JWT_SECRET) return config.JWT_SECRET
  return config.JWKS_URL ? undefined : localSecret(config.DATA_DIR, 'jwt-secret')
}

/** The master key: configured, or the local one of a zero-set-up run. */
export function resolveMasterKey(config: Config): string {
  return config.MQ_MASTER_KEY ?? localSecret(config.DATA_DIR, 'master-key')
}

function createAuth(config: Config): Authenticator {
  return createAuthenticator({
    jwtSecret: resolveJwtSecret(config),
    jwksUrl: config.JWKS_URL,
    issuer: config.JWT_ISSUER,
    audience: config.JWT_AUDIENCE,
    clockToleranceS: config.JWT_CLOCK_TOLERANCE_S,
    serviceToken: config.INTERNAL_SERVICE_TOKEN,
  })
}

function createHealth(
  config: Config,
  backends: Backends,
  keys: Keys,
  queues: QueueRepository
): HealthService {
  return new HealthService({
    redis: backends.redis,
    database: backends.database,
    keys,
    version: pkg.version,
    dependencies: {
      'auth-service': config.AUTH_SERVICE_URL,
      'user-service': config.USER_SERVICE_URL,
      'audit-service': config.AUDIT_SERVICE_URL,
      'notification-service': config.NOTIFICATION_SERVICE_URL,
    },
    dependencyCacheMs: config.HEALTH_CHECK_INTERVAL * 1000,
    countQueues: () => queues.countAll(),
  })
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
  const closers = new Closers(logger)
  try {
    const backends = await openBackends(config, logger, closers)
    const { redisTarget, database, redis } = backends
    const keys = new Keys(config.REDIS_KEY_PREFIX)
    const metadata = await openMetadata(config, backends, keys, logger)
    const { queueRepository } = metadata
    const messages = createStreamStores(redis, keys)
    const { cipher, receipts } = createCiphers(
      resolveMasterKey(config),
      config.MQ_MASTER_KEYS_PREVIOUS
    )
    const waiter = new BlockingWaiter(messages, redisTarget, logger)
    closers.add(() => waiter.close())
    const webhookGuard = new WebhookUrlGuard(config.WEBHOOK_ALLOWED_HOSTS, options.resolveHost)
    const { metrics, reporter } = openMetrics({ redis, keys, logger, messages }, metadata, closers)
    const lastConsumed = new LastConsumed({ store: metadata.subscriptionRepository, logger })
    lastConsumed.start()
    closers.add(() => lastConsumed.close())
    const domain = wireDomain({
      config,
      logger,
      database,
      redis,
      keys,
      metadata,
      messages,
      cipher,
      receipts,
      waiter,
      webhookGuard,
      metrics,
      lastConsumed,
      stopping: options.stopping,
    })
    const audit = new AuditSink({
      publish: (ctx, queue, input) => publishMessage(domain.publishDeps, ctx, queue, input),
      url: config.AUDIT_SERVICE_URL,
      serviceToken: config.INTERNAL_SERVICE_TOKEN,
      logger,
    })
    closers.add(() => audit.settled())
    return {
      ...domain,
      config,
      logger,
      database,
      redis,
      keys,
      messages,
      cipher,
      redisTarget,
      receipts,
      webhookGuard,
      metrics,
      reporter,
      audit,
      auth: createAuth(config),
      rateLimiter: new RedisRateLimiter(redis, keys),
      queuePages: (afterId, limit) => queueRepository.page(afterId, limit),
      health: createHealth(config, backends, keys, queueRepository),
      statusDeps: {
        redis,
        listQueues: (tenantId, limit) => queueRepository.listAny(tenantId, limit),
        queueStats: (queue) => messages.queueStats(queue),
      },
      close: closers.close,
    }
  } catch (err) {
    await closers.close()
    throw err
  }
}
