import type { Hono } from 'hono'
import type { MergeSchemaPath, Schema } from 'hono/types'
import type { createConsumeRouter } from './routes/consume'
import type { createHealthHandler, createHealthRouter } from './routes/health'
import type { createInternalRouter } from './routes/internal'
import type { createMessagesRouter } from './routes/messages'
import type { createMetricsRouter } from './routes/metrics'
import type { createPublishRouter } from './routes/publish'
import type { createQueuesRouter } from './routes/queues'
import type { createSchedulesRouter } from './routes/schedules'
import type { createSubscriptionsRouter } from './routes/subscriptions'

// biome-ignore lint/suspicious/noExplicitAny: any router factory, whatever its dependencies
type Mounted<Path extends string, Factory extends (...args: any[]) => unknown> =
  // biome-ignore lint/suspicious/noExplicitAny: the router's env and base path do not matter
  ReturnType<Factory> extends Hono<any, infer S extends Schema, any>
    ? MergeSchemaPath<S, Path>
    : never

/**
 * The JSON routes `createApp` mounts, as types, for `hono/client`. createApp mounts routers
 * one statement at a time (each role adds its own in a small edit), which leaves Hono's
 * inferred schema empty; this names the same mounts. A router mounted there belongs here too.
 * `/metrics` (Prometheus text), `/openapi.json` and `/docs` are not for the client.
 */
export type ApiSchema =
  | Mounted<'/', typeof createHealthHandler>
  | Mounted<'/api/v1/mq', typeof createHealthRouter>
  | Mounted<'/api/v1/mq/queues', typeof createQueuesRouter>
  | Mounted<'/api/v1/mq/subscriptions', typeof createSubscriptionsRouter>
  | Mounted<'/api/v1/mq/subscriptions', typeof createConsumeRouter>
  | Mounted<'/api/v1/mq/messages', typeof createMessagesRouter>
  | Mounted<'/api/v1/mq/schedules', typeof createSchedulesRouter>
  | Mounted<'/api/v1/mq', typeof createPublishRouter>
  | Mounted<'/api/v1/mq/metrics', typeof createMetricsRouter>
  | Mounted<'/internal/mq', typeof createInternalRouter>
