import { sql } from 'drizzle-orm'
import {
  bigint,
  boolean,
  index,
  integer,
  jsonb,
  pgPolicy,
  pgTable,
  primaryKey,
  smallint,
  text,
  timestamp,
  uniqueIndex,
  uuid,
  varchar,
} from 'drizzle-orm/pg-core'

const createdAt = () =>
  timestamp('created_at', { withTimezone: true, mode: 'date' }).notNull().defaultNow()
const updatedAt = () =>
  timestamp('updated_at', { withTimezone: true, mode: 'date' }).notNull().defaultNow()
const at = (name: string) => timestamp(name, { withTimezone: true, mode: 'date' })

/**
 * Row-level security, the second line of tenant isolation behind every query's own
 * `tenant_id` filter: a row is visible and writable only in a transaction that named its
 * tenant (`mq.tenant_id`) or said it works across tenants (`mq.scope` = `system`), both set
 * transaction-locally by `src/db/tenant-scope.ts`. Outside such a transaction nothing is
 * visible and nothing can be written. `''` is what a setting reads as once the transaction
 * that set it has ended, hence the `nullif`. Migration 0002 also FORCEs it, so the tables'
 * owner (the service's role) is held to it too; only superusers and BYPASSRLS roles are not.
 */
const visibleToScope = sql.raw(
  "current_setting('mq.scope', true) = 'system' or tenant_id = nullif(current_setting('mq.tenant_id', true), '')::uuid"
)
const tenantRowSecurity = () =>
  pgPolicy('tenant_isolation', {
    for: 'all',
    to: 'public',
    using: visibleToScope,
    withCheck: visibleToScope,
  })

/** Queues (topics): the seed's `message_topics`, unique by name within a tenant. */
export const messageTopics = pgTable(
  'message_topics',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    tenantId: uuid('tenant_id').notNull(),
    name: varchar('name', { length: 200 }).notNull(),
    displayName: varchar('display_name', { length: 200 }),
    description: text('description'),
    topicType: varchar('topic_type', { length: 50 }).notNull().default('redis_stream'),
    partitionCount: integer('partition_count').notNull().default(1),
    replicationFactor: integer('replication_factor').notNull().default(1),
    retentionMs: bigint('retention_ms', { mode: 'number' }).notNull().default(604_800_000),
    maxLength: integer('max_length').notNull().default(10_000),
    overflow: varchar('overflow', { length: 20 }).notNull().default('reject'),
    messageFormat: varchar('message_format', { length: 50 }).notNull().default('json'),
    schemaDefinition: jsonb('schema_definition'),
    compressionType: varchar('compression_type', { length: 20 }).notNull().default('none'),
    encrypted: boolean('encrypted').notNull().default(false),
    isPublic: boolean('is_public').notNull().default(false),
    allowedProducers: jsonb('allowed_producers')
      .$type<string[]>()
      .notNull()
      .default(sql`'[]'::jsonb`),
    allowedConsumers: jsonb('allowed_consumers')
      .$type<string[]>()
      .notNull()
      .default(sql`'[]'::jsonb`),
    status: varchar('status', { length: 20 }).notNull().default('active'),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (t) => [
    uniqueIndex('message_topics_tenant_name_key').on(t.tenantId, t.name),
    index('message_topics_public_idx').on(t.isPublic).where(sql`${t.isPublic}`),
    tenantRowSecurity(),
  ]
)

/** Subscriptions: one consumer in one consumer group of a queue (the seed's table). */
export const messageSubscriptions = pgTable(
  'message_subscriptions',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    tenantId: uuid('tenant_id').notNull(),
    topicId: uuid('topic_id')
      .notNull()
      .references(() => messageTopics.id, { onDelete: 'cascade' }),
    consumerGroup: varchar('consumer_group', { length: 200 }).notNull(),
    consumerName: varchar('consumer_name', { length: 200 }).notNull(),
    subscriptionType: varchar('subscription_type', { length: 50 }).notNull(),
    offsetResetPolicy: varchar('offset_reset_policy', { length: 20 }).notNull().default('latest'),
    maxPollRecords: integer('max_poll_records').notNull().default(500),
    sessionTimeoutMs: integer('session_timeout_ms').notNull().default(30_000),
    heartbeatIntervalMs: integer('heartbeat_interval_ms').notNull().default(3000),
    handlerConfig: jsonb('handler_config')
      .$type<Record<string, unknown>>()
      .notNull()
      .default(sql`'{}'::jsonb`),
    /** Webhook signing secret, sealed with the tenant's key (never stored in clear). */
    signingSecret: text('signing_secret'),
    deadLetterQueue: varchar('dead_letter_queue', { length: 200 }),
    maxRetryAttempts: integer('max_retry_attempts').notNull().default(3),
    retryDelayMs: integer('retry_delay_ms').notNull().default(1000),
    retryBackoff: varchar('retry_backoff', { length: 20 }).notNull().default('exponential'),
    messageFilter: jsonb('message_filter'),
    ordering: varchar('ordering', { length: 10 }).notNull().default('none'),
    status: varchar('status', { length: 20 }).notNull().default('active'),
    statusReason: text('status_reason'),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
    lastConsumedAt: at('last_consumed_at'),
  },
  (t) => [
    uniqueIndex('message_subscriptions_tenant_topic_group_consumer_key').on(
      t.tenantId,
      t.topicId,
      t.consumerGroup,
      t.consumerName
    ),
    index('message_subscriptions_topic_idx').on(t.topicId),
    tenantRowSecurity(),
  ]
)

