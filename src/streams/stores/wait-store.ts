import { Cluster } from 'ioredis'
import type { WaitStore } from '../../domain/ports'
import type { Queue } from '../../domain/queues'
import type { RedisClient } from '../redis'
import { PartitionKeys, partitions, sideBySide } from './base'

/** How often a wait on a cluster looks for new entries (it cannot block on several slots). */
const CLUSTER_POLL_MS = 100

/** Waits for new entries in a queue's streams, for long polls. */
export class RedisWaitStore extends PartitionKeys implements WaitStore {
  async waitForEntries(
    client: RedisClient,
    queue: Queue,
    after: string[],
    timeoutMs: number,
    signal?: AbortSignal
  ): Promise<void> {
    const streams = partitions(queue).map((p) => this.key(queue, p, 'stream'))
    if (client instanceof Cluster) return pollCluster(client, streams, after, timeoutMs, signal)
    await client.xread(
      'COUNT',
      1,
      'BLOCK',
      Math.max(1, Math.round(timeoutMs)),
      'STREAMS',
      ...streams,
      ...after
    )
  }

  async lastIds(queue: Queue): Promise<string[]> {
    const replies = await sideBySide(
      partitions(queue).map((p) =>
        this.redis.xrevrange(this.key(queue, p, 'stream'), '+', '-', 'COUNT', 1)
      )
    )
    return replies.map(([err, entries]) => {
      if (err) throw err
      const first = (entries as Array<[string, string[]]>)[0]
      return first ? first[0] : '0-0'
    })
  }
}

/**
 * A cluster refuses one XREAD over keys of different slots, and each partition has its own;
 * blocking on each would tie up a connection per partition, and CLIENT UNBLOCK could not find
 * the one to end (client ids are per node). Look every 100 ms instead.
 */
async function pollCluster(
  client: Cluster,
  streams: string[],
  after: string[],
  timeoutMs: number,
  signal?: AbortSignal
): Promise<void> {
  const deadline = Date.now() + timeoutMs
  // The signal also ends a look in progress: its caller may have dropped the connection,
  // which can leave the reads waiting.
  const aborted = new Promise<'aborted'>((resolve) => {
    if (signal?.aborted) resolve('aborted')
    signal?.addEventListener('abort', () => resolve('aborted'), { once: true })
  })
  for (;;) {
    const look = Promise.all(
      streams.map((stream, i) => client.xread('COUNT', 1, 'STREAMS', stream, after[i]!))
    )
    look.catch(() => {})
    const replies = await Promise.race([look, aborted])
    if (replies === 'aborted' || replies.some((r) => r !== null)) return
    if (Date.now() >= deadline) return
    const pause = Bun.sleep(Math.min(CLUSTER_POLL_MS, deadline - Date.now()))
    if ((await Promise.race([pause, aborted])) === 'aborted') return
  }
}
