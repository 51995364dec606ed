import { unavailable } from '../../domain/errors'
import type { HealthService } from '../../observability/health'
import { type StatusDeps, statusReport } from '../../observability/status'
import { routes } from '../route'
import { createRouter } from '../router'
import { commonErrors, errorResponse, json } from '../schemas/common'
import { HealthSchema, PingSchema, StatusSchema } from '../schemas/health'

const route = routes('Health')

/** The one client error a public route can answer: every route refuses an oversized body. */
const tooLarge = errorResponse('a request body over MAX_REQUEST_SIZE (MQ_MESSAGE_TOO_LARGE)')

const health = route('get', '/health', null, {
  summary: 'Health of the service and each backing store',
  security: [],
  responses: {
    200: json(HealthSchema, 'healthy or degraded'),
    413: tooLarge,
    503: json(HealthSchema, 'unhealthy'),
  },
})

const ping = route('get', '/health/ping', null, {
  summary: 'Round trip to Redis',
  security: [],
  responses: { 200: json(PingSchema, 'pong'), 413: tooLarge, 503: commonErrors[503] },
})

const status = route(
  'get',
  '/status',
  { orService: 'mq:admin' },
  {
    summary: 'Service, Redis and queue status (mq:admin, or a service token for every tenant)',
    responses: { 200: json(StatusSchema, 'status'), ...commonErrors },
  }
)

/** The public health answer, also mounted at `/health` outside the API base. */
export function createHealthHandler(service: HealthService) {
  return createRouter().openapi(health, async (c) => {
    const report = await service.report()
    // Anyone may ask; why a check failed (hosts, ports, driver messages) is for the service
    // token's /internal/mq/health-detailed only.
    const details = Object.fromEntries(
      Object.entries(report.details).map(([name, { message: _message, ...rest }]) => [name, rest])
    ) as typeof report.details
    return c.json({ ...report, details }, report.status === 'unhealthy' ? 503 : 200)
  })
}

/** `/api/v1/mq/health`, `/health/ping`, `/status` */
export function createHealthRouter(service: HealthService, statusDeps: StatusDeps) {
  return createHealthHandler(service)
    .openapi(ping, async (c) => {
      let latency: number
      try {
        latency = await service.ping()
      } catch {
        throw unavailable('redis')
      }
      return c.json({ status: 'pong' as const, timestamp: new Date().toISOString(), latency }, 200)
    })
    .openapi(status, async (c) => {
      const caller = c.get('caller')
      const tenantId = caller.kind === 'tenant' ? caller.tenant.tenantId : undefined
      return c.json(await statusReport(statusDeps, tenantId), 200)
    })
}
