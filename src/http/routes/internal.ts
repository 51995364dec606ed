import { z } from '@hono/zod-openapi'
import type { Context } from 'hono'
import { createMiddleware } from 'hono/factory'
import { type DomainContext, SCOPES } from '../../domain/context'
import { MqError, notFound } from '../../domain/errors'
import { type PublishDeps, publishMessage } from '../../domain/publish'
import { ensureQueueLike, type QueueDeps } from '../../domain/queues'
import type { HealthService } from '../../observability/health'
import type { MetricsReporter } from '../../observability/metrics-report'
import type { AppEnv } from '../env'
import type { Authenticator } from '../middleware/auth'
import type { TenantRateGate } from '../middleware/rate-limit'
import { publishedAnswer } from '../presenters'
import { routes } from '../route'
import { createRouter } from '../router'
import { commonErrors, errorResponse, json, jsonBody } from '../schemas/common'
import { HealthSchema } from '../schemas/health'
import {
  InternalPublishBody,
  InternalQueueStatusSchema,
  InternalTenantQuery,
} from '../schemas/internal'
import { MessageQueueMetricsSchema } from '../schemas/metrics'
import { PublishResultSchema } from '../schemas/publish'

/** What the internal API needs, built once at start-up. */
export interface InternalDeps {
  auth: Authenticator
  queueDeps: QueueDeps
  publishDeps: PublishDeps
  health: HealthService
  reporter: MetricsReporter
  /**
   * Takes one of the tenant's `TENANT_RATE_LIMIT` tokens or throws 429, as on the public API;
   * absent when the limit is off. Publishes name their tenant in the body, so the check is in
   * the handler rather than a middleware.
   */
  admitTenant?: TenantRateGate['admit']
}

const route = routes('Internal')
const security = [{ serviceToken: [] }]
const errors = {
  400: commonErrors[400],
  401: errorResponse('no valid X-Service-Token (a bearer JWT is refused here)'),
  500: commonErrors[500],
  503: commonErrors[503],
}
const guid = z.guid()

/** Only platform services: a JWT, even a valid one, is 401 here. */
const serviceTokenOnly = (auth: Authenticator) =>
  createMiddleware<AppEnv>(async (c, next) => {
    const token = c.req.header('x-service-token')
    if (token === undefined || !auth.verifyServiceToken(token)) {
      throw new MqError('MQ_UNAUTHORIZED', 'the internal API takes X-Service-Token only')
    }
    c.set('caller', { kind: 'service' })
    await next()
  })

/** The tenant named by the body or query, or by X-Tenant-Id, when either names one. */
function namedTenant(c: Context<AppEnv>, named: string | undefined): string | undefined {
  const header = c.req.header('x-tenant-id')
  if (header !== undefined && !guid.safeParse(header).success) {
    throw new MqError('MQ_VALIDATION_FAILED', 'X-Tenant-Id must be a UUID')
  }
  if (named && header && named.toLowerCase() !== header.toLowerCase()) {
    throw new MqError('MQ_VALIDATION_FAILED', 'tenantId and X-Tenant-Id name different tenants')
  }
  return (named ?? header)?.toLowerCase()
}

/** Acts for the named tenant with every scope, as a service token with X-Tenant-Id does. */
function actFor(c: Context<AppEnv>, named: string | undefined): DomainContext {
  const tenantId = namedTenant(c, named)
  if (!tenantId) {
    throw new MqError('MQ_VALIDATION_FAILED', 'name the tenant with tenantId or X-Tenant-Id')
  }
  const principal = { kind: 'service' as const, name: c.req.header('x-service-name') ?? null }
  c.set('tenant', { tenantId, scopes: new Set(SCOPES), principal })
  return { tenantId, principal, requestId: c.get('requestId') }
}

