import { join } from 'node:path'
import type { Config } from '../config'
import { type Database, openDatabase, resolveMigrations } from '../db/client'
import { warnIfRowSecurityBypassed } from '../db/tenant-scope'
import { startPrivateRedis } from '../local/redis-server'
import type { Logger } from '../observability/logger'
import { createRedis, type RedisClient, type RedisTarget } from '../streams/redis'
import { defineScripts } from '../streams/scripts'
import type { Closers } from './closers'

/** The connections every role shares. */
export interface Backends {
  redisTarget: RedisTarget
  database: Database
  /** Fail-fast connection for request handlers. */
  redis: RedisClient
  /** Receives the metadata caches' invalidations. */
  subscriber: RedisClient
}

/**
 * Where Redis is: configured, or (with neither REDIS_URL nor REDIS_CLUSTER_NODES) a private
 * redis-server of a zero-set-up run.
 */
async function redisTargetOf(config: Config, logger: Logger, closers: Closers) {
  let url = config.REDIS_URL
  if (!url && config.REDIS_CLUSTER_NODES.length === 0) {
    const localRedis = await startPrivateRedis(join(config.DATA_DIR, 'redis'))
    closers.add(() => localRedis.stop())
    url = localRedis.url
    logger.info({ url, pid: localRedis.pid }, 'started private redis-server')
  }
  return { url: url ?? '', clusterNodes: config.REDIS_CLUSTER_NODES }
}

/** Connects to Redis and PostgreSQL (PGlite for a zero-set-up run) and applies migrations. */
export async function openBackends(
  config: Config,
  logger: Logger,
  closers: Closers
): Promise<Backends> {
  const redisTarget = await redisTargetOf(config, logger, closers)
  const database = await openDatabase({
    url: config.DATABASE_URL,
    pgliteDir: join(config.DATA_DIR, 'pg'),
    poolSize: config.DATABASE_POOL_SIZE,
  })
  closers.add(() => database.close())
  await database.migrate(resolveMigrations(config.MIGRATIONS_DIR))
  await warnIfRowSecurityBypassed(database, logger)

  const redis = createRedis(redisTarget, 'command', logger)
  closers.add(() => redis.quit())
  defineScripts(redis)
  const subscriber = createRedis(redisTarget, 'subscriber', logger)
  closers.add(() => subscriber.quit())
  return { redisTarget, database, redis, subscriber }
}
