import type { Queue, QueueStats } from '../domain/queues'
import type { RedisClient } from '../streams/redis'

/** The seed's `MessageQueueStatusResponse`. */
export interface StatusReport {
  service: string
  status: 'running'
  timestamp: string
  redis: {
    version: string
    uptime: number
    connectedClients: number
    usedMemory: string
    totalCommandsProcessed: number
  }
  queues: Array<
    { name: string; tenantId?: string; status: string } & Partial<QueueStats> & { error?: string }
  >
  application: {
    runtime: string
    nodeVersion: string
    pid: number
    uptime: number
    memory: { rss: number; heapUsed: number; heapTotal: number }
  }
}

export interface StatusDeps {
  redis: RedisClient
  listQueues: (tenantId: string | undefined, limit: number) => Promise<Queue[]>
  queueStats: (queue: Queue) => Promise<QueueStats>
}

/** At most this many queues are listed, so the answer stays small and fast. */
const MAX_LISTED_QUEUES = 100

function parseInfo(info: string): Record<string, string> {
  const out: Record<string, string> = {}
  for (const line of info.split('\r\n')) {
    const i = line.indexOf(':')
    if (i > 0 && !line.startsWith('#')) out[line.slice(0, i)] = line.slice(i + 1)
  }
  return out
}

/**
 * The service's status: Redis server figures, the queues of the tenant (or of every tenant
 * for a service token) with their live stats, and this process.
 */
export async function statusReport(
  deps: StatusDeps,
  tenantId: string | undefined
): Promise<StatusReport> {
  const [rawInfo, queues] = await Promise.all([
    deps.redis.info(),
    deps.listQueues(tenantId, MAX_LISTED_QUEUES),
  ])
  const info = parseInfo(rawInfo)
  const listed = await Promise.all(
    queues.map(async (q) => {
      const base = { name: q.name, ...(tenantId ? {} : { tenantId: q.tenantId }), status: q.status }
      try {
        return { ...base, ...(await deps.queueStats(q)) }
      } catch (err) {
        return { ...base, error: (err as Error).message }
      }
    })
  )
  const mem = process.memoryUsage()
  const mb = (n: number) => Math.round(n / 1024 / 1024)
  return {
    service: 'message-queue-service',
    status: 'running',
    timestamp: new Date().toISOString(),
    redis: {
      version: info.redis_version ?? 'unknown',
      uptime: Number(info.uptime_in_seconds ?? 0),
      connectedClients: Number(info.connected_clients ?? 0),
      usedMemory: info.used_memory_human ?? 'unknown',
      totalCommandsProcessed: Number(info.total_commands_processed ?? 0),
    },
    queues: listed,
    application: {
      runtime: `bun ${Bun.version}`,
      nodeVersion: process.version,
      pid: process.pid,
      uptime: Math.round(process.uptime()),
      memory: { rss: mb(mem.rss), heapUsed: mb(mem.heapUsed), heapTotal: mb(mem.heapTotal) },
    },
  }
}
