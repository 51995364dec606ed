import type { RowsJson } from '../db/ledger-rows'
import {
  type Attempt,
  type AttemptBatch,
  type ConsumptionLog,
  keeps,
  type LedgerMode,
} from '../domain/ledger'
import { hashKey } from '../domain/publish'
import type { Queue } from '../domain/queues'
import type { Subscription } from '../domain/subscriptions'
import type { Logger } from '../observability/logger'
import { decodeFields, encodeFields } from './codec'
import type { Keys } from './keys'
import type { RedisClient } from './redis'

/** The ledger writer's consumer group, on every message stream and on the event streams. */
export const LEDGER_GROUP = '__ledger'

/**
 * Groups the service keeps for itself start with `__`, which no subscription's group can
 * (group names follow the queue-name rule), so they are told apart by name alone; stats and
 * message statuses leave them out, and trimming.lua neither waits for them nor counts them as
 * consumers (it counts what it trims before the ledger's group read it: the ledger's gap).
 */
export const isInternalGroup = (name: string): boolean => name.startsWith('__')

/** Event streams the consume paths append to; on a cluster they spread over hash slots. */
export const LEDGER_SHARDS = 8

/** Per event stream: with no writer draining them, old events go rather than Redis's memory. */
const EVENTS_MAX_LENGTH = 1_000_000

type WireAttempt = Omit<Attempt, 'message'> & { message: string[] | null }
type WireBatch = Omit<AttemptBatch, 'attempts'> & { attempts: WireAttempt[] }

/** Reads an event entry's `a` field back. @throws SyntaxError on a malformed entry. */
export function decodeBatch(text: string): AttemptBatch {
  const wire = JSON.parse(text) as WireBatch
  return {
    ...wire,
    attempts: wire.attempts.map((a) => ({
      ...a,
      message: a.message ? decodeFields(a.streamId, a.message) : null,
    })),
  }
}

/**
 * Appends attempts to the event streams for the ledger writer: one entry per call, in the
 * subscription's shard, so one subscription's attempts stay in order.
 */
export class LedgerEventLog implements ConsumptionLog {
  constructor(
    readonly mode: LedgerMode,
    private readonly redis: RedisClient,
    private readonly keys: Keys,
    private readonly logger: Logger
  ) {}

  async append(sub: Subscription, queue: Queue, attempts: Attempt[]): Promise<void> {
    const kept = attempts.filter((a) => keeps(this.mode, a.status))
    if (kept.length === 0) return
    const batch: WireBatch = {
      tenantId: sub.tenantId,
      queueId: queue.id,
      subscriptionId: sub.id,
      consumer: sub.consumerName,
      attempts: kept.map((a) => ({ ...a, message: a.message ? encodeFields(a.message) : null })),
    }
    try {
      await this.redis.xadd(
        this.keys.ledgerEvents(hashKey(sub.id) % LEDGER_SHARDS),
        'MAXLEN',
        '~',
        EVENTS_MAX_LENGTH,
        '*',
        'a',
        JSON.stringify(batch)
      )
    } catch (err) {
      this.logger.warn(
        { err: (err as Error).message, subscriptionId: sub.id, attempts: kept.length },
        'ledger attempts not logged'
      )
    }
  }
}

/** A stream entry as read: its id and fields. */
export type RawEntry = [id: string, fields: string[]]

const missingKey = (err: unknown) => /requires the key to exist/.test((err as Error).message)

/**
 * The ledger writer's side of Redis: its consumer group on message and event streams, read
 * under a consumer name of this process's own.
 */
export class LedgerStreams {
  constructor(
    private readonly redis: RedisClient,
    private readonly keys: Keys,
    readonly consumer: string
  ) {}

  eventStreams(): string[] {
    return Array.from({ length: LEDGER_SHARDS }, (_, shard) => this.keys.ledgerEvents(shard))
  }

  messageStreams(queue: Queue): string[] {
    return Array.from({ length: queue.partitionCount }, (_, p) =>
      this.keys.partition(queue.tenantId, queue.name, p, 'stream')
    )
  }

  /**
   * Gives each stream the group, reading from its first entry (an empty stream is created
   * for that, as subscriptions do); a stream that has it keeps its position.
   */
  async ensureGroup(streams: string[]): Promise<void> {
    await Promise.all(
      streams.map((s) =>
        this.redis.xgroup('CREATE', s, LEDGER_GROUP, '0', 'MKSTREAM').catch((err: Error) => {
          if (!err.message.startsWith('BUSYGROUP')) throw err
        })
      )
    )
  }

