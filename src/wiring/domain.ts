import { hkdfSync } from 'node:crypto'
import type { Config } from '../config'
import type { Database } from '../db/client'
import { type LastConsumed, noteConsumption } from '../db/last-consumed'
import { ScheduleRepository } from '../db/schedule-repository'
import { tenantLedgerReader, tenantRemovalLog } from '../db/scoped-ledger'
import type { ConsumeDeps } from '../domain/consume'
import type { InspectDeps } from '../domain/inspect'
import { JsonSchemas } from '../domain/json-schema'
import type { MessageMetrics } from '../domain/metrics'
import type { PublishDeps } from '../domain/publish'
import { ensureQueueLike, type QueueDeps } from '../domain/queues'
import type { ScheduleDeps } from '../domain/schedules'
import { loadSubscription, type SubscriptionDeps } from '../domain/subscription-admin'
import type { WebhookUrlGuard } from '../egress/ssrf'
import type { Logger } from '../observability/logger'
import { ReceiptCodec } from '../streams/codec'
import { PayloadCipher } from '../streams/crypto'
import type { Keys } from '../streams/keys'
import { LedgerEventLog } from '../streams/ledger'
import type { RedisClient } from '../streams/redis'
import type { StreamStores } from '../streams/stores'
import type { BlockingWaiter } from '../streams/waiter'
import type { Metadata } from './metadata'

/** How long a message that failed its last attempt stays hidden while it is dead-lettered. */
const DEAD_LETTER_HOLD_MS = 30_000

/**
 * The payload cipher and the receipt codec, both from the master key. The current key
 * encrypts; previous ones still decrypt what they sealed (key rotation).
 */
export function createCiphers(masterKey: string, previousKeys: string[]) {
  const cipher = new PayloadCipher([masterKey, ...previousKeys])
  const receipts = new ReceiptCodec(
    Buffer.from(hkdfSync('sha256', Buffer.from(masterKey, 'base64'), '', 'mq-receipts-v1', 32))
  )
  return { cipher, receipts }
}

/** What the domain's dependencies are built from. */
export interface DomainSources {
  config: Config
  logger: Logger
  database: Database
  redis: RedisClient
  keys: Keys
  metadata: Metadata
  messages: StreamStores
  cipher: PayloadCipher
  receipts: ReceiptCodec
  waiter: BlockingWaiter
  webhookGuard: WebhookUrlGuard
  metrics: MessageMetrics
  lastConsumed: LastConsumed
  stopping?: AbortSignal
}

/** The dependencies of each part of the domain. */
export interface DomainDeps {
  publishDeps: PublishDeps
  queueDeps: QueueDeps
  subscriptionDeps: SubscriptionDeps
  scheduleDeps: ScheduleDeps
  consumeDeps: ConsumeDeps
  inspectDeps: InspectDeps
}

function publishDeps(s: DomainSources, schemas: JsonSchemas): PublishDeps {
  return {
    queues: s.metadata.queues,
    messages: s.messages,
    cipher: s.cipher,
    checkSchema: schemas.check,
    limits: { maxMessageSize: s.config.MAX_MESSAGE_SIZE, dedupWindowMs: s.config.DEDUP_WINDOW_MS },
    now: Date.now,
    metrics: s.metrics,
  }
}

function queueDeps(s: DomainSources, schemas: JsonSchemas): QueueDeps {
  return {
    queues: s.metadata.queues,
    messages: s.messages,
    defaults: { retentionMs: s.config.DEFAULT_TTL * 1000, maxLength: s.config.MAX_QUEUE_LENGTH },
    maxQueuesPerTenant: s.config.TENANT_MAX_QUEUES,
    schemas,
  }
}

function subscriptionDeps(s: DomainSources): SubscriptionDeps {
  return {
    queues: s.metadata.queues,
    subscriptions: s.metadata.subscriptions,
    messages: s.messages,
    sealer: s.cipher,
    defaults: { sessionTimeoutMs: s.config.CONSUMER_TIMEOUT },
    checkWebhookUrl: (url) => s.webhookGuard.refusal(url),
    lastConsumedAt: (tenantId, id) => s.lastConsumed.read(tenantId, id),
    flowFigures: (sub) => s.messages.flowFigures(sub),
  }
}

function consumeDeps(s: DomainSources, queues: QueueDeps): ConsumeDeps {
  const metadata = { queues: s.metadata.queues, subscriptions: s.metadata.subscriptions }
  return {
    queues: s.metadata.queues,
    messages: s.messages,
    cipher: s.cipher,
    receipts: s.receipts,
    waiter: s.waiter,
    loadSubscription: (ctx, id) => loadSubscription(metadata, ctx, id),
    ensureQueue: (ctx, name, like) => ensureQueueLike(queues, ctx, name, like),
    limits: { dedupWindowMs: s.config.DEDUP_WINDOW_MS },
    deadHoldMs: DEAD_LETTER_HOLD_MS,
    metrics: noteConsumption(s.metrics, s.lastConsumed),
    ledger: new LedgerEventLog(s.config.LEDGER_MODE, s.redis, s.keys, s.logger),
    stopping: s.stopping,
  }
}

/** Wires publish, queues, subscriptions, schedules, consume and inspect to their stores. */
export function wireDomain(s: DomainSources): DomainDeps {
  const schemas = new JsonSchemas()
  const publish = publishDeps(s, schemas)
  const queues = queueDeps(s, schemas)
  return {
    publishDeps: publish,
    queueDeps: queues,
    subscriptionDeps: subscriptionDeps(s),
    scheduleDeps: {
      schedules: new ScheduleRepository(s.database.db),
      queues: s.metadata.queues,
      cipher: s.cipher,
      publish,
      claimOccurrence: (id, at, ttlMs) => s.messages.claimOccurrence(id, at, ttlMs),
    },
    consumeDeps: consumeDeps(s, queues),
    inspectDeps: {
      queues: s.metadata.queues,
      messages: s.messages,
      cipher: s.cipher,
      limits: { dedupWindowMs: s.config.DEDUP_WINDOW_MS },
      ledger: tenantLedgerReader(s.database.db, s.logger),
      removals: tenantRemovalLog(s.database.db, s.logger, s.config.LEDGER_MODE),
    },
  }
}
