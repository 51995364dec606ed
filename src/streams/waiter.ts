import type { EntryWaiter } from '../domain/consume'
import type { WaitStore } from '../domain/ports'
import type { Queue } from '../domain/queues'
import type { Logger } from '../observability/logger'
import { createRedis, type RedisClient, type RedisTarget } from './redis'

/** How long past its BLOCK timeout a read may take before its connection is dropped. */
const WATCHDOG_MARGIN_MS = 1000

/**
 * Long polls wait with `XREAD BLOCK` on connections of their own (a blocking read on the
 * shared connection would stall every other request behind it). Connections are pooled;
 * past `maxConnections` concurrent waits, a wait falls back to a short sleep instead of
 * opening more sockets.
 */
export class BlockingWaiter implements EntryWaiter {
  private readonly idle: RedisClient[] = []
  private open = 0
  private closed = false

  constructor(
    private readonly repository: WaitStore,
    private readonly target: RedisTarget,
    private readonly logger: Logger,
    private readonly maxConnections = 256
  ) {}

  lastIds(queue: Queue): Promise<string[]> {
    return this.repository.lastIds(queue)
  }

  async wait(queue: Queue, after: string[], timeoutMs: number): Promise<void> {
    const client = this.acquire()
    if (!client) {
      await Bun.sleep(Math.min(timeoutMs, 100))
      return
    }
    let healthy = true
    let watchdog: Timer | undefined
    const abandon = new AbortController()
    try {
      const read = this.repository.waitForEntries(client, queue, after, timeoutMs, abandon.signal)
      // A blocking read on a server that froze, or whose connection died silently, may never
      // return (ioredis #610, #1285, #1888): past its timeout and a margin, give up on it and
      // drop the connection, which also rejects the read.
      const expired = new Promise<'expired'>((resolve) => {
        watchdog = setTimeout(() => resolve('expired'), timeoutMs + WATCHDOG_MARGIN_MS)
      })
      if ((await Promise.race([read, expired])) === 'expired') {
        healthy = false
        // Ends a cluster's polling wait too, which dropping the connection could leave hanging.
        abandon.abort()
        read.catch(() => {})
        this.logger.warn({ timeoutMs }, 'long-poll wait outlived its block; connection dropped')
      }
    } catch (err) {
      healthy = false
      this.logger.warn({ err: (err as Error).message }, 'long-poll wait failed')
      // The caller pulls again; do not spin against a failing Redis.
      await Bun.sleep(Math.min(timeoutMs, 500))
    } finally {
      clearTimeout(watchdog)
      this.release(client, healthy)
    }
  }

  private acquire(): RedisClient | undefined {
    const client = this.idle.pop()
    if (client) return client
    if (this.open >= this.maxConnections || this.closed) return undefined
    this.open++
    return createRedis(this.target, 'blocking', this.logger)
  }

  private release(client: RedisClient, healthy: boolean): void {
    if (healthy && !this.closed) {
      this.idle.push(client)
      return
    }
    this.open--
    client.disconnect()
  }

  async close(): Promise<void> {
    this.closed = true
    for (const client of this.idle.splice(0)) client.disconnect()
  }
}
