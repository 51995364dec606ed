import type { EntryWaiter } from '../domain/consume'
import type { WaitStore } from '../domain/ports'
import type { Queue } from '../domain/queues'
import type { Logger } from '../observability/logger'
import { createRedis, type RedisClient, type RedisTarget } from './redis'

/** How long past its BLOCK timeout a read may take before its connection is dropped. */
const WATCHDOG_MARGIN_MS = 1000
/**
 * A pooled connection unused this long is closed. Longer than any wait (20 s at most), so a
 * steady set of long polls keeps its connections; a burst (the old polls of a killed consumer
 * overlapping its successor's) gives back what it opened.
 */
const IDLE_CLOSE_MS = 30_000

/**
 * Long polls wait with `XREAD BLOCK` on connections of their own (a blocking read on the
 * shared connection would stall every other request behind it). Connections are pooled;
 * past `maxConnections` concurrent waits, a wait falls back to a short sleep instead of
 * opening more sockets. The pool shrinks again: a connection idle for `idleCloseMs` is closed,
 * else every burst of concurrent polls would keep its sockets for the life of the process.
 */
export class BlockingWaiter implements EntryWaiter {
  /** Most recently used last, so the front holds the longest idle. */
  private readonly idle: Array<{ client: RedisClient; since: number }> = []
  private open = 0
  private closed = false
  private sweeper: Timer | undefined

  constructor(
    private readonly repository: WaitStore,
    private readonly target: RedisTarget,
    private readonly logger: Logger,
    private readonly maxConnections = 256,
    private readonly idleCloseMs = IDLE_CLOSE_MS
  ) {}

  /** Connections open, idle or waiting. */
  get connections(): number {
    return this.open
  }

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
    const client = this.idle.pop()?.client
    if (client) return client
    if (this.open >= this.maxConnections || this.closed) return undefined
    this.open++
    return createRedis(this.target, 'blocking', this.logger)
  }

  private release(client: RedisClient, healthy: boolean): void {
    if (healthy && !this.closed) {
      this.idle.push({ client, since: performance.now() })
      this.sweeper ??= setInterval(() => this.closeIdle(), this.idleCloseMs / 2)
      this.sweeper.unref()
      return
    }
    this.drop(client)
  }

  private drop(client: RedisClient): void {
    this.open--
    client.disconnect()
  }

  private closeIdle(): void {
    const before = performance.now() - this.idleCloseMs
    while (this.idle.length > 0 && this.idle[0]!.since <= before) {
      this.drop(this.idle.shift()!.client)
    }
    if (this.idle.length === 0) {
      clearInterval(this.sweeper)
      this.sweeper = undefined
    }
  }

  async close(): Promise<void> {
    this.closed = true
    clearInterval(this.sweeper)
    this.sweeper = undefined
    for (const { client } of this.idle.splice(0)) this.drop(client)
  }
}
