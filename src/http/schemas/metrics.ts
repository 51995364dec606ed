import { z } from '@hono/zod-openapi'
import { isoDate } from './common'
import { FlowStatsSchema } from './subscriptions'

const count = z.number().int().min(0)
const rate = z.number().min(0).openapi({ description: 'per second over the last minute' })
const latency = z
  .number()
  .min(0)
  .openapi({ description: 'ms from deliverable to first delivery, over the last minute' })
const allTenantsOnly = z
  .guid()
  .optional()
  .openapi({ description: 'the queue’s tenant; only in the all-tenant view (service token)' })

/** The seed's `MessageQueueMetrics`. */
export const MessageQueueMetricsSchema = z
  .object({
    redisStreams: z.object({
      totalStreams: count,
      totalConsumerGroups: count,
      totalMessages: count,
      pendingMessages: count,
    }),
    consumers: z.object({
      activeConsumers: count.openapi({
        description: 'active subscriptions that received or acknowledged in the last minute',
      }),
      totalLag: count,
      processingRate: rate.openapi({ description: 'acknowledgements per second, last minute' }),
      errorRate: rate.openapi({
        description: 'failed deliveries (redelivered or dead-lettered) per second, last minute',
      }),
    }),
    performance: z.object({
      averageLatency: latency,
      p95Latency: latency,
      p99Latency: latency,
      throughput: rate.openapi({ description: 'messages accepted per second, last minute' }),
    }),
  })
  .openapi('MessageQueueMetrics')

export const TopicMetricsSchema = z
  .object({
    tenantId: allTenantsOnly,
    queue: z.string(),
    partitions: count,
    length: count,
    pending: count,
    scheduled: count,
    lag: count,
    publishRate: rate,
    consumeRate: rate.openapi({ description: 'acknowledgements per second over every group' }),
    consumerGroups: count,
  })
  .openapi('TopicMetrics')

export const TopicMetricsListSchema = z
  .object({ items: z.array(TopicMetricsSchema) })
  .openapi('TopicMetricsList')

export const ConsumerMetricsSchema = z
  .object({
    tenantId: allTenantsOnly,
    subscriptionId: z.uuid(),
    queue: z.string(),
    consumerGroup: z.string(),
    consumerName: z.string(),
    lag: count,
    pending: count,
    delivered: count,
    acked: count,
    failed: count,
    deadLettered: count,
    avgProcessingMs: z.number().min(0).nullable().openapi({
      description: 'mean delivery-to-ack time over the last minute; null without acks',
    }),
    lastConsumedAt: isoDate.nullable(),
    flow: FlowStatsSchema.optional().openapi({ description: 'webhooks only' }),
  })
  .openapi('ConsumerMetrics')

export const ConsumerMetricsListSchema = z
  .object({ items: z.array(ConsumerMetricsSchema) })
  .openapi('ConsumerMetricsList')

/** Prometheus text exposition format 0.0.4. */
export const PrometheusTextSchema = z.string().openapi({ example: 'mq_messages_acked_total 42\n' })
