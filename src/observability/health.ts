import type { Database } from '../db/client'
import type { Keys } from '../streams/keys'
import type { RedisClient } from '../streams/redis'

export type CheckStatus = 'healthy' | 'degraded' | 'unhealthy'

export interface CheckResult {
  status: CheckStatus
  latencyMs: number
  message?: string
}

export const CHECK_NAMES = [
  'redisStreams',
  'database',
  'queues',
  'consumers',
  'memory',
  'dependencies',
] as const
export type CheckName = (typeof CHECK_NAMES)[number]

/** The seed's `HealthCheckResponse`, plus each check's timing in `details`. */
export interface HealthReport {
  status: CheckStatus
  timestamp: string
  service: string
  version: string
  uptime: number
  responseTime: number
  checks: Record<CheckName, CheckStatus>
  details: Record<CheckName, CheckResult>
  metrics: Record<string, unknown>
}

export interface HealthDeps {
  redis: RedisClient
  database: Database
  keys: Keys
  version: string
  /** Other platform services whose `/health` is probed; their failure only degrades us. */
  dependencies: Record<string, string | undefined>
  dependencyCacheMs: number
  /** Queues of every tenant. */
  countQueues: () => Promise<number>
}

const CHECK_TIMEOUT_MS = 1500
const HEAP_LIMIT_MB = 400

/** Fails a check that takes longer than `ms` instead of letting it hang the answer. */
function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: Timer | undefined
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms`)), ms)
  })
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer))
}

async function timed(fn: () => Promise<CheckStatus | undefined>): Promise<CheckResult> {
  const start = performance.now()
  try {
    const status = (await withTimeout(fn(), CHECK_TIMEOUT_MS)) ?? 'healthy'
    return { status, latencyMs: Math.round(performance.now() - start) }
  } catch (err) {
    return {
      status: 'unhealthy',
      latencyMs: Math.round(performance.now() - start),
      message: (err as Error).message,
    }
  }
}

/**
 * The seed's health checks. Redis and PostgreSQL failing make the service unhealthy (503);
 * memory pressure and other services being down only degrade it (200), since it still serves.
 */
export class HealthService {
  private readonly startedAt = Date.now()
  private dependencyCache: { result: CheckResult; until: number } | undefined

  constructor(private readonly deps: HealthDeps) {}

  get uptimeSeconds(): number {
    return Math.round((Date.now() - this.startedAt) / 1000)
  }

  /** Round-trips Redis with PING; @returns latency in ms. */
  async ping(): Promise<number> {
    const start = performance.now()
    await this.deps.redis.ping()
    return Math.round(performance.now() - start)
  }

  private async checkRedisStreams(): Promise<undefined> {
    const key = this.deps.keys.healthStream(process.pid)
    const results = await this.deps.redis
      .multi()
      .xadd(key, '*', 'check', '1')
      .xrange(key, '-', '+', 'COUNT', 1)
      .del(key)
      .exec()
    const read = results?.[1]?.[1] as unknown[] | undefined
    if (!read || read.length === 0) throw new Error('stream write was not readable')
    return undefined
  }

  private async checkMemory(): Promise<CheckStatus> {
    // Bun counts ArrayBuffers (PGlite's WebAssembly memory among them) in heapUsed; heapTotal
    // is the JavaScript heap alone, which is what a leak grows.
    const heapMb = process.memoryUsage().heapTotal / 1024 / 1024
    return heapMb > HEAP_LIMIT_MB ? 'degraded' : 'healthy'
  }

  private async checkDependencies(): Promise<CheckResult> {
    if (this.dependencyCache && this.dependencyCache.until > Date.now())
      return this.dependencyCache.result
    const result = await timed(async () => {
      const urls = Object.entries(this.deps.dependencies).filter(([, url]) => url)
      const probes = await Promise.allSettled(
        urls.map(async ([name, url]) => {
          const res = await fetch(new URL('/health', url), {
            signal: AbortSignal.timeout(CHECK_TIMEOUT_MS - 100),
            redirect: 'manual',
          })
          if (!res.ok) throw new Error(`${name}: ${res.status}`)
        })
      )
      return probes.some((p) => p.status === 'rejected') ? 'degraded' : 'healthy'
    })
    // A dependency's outage must not make us unhealthy: we still serve without it.
    if (result.status === 'unhealthy') result.status = 'degraded'
    this.dependencyCache = { result, until: Date.now() + this.deps.dependencyCacheMs }
    return result
  }

  async report(): Promise<HealthReport> {
    const start = performance.now()
    let totalQueues: number | null = null
    const [redisStreams, database, queues, memory, dependencies] = await Promise.all([
      timed(() => this.checkRedisStreams()),
      timed(async () => {
        await this.deps.database.ping()
        return undefined
      }),
      timed(async () => {
        totalQueues = await this.deps.countQueues()
        return undefined
      }),
      timed(() => this.checkMemory()),
      this.checkDependencies(),
    ])
    // Consumer loops live in the worker role; until they report heartbeats there is
    // nothing to fail here.
    const consumers: CheckResult = { status: 'healthy', latencyMs: 0 }
    const details = { redisStreams, database, queues, consumers, memory, dependencies }
    const statuses = Object.values(details).map((d) => d.status)
    const status: CheckStatus = statuses.includes('unhealthy')
      ? 'unhealthy'
      : statuses.includes('degraded')
        ? 'degraded'
        : 'healthy'
    const mem = process.memoryUsage()
    return {
      status,
      timestamp: new Date().toISOString(),
      service: 'message-queue-service',
      version: this.deps.version,
      uptime: this.uptimeSeconds,
      responseTime: Math.round(performance.now() - start),
      checks: Object.fromEntries(Object.entries(details).map(([k, v]) => [k, v.status])) as Record<
        CheckName,
        CheckStatus
      >,
      details,
      metrics: {
        messageQueue: { totalQueues },
        system: {
          memory: {
            heap: Math.round(mem.heapTotal / 1024 / 1024),
            external: Math.round(mem.external / 1024 / 1024),
            rss: Math.round(mem.rss / 1024 / 1024),
          },
          uptime: this.uptimeSeconds,
          cpu: process.cpuUsage(),
        },
      },
    }
  }
}
