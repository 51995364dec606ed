import { z } from '@hono/zod-openapi'
import { CHECK_NAMES, type CheckName } from '../../observability/health'

const checkStatus = z.enum(['healthy', 'degraded', 'unhealthy'])
const perCheck = <T extends z.ZodType>(schema: T) =>
  z.object(Object.fromEntries(CHECK_NAMES.map((n) => [n, schema])) as Record<CheckName, T>)

export const HealthSchema = z
  .object({
    status: checkStatus,
    timestamp: z.string(),
    service: z.string(),
    version: z.string(),
    uptime: z.number(),
    responseTime: z.number(),
    checks: perCheck(checkStatus),
    details: perCheck(
      z.object({ status: checkStatus, latencyMs: z.number(), message: z.string().optional() })
    ),
    metrics: z.record(z.string(), z.unknown()),
  })
  .openapi('HealthCheckResponse')

export const PingSchema = z
  .object({ status: z.literal('pong'), timestamp: z.string(), latency: z.number() })
  .openapi('Ping')

export const StatusSchema = z
  .object({
    service: z.string(),
    status: z.literal('running'),
    timestamp: z.string(),
    redis: z.object({
      version: z.string(),
      uptime: z.number(),
      connectedClients: z.number(),
      usedMemory: z.string(),
      totalCommandsProcessed: z.number(),
    }),
    queues: z.array(
      z.object({
        name: z.string(),
        tenantId: z.string().optional(),
        status: z.string(),
        length: z.number().optional(),
        pending: z.number().optional(),
        scheduled: z.number().optional(),
        consumerGroups: z.number().optional(),
        lastMessageId: z.string().nullable().optional(),
        ledgerGap: z.number().optional(),
        error: z.string().optional(),
      })
    ),
    application: z.object({
      runtime: z.string(),
      nodeVersion: z.string(),
      pid: z.number(),
      uptime: z.number(),
      memory: z.object({ rss: z.number(), heapUsed: z.number(), heapTotal: z.number() }),
    }),
  })
  .openapi('MessageQueueStatusResponse')
