import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { buildDeps, type Deps } from '../../src/deps'
import { type PrivateRedis, startPrivateRedis } from '../../src/local/redis-server'
import { createLogger } from '../../src/observability/logger'
import { testConfig } from './harness'

/**
 * Dependencies on a redis-server of their own, which a test may freeze (SIGSTOP) or kill
 * without disturbing the run's shared one.
 */
export interface OutageDeps {
  deps: Deps
  redis: PrivateRedis
  freeze(): void
  thaw(): void
  kill(): void
  close(): Promise<void>
}

/** Starts a private redis-server in a temporary directory and builds deps on it. */
export async function startOutageDeps(): Promise<OutageDeps> {
  const dir = mkdtempSync(join(tmpdir(), 'mq-outage-'))
  const redis = await startPrivateRedis(join(dir, 'redis'))
  let frozen = false
  const deps = await buildDeps(
    // Its own standalone server even in a cluster run (TEST_REDIS_CLUSTER=1), and the run's
    // database: on PGlite that is the instance already open, not a second one to start.
    testConfig({ REDIS_URL: redis.url, REDIS_CLUSTER_NODES: '' }),
    createLogger('silent')
  ).catch(async (err) => {
    await redis.stop()
    rmSync(dir, { recursive: true, force: true })
    throw err
  })
  return {
    deps,
    redis,
    freeze: () => {
      process.kill(redis.pid, 'SIGSTOP')
      frozen = true
    },
    thaw: () => {
      process.kill(redis.pid, 'SIGCONT')
      frozen = false
    },
    kill: () => {
      if (frozen) process.kill(redis.pid, 'SIGCONT')
      frozen = false
      process.kill(redis.pid, 'SIGKILL')
    },
    close: async () => {
      // A stopped process cannot act on SIGTERM: thaw it first so stop() returns.
      if (frozen) process.kill(redis.pid, 'SIGCONT')
      await deps.close()
      await redis.stop()
      rmSync(dir, { recursive: true, force: true })
    },
  }
}

/** Times one call; @returns its result and how long it took in ms. */
export async function timed<T>(fn: () => Promise<T>): Promise<{ result: T; ms: number }> {
  const start = performance.now()
  const result = await fn()
  return { result, ms: performance.now() - start }
}
