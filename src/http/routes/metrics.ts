import { createHash, timingSafeEqual } from 'node:crypto'
import type { Context } from 'hono'
import { MqError } from '../../domain/errors'
import type { Metrics } from '../../observability/metrics'
import type { MetricsReporter } from '../../observability/metrics-report'
import type { AppEnv } from '../env'
import { type Guard, routes } from '../route'
import { createRouter } from '../router'
import { commonErrors, errorResponse, json } from '../schemas/common'
import {
  ConsumerMetricsListSchema,
  MessageQueueMetricsSchema,
  PrometheusTextSchema,
  TopicMetricsListSchema,
} from '../schemas/metrics'

const route = routes('Monitoring')
const reader: Guard = { orService: 'mq:read' }
const scope = 'mq:read for the tenant’s own queues; a service token without X-Tenant-Id for all'

const summary = route('get', '/', reader, {
  summary: `Totals, consumer rates and latency percentiles (${scope})`,
  responses: {
    200: json(MessageQueueMetricsSchema, 'the seed’s MessageQueueMetrics'),
    ...commonErrors,
  },
})

const topics = route('get', '/topics', reader, {
  summary: `Each queue’s length, pending, lag and rates (${scope})`,
  responses: { 200: json(TopicMetricsListSchema, 'one item per queue'), ...commonErrors },
})

const consumers = route('get', '/consumers', reader, {
  summary: `Each subscription’s lag, counters and processing time (${scope})`,
  responses: { 200: json(ConsumerMetricsListSchema, 'one item per subscription'), ...commonErrors },
})

/** The tenant a metrics request is about; undefined for a service token naming none. */
const viewedTenant = (c: Context<AppEnv>) => {
  const caller = c.get('caller')
  return caller.kind === 'tenant' ? caller.tenant.tenantId : undefined
}

/** `/api/v1/mq/metrics`, `/metrics/topics`, `/metrics/consumers` */
export function createMetricsRouter(reporter: MetricsReporter) {
  return createRouter()
    .openapi(summary, async (c) => c.json(await reporter.summary(viewedTenant(c)), 200))
    .openapi(topics, async (c) => c.json({ items: await reporter.topics(viewedTenant(c)) }, 200))
    .openapi(consumers, async (c) =>
      c.json({ items: await reporter.consumers(viewedTenant(c)) }, 200)
    )
}

const prometheus = route('get', '/metrics', null, {
  summary: 'Prometheus metrics (a bearer METRICS_TOKEN when one is set; 404 when disabled)',
  security: [{}, { metricsToken: [] }],
  responses: {
    200: {
      description: 'text exposition format 0.0.4',
      content: { 'text/plain': { schema: PrometheusTextSchema } },
    },
    401: errorResponse('METRICS_TOKEN is set and the request does not carry it'),
  },
})

const digest = (s: string) => createHash('sha256').update(s).digest()

/** `GET /metrics` outside the API base, for Prometheus. */
export function createPrometheusRouter(metrics: Metrics, token: string | undefined) {
  const expected = token === undefined ? undefined : digest(token)
  return createRouter().openapi(prometheus, async (c) => {
    if (expected) {
      const given = /^Bearer\s+(\S+)$/i.exec(c.req.header('authorization') ?? '')?.[1] ?? ''
      if (!timingSafeEqual(digest(given), expected)) {
        throw new MqError('MQ_UNAUTHORIZED', 'a bearer METRICS_TOKEN is required')
      }
    }
    const { contentType, body } = await metrics.exposition()
    return c.body(body, 200, { 'content-type': contentType })
  })
}
