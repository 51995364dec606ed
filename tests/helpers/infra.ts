import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import postgres from 'postgres'
import { startPrivateRedis } from '../../src/local/redis-server'
import { startRedisCluster } from './cluster'

/**
 * The real stores one test run uses: a private redis-server on a free loopback port, and a
 * PostgreSQL database made for this run (dropped afterwards) on the server named by
 * TEST_PG_URL (default: the local one on 127.0.0.1:5432), or PGlite where none answers.
 * Nothing here touches another process's Redis database or PostgreSQL schema.
 */
export interface Infra {
  /** The private redis-server's URL; empty when the run uses a cluster. */
  redisUrl: string
  /** With TEST_REDIS_CLUSTER=1: the seed nodes of a three-master cluster; else empty. */
  redisClusterNodes: string
  /** Unset when PostgreSQL is not reachable: the service then runs on PGlite. */
  databaseUrl?: string
  dataDir: string
  stop(): Promise<void>
}

const PG_ADMIN_URL = process.env.TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres'

/** Creates an empty database for this run; @returns its URL and a function dropping it. */
export async function createTestDatabase(): Promise<
  { url: string; drop(): Promise<void> } | undefined
> {
  const admin = postgres(PG_ADMIN_URL, { max: 1, connect_timeout: 2, onnotice: () => {} })
  try {
    const name = `mq_test_${process.pid}_${Math.random().toString(36).slice(2, 8)}`
    await admin.unsafe(`create database ${name}`)
    const url = new URL(PG_ADMIN_URL)
    url.pathname = `/${name}`
    return {
      url: url.toString(),
      drop: async () => {
        const again = postgres(PG_ADMIN_URL, { max: 1, onnotice: () => {} })
        await again.unsafe(`drop database if exists ${name} with (force)`)
        await again.end()
      },
    }
  } catch {
    return undefined
  } finally {
    await admin.end({ timeout: 1 })
  }
}

/**
 * Starts the run's stores. With TEST_REDIS_CLUSTER=1 the service runs on a Redis Cluster of
 * three masters instead of one redis-server (`bun run test:cluster`).
 */
export async function startInfra(): Promise<Infra> {
  const dataDir = mkdtempSync(join(tmpdir(), 'mq-test-'))
  const cluster = process.env.TEST_REDIS_CLUSTER === '1'
  const redis = cluster
    ? await startRedisCluster(join(dataDir, 'cluster'))
    : await startPrivateRedis(join(dataDir, 'redis'))
  const database = await createTestDatabase()
  return {
    redisUrl: 'url' in redis ? redis.url : '',
    redisClusterNodes: 'nodes' in redis ? redis.nodes.join(',') : '',
    databaseUrl: database?.url,
    dataDir,
    stop: async () => {
      await redis.stop()
      await database?.drop()
      rmSync(dataDir, { recursive: true, force: true })
    },
  }
}
