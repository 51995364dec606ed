import type { Hono } from 'hono'
import type { MergeSchemaPath, Schema } from 'hono/types'
import type { Deps } from '../deps'
import type { TenantRateGate } from './middleware/rate-limit'
import { createConsumeRouter } from './routes/consume'
import { createHealthHandler, createHealthRouter } from './routes/health'
import { createInternalRouter } from './routes/internal'
import { createMessagesRouter } from './routes/messages'
import { createMetricsRouter, createPrometheusRouter } from './routes/metrics'
import { createPublishRouter } from './routes/publish'
import { createQueueMessagesRouter } from './routes/queue-messages'
import { createQueuesRouter } from './routes/queues'
import { createSchedulesRouter } from './routes/schedules'
import { createSubscriptionsRouter } from './routes/subscriptions'

export const API_BASE = '/api/v1/mq'

/** What the HTTP app is built from. */
export type AppDeps = Pick<
  Deps,
  | 'config'
  | 'logger'
  | 'auth'
  | 'rateLimiter'
  | 'queueDeps'
  | 'publishDeps'
  | 'subscriptionDeps'
  | 'consumeDeps'
  | 'scheduleDeps'
  | 'inspectDeps'
  | 'health'
  | 'statusDeps'
  | 'metrics'
  | 'reporter'
  | 'audit'
>

/**
 * The mount table: each router under its prefix, in the order `createApp` mounts them (two share
 * `/subscriptions`, two `/queues`; null is a router turned off by the config). The OpenAPI document is
 * generated from what is mounted, and `ApiSchema` (the types `hono/client` calls by) is derived
 * from this table, so a router added here is in both. `/openapi.json`, `/docs` and the console
 * are pages about the API rather than part of it; `createApp` mounts them after.
 */
export function apiMounts(deps: AppDeps, admitTenant?: TenantRateGate['admit']) {
  return [
    ['/', createHealthHandler(deps.health)],
    [API_BASE, createHealthRouter(deps.health, deps.statusDeps)],
    [`${API_BASE}/queues`, createQueuesRouter(deps.queueDeps, deps.inspectDeps, deps.audit)],
    [`${API_BASE}/queues`, createQueueMessagesRouter(deps.inspectDeps, deps.audit)],
    [`${API_BASE}/subscriptions`, createSubscriptionsRouter(deps.subscriptionDeps, deps.audit)],
    [`${API_BASE}/subscriptions`, createConsumeRouter(deps.consumeDeps)],
    [`${API_BASE}/messages`, createMessagesRouter(deps.inspectDeps)],
    [`${API_BASE}/schedules`, createSchedulesRouter(deps.scheduleDeps)],
    [
      API_BASE,
      createPublishRouter(deps.publishDeps, {
        maxBatchSize: deps.config.MAX_BATCH_SIZE,
        schedules: deps.scheduleDeps,
      }),
    ],
    [`${API_BASE}/metrics`, createMetricsRouter(deps.reporter)],
    deps.config.METRICS_ENABLED
      ? (['/', createPrometheusRouter(deps.metrics, deps.config.METRICS_TOKEN)] as const)
      : null,
    ['/internal/mq', createInternalRouter({ ...deps, admitTenant })],
  ] as const
}

type MountedSchema<Entry> =
  // biome-ignore lint/suspicious/noExplicitAny: the router's env and base path do not matter
  Entry extends readonly [infer Path extends string, Hono<any, infer S extends Schema, any>]
    ? MergeSchemaPath<S, Path>
    : never

/** The API's routes as types, for `hono/client`, from the mount table. */
export type ApiSchema = MountedSchema<ReturnType<typeof apiMounts>[number]>
