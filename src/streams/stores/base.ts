import { MqError } from '../../domain/errors'
import type { Queue } from '../../domain/queues'
import type { Keys, PartitionPart } from '../keys'
import type { RedisClient } from '../redis'

export type Reply = [Error | null, unknown]

/** Reads an XINFO reply (a flat field/value list under RESP2) into an object. */
export function fields(reply: unknown): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  if (!Array.isArray(reply)) return out
  for (let i = 0; i + 1 < reply.length; i += 2) out[String(reply[i])] = reply[i + 1]
  return out
}

/** Compares stream ids (`<ms>-<seq>`) numerically. */
export function compareIds(a: string, b: string): number {
  const [am = 0n, as = 0n] = a.split('-').map(BigInt)
  const [bm = 0n, bs = 0n] = b.split('-').map(BigInt)
  return am === bm ? Number(as - bs) : am < bm ? -1 : 1
}

/**
 * Sends commands side by side and collects `[error, reply]` pairs, as a pipeline would. A
 * cluster refuses a pipeline whose keys live on different nodes, and a queue's partitions are
 * spread over them; commands sent without waiting for each other still share round trips.
 */
export function sideBySide(commands: Array<Promise<unknown>>): Promise<Reply[]> {
  return Promise.all(
    commands.map((c) =>
      c.then(
        (reply): Reply => [null, reply],
        (err: Error): Reply => [err, null]
      )
    )
  )
}

/**
 * A consume script that found no group: its last subscription was deleted while a request of
 * it was under way (a long poll, an ack), which is a 404, not a failure of the service.
 */
export function groupGone(err: unknown): never {
  if (err instanceof Error && /NOGROUP/.test(err.message)) {
    throw new MqError('MQ_SUBSCRIPTION_NOT_FOUND', 'the subscription was deleted')
  }
  throw err
}

/** The keys publishMessages.lua takes first, in its order. */
export const WRITE_PARTS: readonly PartitionPart[] = [
  'stream',
  'delayed',
  'delayedBodies',
  'index',
  'ledgerGap',
]

export const partitions = (queue: Pick<Queue, 'partitionCount'>) =>
  Array.from({ length: queue.partitionCount }, (_, p) => p)

/** A partition's member in the delayed registry; `|` appears in no tenant id or queue name. */
export const delayedMember = (tenantId: string, queue: string, partition: number) =>
  `${tenantId}|${queue}|${partition}`

/** What every store of a queue's Redis keys starts from. */
export abstract class PartitionKeys {
  constructor(
    protected readonly redis: RedisClient,
    protected readonly keys: Keys
  ) {}

  protected key(queue: Pick<Queue, 'tenantId' | 'name'>, partition: number, part: PartitionPart) {
    return this.keys.partition(queue.tenantId, queue.name, partition, part)
  }

  protected inflight(queue: Queue, partition: number, group: string) {
    return this.keys.inflight(queue.tenantId, queue.name, partition, group)
  }

  protected ordering(queue: Pick<Queue, 'tenantId' | 'name'>, partition: number, group: string) {
    return this.keys.ordering(queue.tenantId, queue.name, partition, group)
  }
}
