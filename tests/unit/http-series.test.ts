import { expect, test } from 'bun:test'
import { Counter, Histogram, Registry } from 'prom-client'
import { HTTP_BUCKETS, Metrics } from '../../src/observability/metrics'

const OBSERVED: Array<[string, string, number, number]> = [
  ['POST', '/api/v1/mq/publish', 201, 0.0004],
  ['POST', '/api/v1/mq/publish', 201, 0.003],
  ['GET', 'unmatched', 404, 0.2],
  ['BREW', '/api/v1/mq/queues', 500, 45],
  ['POST', '/api/v1/mq/publish', 200, 0.001],
  ['GET', '/api/v1/mq/queues/:name', 200, 1],
  ['GET', 'unmatched', 404, 0.01],
]

/** The HTTP series as prom-client's own Counter and Histogram show them. */
async function reference(): Promise<string> {
  const registry = new Registry()
  const labelNames = ['method', 'route', 'status'] as const
  const requests = new Counter({
    name: 'mq_http_requests_total',
    help: 'HTTP requests by method, route pattern and status',
    labelNames,
    registers: [registry],
  })
  const durations = new Histogram({
    name: 'mq_http_request_duration_seconds',
    help: 'HTTP request duration by method, route pattern and status',
    labelNames,
    buckets: HTTP_BUCKETS,
    registers: [registry],
  })
  const methods = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']
  for (const [method, route, status, seconds] of OBSERVED) {
    const labels = {
      method: methods.includes(method) ? method : 'OTHER',
      route,
      status: `${status}`,
    }
    requests.inc(labels)
    durations.observe(labels, seconds)
  }
  return registry.metrics()
}

test("the HTTP series' exposition is what prom-client's Counter and Histogram would show", async () => {
  const metrics = new Metrics({
    flow: {} as never,
    logger: {} as never,
    queueLoads: async () => [],
  })
  for (const o of OBSERVED) metrics.observeHttp(...o)
  const http = (text: string) => text.split('\n').filter((l) => l.includes('mq_http_'))
  const shown = http((await metrics.exposition()).body)
  expect(shown.length).toBeGreaterThan(0)
  expect(shown).toEqual(http(await reference()))

  metrics.registry.resetMetrics()
  expect(http((await metrics.exposition()).body).filter((l) => !l.startsWith('#'))).toEqual([])
})