/** The ledger of messages, written in batches by the worker (the seed's `message_records`). */
export const messageRecords = pgTable(
  'message_records',
  {
    // No surrogate `id`: a message is its queue's (tenant, queue, message id). A random UUID
    // key was a second index that every insert wrote at a random place, about a quarter of
    // PostgreSQL's work per ledger row (docs/DECISIONS.md, Ledger).
    tenantId: uuid('tenant_id').notNull(),
    // No foreign key: one cost PostgreSQL a lookup and a lock of the queue per row, about a
    // third of the ledger's insert. The writer locks each queue once per batch instead, and a
    // queue's delete removes its rows (queue-repository.ts).
    topicId: uuid('topic_id').notNull(),
    messageKey: varchar('message_key', { length: 500 }),
    messageId: varchar('message_id', { length: 200 }).notNull(),
    correlationId: varchar('correlation_id', { length: 200 }),
    headers: jsonb('headers').$type<Record<string, string>>().notNull().default(sql`'{}'::jsonb`),
    // The payload's text as its stream holds it (JSON, or sealed: `content_type` tells), not
    // jsonb: parsing it cost about a fifth of PostgreSQL's work per row, and nothing queries
    // into it (docs/DECISIONS.md, Ledger).
    payload: text('payload'),
    payloadSize: integer('payload_size'),
    contentType: varchar('content_type', { length: 100 }).notNull().default('application/json'),
    partitionId: integer('partition_id'),
    offsetValue: bigint('offset_value', { mode: 'number' }),
    // No status, consumption time or retry count: they are read from the message's
    // consumption_records. Keeping them here rewrote this wide row on every ack, over a third of
    // PostgreSQL's work per consumed message.
    publishedAt: at('published_at').notNull().defaultNow(),
    scheduledAt: at('scheduled_at'),
    expiresAt: at('expires_at'),
    producerId: varchar('producer_id', { length: 200 }),
    traceId: varchar('trace_id', { length: 100 }),
    /** When an operator deleted it, or redrove it out of this (dead-letter) queue. */
    removedAt: at('removed_at'),
  },
  (t) => [
    primaryKey({
      name: 'message_records_pkey',
      columns: [t.tenantId, t.topicId, t.messageId],
    }),
    tenantRowSecurity(),
  ]
)

/** One delivery outcome of a message to a subscription (the seed's `consumption_records`). */
export const consumptionRecords = pgTable(
  'consumption_records',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    tenantId: uuid('tenant_id').notNull(),
    // No foreign key, as for message_records.topic_id.
    subscriptionId: uuid('subscription_id'),
    messageId: varchar('message_id', { length: 200 }).notNull(),
    consumerInstance: varchar('consumer_instance', { length: 200 }).notNull(),
    partitionId: integer('partition_id'),
    offsetValue: bigint('offset_value', { mode: 'number' }),
    status: varchar('status', { length: 20 }).notNull(),
    processingTimeMs: integer('processing_time_ms'),
    errorMessage: text('error_message'),
    /** The webhook receiver's HTTP status of a failed push (other attempts: null). */
    statusCode: smallint('status_code'),
    retryCount: integer('retry_count').notNull().default(0),
    consumedAt: at('consumed_at').notNull().defaultNow(),
    processedAt: at('processed_at'),
    nextRetryAt: at('next_retry_at'),
  },
  (t) => [
    index('consumption_records_tenant_message_idx').on(t.tenantId, t.messageId),
    tenantRowSecurity(),
  ]
)

/** Recurring (cron) schedules that publish to a queue. */
export const messageSchedules = pgTable(
  'message_schedules',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    tenantId: uuid('tenant_id').notNull(),
    topicId: uuid('topic_id')
      .notNull()
      .references(() => messageTopics.id, { onDelete: 'cascade' }),
    cron: varchar('cron', { length: 200 }).notNull(),
    timezone: varchar('timezone', { length: 64 }).notNull().default('UTC'),
    payload: jsonb('payload'),
    /** The payload sealed with the tenant's key, instead of `payload`, for encrypted queues. */
    sealedPayload: text('sealed_payload'),
    headers: jsonb('headers').$type<Record<string, string>>().notNull().default(sql`'{}'::jsonb`),
    messageKey: varchar('message_key', { length: 500 }),
    status: varchar('status', { length: 20 }).notNull().default('active'),
    nextRunAt: at('next_run_at'),
    lastRunAt: at('last_run_at'),
    runs: integer('runs').notNull().default(0),
    maxRuns: integer('max_runs'),
    startAt: at('start_at'),
    endAt: at('end_at'),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (t) => [
    index('message_schedules_tenant_idx').on(t.tenantId),
    index('message_schedules_due_idx').on(t.nextRunAt).where(sql`${t.status} = 'active'`),
    tenantRowSecurity(),
  ]
)

export type TopicRow = typeof messageTopics.$inferSelect
export type NewTopicRow = typeof messageTopics.$inferInsert