  /** Destroys the group with its pending list, where it exists. */
  async destroyGroup(streams: string[]): Promise<void> {
    await Promise.all(
      streams.map((s) =>
        this.redis.xgroup('DESTROY', s, LEDGER_GROUP).catch((err: Error) => {
          if (!missingKey(err)) throw err
        })
      )
    )
  }

  /**
   * Entries of `streams` no consumer of the group has read yet, at most `count` per stream;
   * they stay pending for this consumer until acknowledged. On a cluster every stream of one
   * call must share a hash slot.
   * @throws the server's NOGROUP error when a stream, or its group, is gone.
   */
  async read(streams: string[], count: number): Promise<Map<string, RawEntry[]>> {
    const reply = (await this.redis.xreadgroup(
      'GROUP',
      LEDGER_GROUP,
      this.consumer,
      'COUNT',
      count,
      'STREAMS',
      ...streams,
      ...streams.map(() => '>')
    )) as Array<[string, RawEntry[]]> | null
    return new Map(reply ?? [])
  }

  /**
   * {@link read} for one message stream, as the ledger's rows (readLedgerRows.lua): the ids
   * read and the rows as one JSON array, null when nothing was new.
   * @throws the server's NOGROUP error when the stream, or its group, is gone.
   */
  async readRows(
    stream: string,
    target: { queue: Queue; partition: number },
    count: number
  ): Promise<{ ids: string[]; rows: RowsJson | null }> {
    const reply = await this.redis.readLedgerRows(
      stream,
      LEDGER_GROUP,
      this.consumer,
      count,
      target.queue.tenantId,
      target.queue.id,
      target.partition
    )
    const ids = reply.slice(0, -1)
    return { ids, rows: ids.length > 0 ? { json: reply.at(-1)!, count: ids.length } : null }
  }

  /**
   * Takes over up to `count` entries that other consumers read and left unacknowledged for
   * `minIdleMs`: those of a writer that crashed or could not finish. Entries trimmed from the
   * stream meanwhile leave the pending list and are named in `trimmed`.
   */
  async claim(
    stream: string,
    minIdleMs: number,
    count: number
  ): Promise<{ entries: RawEntry[]; trimmed: string[] }> {
    const claimed: RawEntry[] = []
    const trimmed: string[] = []
    let cursor = '0-0'
    do {
      const [next, entries, deleted] = (await this.redis.xautoclaim(
        stream,
        LEDGER_GROUP,
        this.consumer,
        minIdleMs,
        cursor,
        'COUNT',
        count - claimed.length
      )) as [string, Array<RawEntry | null>, string[] | undefined]
      for (const e of entries) if (e?.[1]) claimed.push(e)
      if (deleted) trimmed.push(...deleted)
      cursor = next
    } while (cursor !== '0-0' && claimed.length < count)
    return { entries: claimed, trimmed }
  }

  private gapKey(queue: Queue, partition: number): string {
    return this.keys.partition(queue.tenantId, queue.name, partition, 'ledgerGap')
  }

  /** Counts entries of the partition that left the stream before the ledger stored them. */
  async addGap(queue: Queue, partition: number, entries: number): Promise<void> {
    await this.redis.hincrby(this.gapKey(queue, partition), 'n', entries)
  }

  /** The partition's gap not yet warned about (takeLedgerGap.lua). */
  takeGap(queue: Queue, partition: number): Promise<number> {
    return this.redis.takeLedgerGap(this.gapKey(queue, partition))
  }

  /** Acknowledges entries written to the ledger; `remove` also deletes them (event streams). */
  async ack(stream: string, ids: string[], remove: boolean): Promise<void> {
    if (ids.length === 0) return
    await Promise.all([
      this.redis.xack(stream, LEDGER_GROUP, ...ids),
      remove ? this.redis.xdel(stream, ...ids) : undefined,
    ])
  }

  /** Deletes consumers idle for `minIdleMs` that hold nothing: writers that are gone. */
  forgetIdleConsumers(stream: string, minIdleMs: number): Promise<number> {
    return this.redis.forgetConsumers(stream, LEDGER_GROUP, minIdleMs)
  }

  /** Closes the connection; a read in progress is abandoned (its entries are claimed later). */
  close(): void {
    this.redis.disconnect()
  }

  /** Claims the sweep for `ms`, so one writer at a time sweeps. @returns whether this one got it. */
  async claimSweep(ms: number): Promise<boolean> {
    return (await this.redis.set(this.keys.ledgerSweep, this.consumer, 'PX', ms, 'NX')) === 'OK'
  }
}
