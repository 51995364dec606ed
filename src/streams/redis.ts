import { Cluster, Redis, type RedisOptions } from 'ioredis'
import type { Logger } from '../observability/logger'
import { ensureTracingChannelHasSubscribers } from './tracing-channel'

/** A standalone Redis or a cluster; every command the service sends works on both. */
export type RedisClient = Redis | Cluster

/** Where Redis is: one URL, or the seed nodes of a cluster. */
export interface RedisTarget {
  url: string
  clusterNodes: string[]
}

/**
 * What a connection is for, which decides how it fails:
 * - `command`: HTTP handlers. No offline queue and a short command timeout, so an outage or
 *   a frozen server answers 503 within two seconds instead of hanging the request.
 * - `blocking`: one per long-poll or consumer loop (`XREADGROUP BLOCK` would stall every other
 *   command on a shared connection). Retries forever; no command timeout, which would fire on
 *   the block itself.
 * - `worker`: background loops that should wait out an outage rather than fail.
 * - `subscriber`: pub/sub only.
 */
export type ConnectionRole = 'command' | 'blocking' | 'worker' | 'subscriber'

const ROLE_OPTIONS: Record<ConnectionRole, RedisOptions> = {
  command: { enableOfflineQueue: false, maxRetriesPerRequest: 1, commandTimeout: 1500 },
  blocking: { maxRetriesPerRequest: null },
  worker: { maxRetriesPerRequest: null },
  subscriber: { maxRetriesPerRequest: null },
}

const BASE_OPTIONS: RedisOptions = {
  // RESP2 keeps reply shapes identical to what the Lua scripts and parsers were tested on.
  protocol: 2,
  connectTimeout: 2000,
  keepAlive: 10_000,
  retryStrategy: (times) => Math.min(50 * 2 ** times, 2000),
  // A replica promoted or a server still loading: reconnect and resend rather than fail.
  reconnectOnError: (err) => (/READONLY|LOADING/.test(err.message) ? 2 : false),
}

/**
 * Opens a connection for one role. Every connection gets an `error` listener: without one,
 * ioredis reports connection errors as unhandled and Bun prints them as crashes.
 */
export function createRedis(
  target: RedisTarget,
  role: ConnectionRole,
  logger: Logger
): RedisClient {
  ensureTracingChannelHasSubscribers()
  const options: RedisOptions = {
    ...BASE_OPTIONS,
    ...ROLE_OPTIONS[role],
    connectionName: `mq-${role}-${process.pid}`,
  }
  const client: RedisClient =
    target.clusterNodes.length > 0
      ? new Cluster(target.clusterNodes, {
          redisOptions: options,
          enableOfflineQueue: options.enableOfflineQueue,
          clusterRetryStrategy: options.retryStrategy as (times: number) => number,
        })
      : new Redis(target.url, options)
  let lastLogged = 0
  client.on('error', (err: Error) => {
    // A down Redis reports on every retry; one line a few seconds is enough to see it.
    if (Date.now() - lastLogged > 5000) {
      lastLogged = Date.now()
      logger.warn({ role, err: err.message }, 'redis connection error')
    }
  })
  return client
}
