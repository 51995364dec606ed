import type { RedisClient } from '../../streams/redis'
import type { Queue } from '../queue-model'

/** Waits for new entries in a queue, for long polls. */
export interface WaitStore {
  /**
   * Waits on `client` (a blocking connection of the caller's) until an entry newer than
   * `after` (stream id per partition) arrives in any partition, or `timeoutMs` passes. On a
   * cluster, where it polls, `signal` ends it too (elsewhere `CLIENT UNBLOCK` does).
   */
  waitForEntries(
    client: RedisClient,
    queue: Queue,
    after: string[],
    timeoutMs: number,
    signal?: AbortSignal
  ): Promise<void>
  /** The newest entry id of each partition ('0-0' when empty), to wait for what comes after. */
  lastIds(queue: Queue): Promise<string[]>
}