const publishTo = <Q extends string>(queue: Q, summary: string) =>
  route('post', `/${queue}`, null, {
    summary: `${summary}: publish to the tenant’s '${queue}' queue, created on first use`,
    security,
    request: { body: jsonBody(InternalPublishBody) },
    responses: {
      201: json(PublishResultSchema, 'stored'),
      200: json(PublishResultSchema, 'a duplicate of a message published within the dedup window'),
      ...errors,
      409: errorResponse('the queue is paused or archived (MQ_QUEUE_PAUSED)'),
      413: errorResponse('payload over MAX_MESSAGE_SIZE (MQ_MESSAGE_TOO_LARGE)'),
      415: commonErrors[415],
      429: commonErrors[429],
    },
  })

const statusOf = <P extends string>(path: P, queue: string) =>
  route('get', `/${path}`, null, {
    summary: `Figures and rates of the tenant’s '${queue}' queue`,
    security,
    request: { query: InternalTenantQuery },
    responses: {
      200: json(InternalQueueStatusSchema, 'the queue'),
      ...errors,
      404: errorResponse('the tenant has not used this queue yet (MQ_QUEUE_NOT_FOUND)'),
    },
  })

const metrics = route('get', '/metrics', null, {
  summary: 'MessageQueueMetrics of every tenant (or of the one X-Tenant-Id names)',
  security,
  request: { query: InternalTenantQuery },
  responses: { 200: json(MessageQueueMetricsSchema, 'the metrics'), ...errors },
})

const healthDetailed = route('get', '/health-detailed', null, {
  summary: 'Health with each check’s status, timing and message',
  security,
  responses: {
    200: json(HealthSchema, 'healthy or degraded'),
    503: json(HealthSchema, 'unhealthy'),
    401: errors[401],
  },
})

/** `/internal/mq/*`: the platform services' API (API.md "Internal API"). */
export function createInternalRouter(deps: InternalDeps) {
  const defaults = {
    partitionCount: 1,
    encrypted: false,
    retentionMs: deps.queueDeps.defaults.retentionMs,
  }
  const publish = async (
    c: Context<AppEnv>,
    queue: string,
    { tenantId, ...message }: z.infer<typeof InternalPublishBody>
  ) => {
    const ctx = actFor(c, tenantId)
    await deps.admitTenant?.(c, ctx.tenantId)
    await ensureQueueLike(deps.queueDeps, ctx, queue, defaults)
    return publishedAnswer(c, await publishMessage(deps.publishDeps, ctx, queue, message))
  }
  const status = async (c: Context<AppEnv>, queue: string, named: string | undefined) => {
    const ctx = actFor(c, named)
    const topic = await deps.reporter.topic(ctx.tenantId, queue)
    if (!topic) throw notFound('MQ_QUEUE_NOT_FOUND', 'queue', queue)
    return c.json({ ...topic, tenantId: ctx.tenantId }, 200)
  }

  const router = createRouter()
  router.use('*', serviceTokenOnly(deps.auth))
  return router
    .openapi(publishTo('user-events', 'For the user service'), (c) =>
      publish(c, 'user-events', c.req.valid('json'))
    )
    .openapi(publishTo('user-notifications', 'For the user service'), (c) =>
      publish(c, 'user-notifications', c.req.valid('json'))
    )
    .openapi(publishTo('audit-logs', 'For the audit service'), (c) =>
      publish(c, 'audit-logs', c.req.valid('json'))
    )
    .openapi(statusOf('audit-queue-status', 'audit-logs'), (c) =>
      status(c, 'audit-logs', c.req.valid('query').tenantId)
    )
    .openapi(publishTo('notifications', 'For the notification service'), (c) =>
      publish(c, 'notifications', c.req.valid('json'))
    )
    .openapi(statusOf('notification-queue', 'notifications'), (c) =>
      status(c, 'notifications', c.req.valid('query').tenantId)
    )
    .openapi(metrics, async (c) =>
      c.json(await deps.reporter.summary(namedTenant(c, c.req.valid('query').tenantId)), 200)
    )
    .openapi(healthDetailed, async (c) => {
      const report = await deps.health.report()
      return c.json(report, report.status === 'unhealthy' ? 503 : 200)
    })
}
