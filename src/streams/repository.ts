import { Cluster } from 'ioredis'
import { MqError } from '../domain/errors'
import type {
  FoundMessage,
  GroupPosition,
  PartitionPull,
  PartitionWrite,
  QueueEntry,
  SettledEntry,
  StoredDelivery,
  WriteResult,
} from '../domain/messages'
import type { MessageStore } from '../domain/ports'
import type { Queue, QueueStats, RemovedQueue } from '../domain/queues'
import type { Subscription, SubscriptionCounters } from '../domain/subscriptions'
import { decodeFields, encodeFields } from './codec'
import type { Keys, PartitionPart } from './keys'
import { isInternalGroup } from './ledger'
import type { RedisClient } from './redis'

type Reply = [Error | null, unknown]

/** Reads an XINFO reply (a flat field/value list under RESP2) into an object. */
function fields(reply: unknown): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  if (!Array.isArray(reply)) return out
  for (let i = 0; i + 1 < reply.length; i += 2) out[String(reply[i])] = reply[i + 1]
  return out
}

/** Compares stream ids (`<ms>-<seq>`) numerically. */
function compareIds(a: string, b: string): number {
  const [am = 0n, as = 0n] = a.split('-').map(BigInt)
  const [bm = 0n, bs = 0n] = b.split('-').map(BigInt)
  return am === bm ? Number(as - bs) : am < bm ? -1 : 1
}

/**
 * Sends commands side by side and collects `[error, reply]` pairs, as a pipeline would. A
 * cluster refuses a pipeline whose keys live on different nodes, and a queue's partitions are
 * spread over them; commands sent without waiting for each other still share round trips.
 */
function sideBySide(commands: Array<Promise<unknown>>): Promise<Reply[]> {
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
function groupGone(err: unknown): never {
  if (err instanceof Error && /NOGROUP/.test(err.message)) {
    throw new MqError('MQ_SUBSCRIPTION_NOT_FOUND', 'the subscription was deleted')
  }
  throw err
}

/** How often a wait on a cluster looks for new entries (it cannot block on several slots). */
const CLUSTER_POLL_MS = 100

/** The keys publishMessages.lua takes first, in its order. */
const WRITE_PARTS: readonly PartitionPart[] = [
  'stream',
  'delayed',
  'delayedBodies',
  'index',
  'ledgerGap',
]

const partitions = (queue: Pick<Queue, 'partitionCount'>) =>
  Array.from({ length: queue.partitionCount }, (_, p) => p)

/** The tenant-aware Redis Streams store of messages. */
export class StreamsRepository implements MessageStore {
  constructor(
    private readonly redis: RedisClient,
    private readonly keys: Keys
  ) {}

  private readonly writeKeyCache = new WeakMap<Queue, string[][]>()

  private key(queue: Queue, partition: number, part: PartitionPart) {
    return this.keys.partition(queue.tenantId, queue.name, partition, part)
  }

  /**
   * The fixed keys a publish to one partition sends, made once per queue object (the metadata
   * cache hands out the same one while it is current): made anew per publish, each key was a
   * concatenated string that ioredis then copied flat to measure it.
   */
  private writeKeys(queue: Queue, partition: number): readonly string[] {
    let byPartition = this.writeKeyCache.get(queue)
    if (byPartition === undefined) {
      byPartition = []
      this.writeKeyCache.set(queue, byPartition)
    }
    let keys = byPartition[partition]
    if (keys === undefined) {
      keys = WRITE_PARTS.map((part) => this.key(queue, partition, part))
      byPartition[partition] = keys
    }
    return keys
  }

  private inflight(queue: Queue, partition: number, group: string) {
    return this.keys.inflight(queue.tenantId, queue.name, partition, group)
  }

  async queueStats(queue: Queue): Promise<QueueStats> {
    // A stream that was never written does not exist: XINFO then errors, which means zero.
    const replies = await sideBySide(
      partitions(queue).flatMap((p) => [
        this.redis.xinfo('STREAM', this.key(queue, p, 'stream')),
        this.redis.xinfo('GROUPS', this.key(queue, p, 'stream')),
        this.redis.zcard(this.key(queue, p, 'delayed')),
        this.redis.hget(this.key(queue, p, 'ledgerGap'), 'n'),
      ])
    )
    const stats: QueueStats = {
      length: 0,
      pending: 0,
      scheduled: 0,
      consumerGroups: 0,
      lastMessageId: null,
      ledgerGap: 0,
    }
    for (let i = 0; i < replies.length; i += 4) {
      const [streamErr, stream] = replies[i]!
      const [groupsErr, groups] = replies[i + 1]!
      const [delayedErr, delayed] = replies[i + 2]!
      const [gapErr, gap] = replies[i + 3]!
      if (delayedErr) throw delayedErr
      if (gapErr) throw gapErr
      stats.scheduled += Number(delayed)
      stats.ledgerGap += Number(gap ?? 0)
      // A partition never written to has no stream yet: zero, not an error.
      const missing = (err: Error | null) => err !== null && /no such key/i.test(err.message)
      if (missing(streamErr) || missing(groupsErr)) continue
      if (streamErr || groupsErr) throw streamErr ?? groupsErr
      const info = fields(stream)
      stats.length += Number(info.length ?? 0)
      const last = String(info['last-generated-id'] ?? '0-0')
      if (last !== '0-0' && (!stats.lastMessageId || compareIds(last, stats.lastMessageId) > 0)) {
        stats.lastMessageId = last
      }
      const groupList = (groups as unknown[])
        .map(fields)
        .filter((g) => !isInternalGroup(String(g.name)))
      // Every partition carries the same groups; count them once.
      stats.consumerGroups = Math.max(stats.consumerGroups, groupList.length)
      for (const g of groupList) stats.pending += Number(g.pending ?? 0)
    }
    return stats
  }

  async purge(queue: Queue): Promise<number> {
    let removed = 0
    for (const p of partitions(queue)) {
      removed += await this.redis.purge(
        this.key(queue, p, 'stream'),
        this.key(queue, p, 'delayed'),
        this.key(queue, p, 'delayedBodies'),
        this.key(queue, p, 'index')
      )
    }
    return removed
  }

  async removeQueue(queue: RemovedQueue): Promise<void> {
    // Recorded first: a delete that dies half-way is finished by the trimmer's next look.
    await this.redis.zadd(this.keys.removedQueues, Date.now(), removedRecord(queue))
    await this.removeQueueKeys(queue, true)
  }

  /**
   * Deletes again the keys of queues deleted before `before` (ms), then forgets them: a
   * publish that had resolved the queue just before its delete, or a late ack's counter, can
   * recreate a key after the first pass, and nothing else would ever remove it. When a queue
   * of the same name exists again, its partitions are its own and are left alone.
   * @returns how many deleted queues were swept.
   */
  async sweepRemovedQueues(
    before: number,
    exists: (tenantId: string, name: string) => Promise<boolean>
  ): Promise<number> {
    const records = await this.redis.zrangebyscore(
      this.keys.removedQueues,
      '-inf',
      before,
      'LIMIT',
      0,
      100
    )
    for (const record of records) {
      const queue = JSON.parse(record) as Pick<
        RemovedQueue,
        'tenantId' | 'name' | 'partitionCount' | 'subscriptionIds'
      >
      await this.removeQueueKeys(queue, !(await exists(queue.tenantId, queue.name)))
      await this.redis.zrem(this.keys.removedQueues, record)
    }
    return records.length
  }

  private async removeQueueKeys(
    queue: Pick<RemovedQueue, 'tenantId' | 'name' | 'partitionCount' | 'subscriptionIds'>,
    withPartitions: boolean
  ): Promise<void> {
    if (withPartitions) await this.removePartitions(queue)
    // Each subscription's counters have their own hash tag: one UNLINK each on a cluster.
    for (const id of queue.subscriptionIds) {
      await this.redis.unlink(this.keys.subscriptionCounters(queue.tenantId, id))
    }
    if (queue.subscriptionIds.length > 0) {
      await this.redis.zrem(this.keys.tenantLastAck(queue.tenantId), ...queue.subscriptionIds)
    }
  }

  private async removePartitions(
    queue: Pick<Queue, 'tenantId' | 'name' | 'partitionCount'>
  ): Promise<void> {
    const key = (p: number, part: PartitionPart) =>
      this.keys.partition(queue.tenantId, queue.name, p, part)
    const { registry, generations } = this.keys.delayedRegistry
    const members = partitions(queue).map((p) => delayedMember(queue.tenantId, queue.name, p))
    await this.redis.zrem(registry, ...members)
    await this.redis.hdel(generations, ...members)
    for (const p of partitions(queue)) {
      // The fixed keys in one step first: a ticker's promotion (atomic, into the stream from the
      // delayed set) then runs wholly before it, and is undone, or finds nothing to promote.
      await this.redis.unlink(...WRITE_PARTS.map((part) => key(p, part)))
    }
    // SCAN sees one server's keys: on a cluster, ask every master (a partition's keys share
    // a hash tag, so they all sit on one of them and one UNLINK takes them).
    const servers = this.redis instanceof Cluster ? this.redis.nodes('master') : [this.redis]
    const patterns = [
      ...partitions(queue).map((p) => this.keys.partitionPattern(queue.tenantId, queue.name, p)),
      this.keys.queuePattern(queue.tenantId, queue.name),
    ]
    for (const server of servers) {
      for (const pattern of patterns) {
        let cursor = '0'
        do {
          const [next, found] = await server.scan(cursor, 'MATCH', pattern, 'COUNT', 1000)
          if (found.length > 0) await this.redis.unlink(...found)
          cursor = next
        } while (cursor !== '0')
      }
    }
  }

  async routeDedup(
    queue: Queue,
    routes: Array<{ dedupId: string; partition: number }>,
    dedupWindowMs: number
  ): Promise<number[]> {
    const keys = routes.map((r) => this.keys.dedupRoute(queue.tenantId, queue.name, r.dedupId))
    const reply = await this.redis.claimDedupRoutes(
      keys.length,
      ...keys,
      dedupWindowMs,
      queue.partitionCount,
      ...routes.map((r) => r.partition)
    )
    return reply.map(Number)
  }

  async write(
    queue: Queue,
    partition: number,
    writes: PartitionWrite[],
    opts: { now: number; maxLength: number; dedupWindowMs: number }
  ): Promise<WriteResult[]> {
    const keys = [...this.writeKeys(queue, partition)]
    const args: Array<string | number> = [
      opts.now,
      opts.maxLength,
      queue.overflow,
      opts.dedupWindowMs,
      writes.length,
    ]
    for (const w of writes) {
      let dedupIndex = 0
      if (w.dedupId !== null) {
        keys.push(this.keys.dedup(queue.tenantId, queue.name, partition, w.dedupId))
        dedupIndex = keys.length
      }
      const fields = encodeFields(w.message)
      args.push(dedupIndex, w.deliverAt, w.message.messageId, fields.length / 2, ...fields)
    }
    const reply = (await this.redis.publishMessages(keys.length, ...keys, ...args)) as Array<
      string | number
    >
    return writes.map((_, i) => {
      const status = Number(reply[i * 4])
      return {
        status: status === 1 ? 'published' : status === 2 ? 'scheduled' : 'full',
        streamId: reply[i * 4 + 1] ? String(reply[i * 4 + 1]) : null,
        publishedAt: Number(reply[i * 4 + 2]),
        duplicate: Number(reply[i * 4 + 3]) === 1,
      }
    })
  }

  async ensureGroup(queue: Queue, group: string, start: GroupPosition): Promise<void> {
    const id = start === 'earliest' ? '0' : start === 'latest' ? '$' : positionId(start)
    for (const p of partitions(queue)) {
      try {
        await this.redis.xgroup('CREATE', this.key(queue, p, 'stream'), group, id, 'MKSTREAM')
      } catch (err) {
        // Another subscription of the same group created it first.
        if (!(err instanceof Error && err.message.startsWith('BUSYGROUP'))) throw err
      }
    }
  }

  async removeGroup(queue: Queue, group: string): Promise<void> {
    for (const p of partitions(queue)) {
      await this.redis.xgroup('DESTROY', this.key(queue, p, 'stream'), group)
      await this.redis.unlink(this.inflight(queue, p, group))
    }
  }

  async removeConsumer(
    queue: Queue,
    group: string,
    consumer: string,
    heir: string
  ): Promise<number> {
    let handed = 0
    for (const p of partitions(queue)) {
      handed += await this.redis.removeConsumer(
        this.key(queue, p, 'stream'),
        this.inflight(queue, p, group),
        group,
        consumer,
        heir,
        Date.now()
      )
    }
    return handed
  }

  async seek(queue: Queue, group: string, position: GroupPosition): Promise<string> {
    const id = position === 'earliest' ? '0' : position === 'latest' ? '$' : positionId(position)
    for (const p of partitions(queue)) {
      await this.redis.xgroup('SETID', this.key(queue, p, 'stream'), group, id)
    }
    return id
  }

  async groupStats(queue: Queue, group: string): Promise<{ lag: number; pending: number }> {
    let lag = 0
    let pending = 0
    for (const p of partitions(queue)) {
      const groups = (
        (await this.redis.xinfo('GROUPS', this.key(queue, p, 'stream'))) as unknown[]
      ).map(fields)
      const g = groups.find((x) => x.name === group)
      if (!g) continue
      pending += Number(g.pending ?? 0)
      // Redis reports no lag when it cannot tell (after deletions); count the unread entries.
      lag +=
        g.lag === null || g.lag === undefined
          ? await this.unread(queue, p, String(g['last-delivered-id']))
          : Number(g.lag)
    }
    return { lag, pending }
  }

  private async unread(queue: Queue, partition: number, lastDelivered: string): Promise<number> {
    const entries = await this.redis.xrange(
      this.key(queue, partition, 'stream'),
      `(${lastDelivered}`,
      '+',
      'COUNT',
      10_000
    )
    return entries.length
  }

  async counters(sub: Subscription): Promise<SubscriptionCounters> {
    const raw = await this.redis.hgetall(this.keys.subscriptionCounters(sub.tenantId, sub.id))
    return {
      delivered: Number(raw.delivered ?? 0),
      acked: Number(raw.acked ?? 0),
      failed: Number(raw.failed ?? 0),
      deadLettered: Number(raw.deadLettered ?? 0),
    }
  }

  async countOutcome(
    sub: Subscription,
    outcome: keyof SubscriptionCounters,
    n: number
  ): Promise<void> {
    if (n > 0)
      await this.redis.hincrby(this.keys.subscriptionCounters(sub.tenantId, sub.id), outcome, n)
  }

  async clearCounters(sub: Subscription): Promise<void> {
    // Two hash tags: one command each (a cluster refuses a command across slots).
    await this.redis.unlink(this.keys.subscriptionCounters(sub.tenantId, sub.id))
    await this.redis.zrem(this.keys.tenantLastAck(sub.tenantId), sub.id)
  }

  async pull(
    queue: Queue,
    partition: number,
    opts: {
      group: string
      consumer: string
      max: number
      now: number
      visibilityMs: number
      maxDeliveries: number
      deadHoldMs: number
    }
  ): Promise<PartitionPull> {
    const [delivered, dead, gone, expired, next, passed] = (await this.redis
      .pull(
        this.key(queue, partition, 'stream'),
        this.inflight(queue, partition, opts.group),
        opts.group,
        opts.consumer,
        opts.max,
        opts.now,
        opts.visibilityMs,
        opts.maxDeliveries,
        opts.deadHoldMs
      )
      .catch(groupGone)) as [RawDelivery[], RawDelivery[], number, number, number, number]
    return {
      delivered: delivered.map((d) => toDelivery(partition, d)),
      dead: dead.map((d) => toDelivery(partition, d)),
      gone: Number(gone),
      expired: Number(expired),
      nextDeadline: Number(next) >= 0 ? Number(next) : null,
      passed: Number(passed),
    }
  }

  async settle(
    queue: Queue,
    partition: number,
    group: string,
    mode: 'ack' | 'nack',
    items: Array<{ streamId: string; deliveryCount: number; delayMs: number; messageId?: string }>,
    opts: {
      now: number
      maxDeliveries: number
      deadHoldMs: number
      details?: 'ids' | 'messages'
    }
  ): Promise<{
    settled: number
    dead: StoredDelivery[]
    processingMs: number
    done: SettledEntry[]
  }> {
    // Message ids the receipts carry need not be read from the stream: 'idle' tells only
    // which entries settled, and how long each was out.
    const known =
      opts.details === 'ids' && items.every((i) => i.messageId !== undefined)
        ? new Map(items.map((i) => [i.streamId, i.messageId]))
        : null
    const args = items.flatMap((i) => [i.streamId, i.deliveryCount, i.delayMs])
    const [settled, dead, idle, done] = (await this.redis
      .settle(
        this.key(queue, partition, 'stream'),
        this.inflight(queue, partition, group),
        group,
        opts.now,
        mode,
        opts.maxDeliveries,
        opts.deadHoldMs,
        known ? 'idle' : (opts.details ?? ''),
        ...args
      )
      .catch(groupGone)) as [
      number,
      RawDelivery[],
      number,
      Array<[string, number, string | string[]]>,
    ]
    return {
      settled: Number(settled),
      dead: dead.map((d) => toDelivery(partition, d)),
      processingMs: Number(idle),
      done: done.map(([streamId, idleMs, about]) => {
        const message =
          Array.isArray(about) && about.length > 0 ? decodeFields(streamId, about) : null
        return {
          streamId,
          idleMs: Number(idleMs),
          messageId:
            known?.get(streamId) ?? (Array.isArray(about) ? (message?.messageId ?? '') : about),
          message,
        }
      }),
    }
  }

  /**
   * Waits on `client` (a blocking connection of the caller's) until an entry newer than
   * `after` (stream id per partition) arrives in any partition, or `timeoutMs` passes. On a
   * cluster, where it polls, `signal` ends it too (elsewhere `CLIENT UNBLOCK` does).
   */
  async waitForEntries(
    client: RedisClient,
    queue: Queue,
    after: string[],
    timeoutMs: number,
    signal?: AbortSignal
  ): Promise<void> {
    const streams = partitions(queue).map((p) => this.key(queue, p, 'stream'))
    if (client instanceof Cluster) {
      // A cluster refuses one XREAD over keys of different slots, and each partition has its
      // own; blocking on each would tie up a connection per partition, and CLIENT UNBLOCK
      // could not find the one to end (client ids are per node). Look every 100 ms instead.
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

  /** The newest entry id of each partition ('0-0' when empty), to wait for what comes after. */
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

  /** Entries of one partition after `afterId` (exclusive), oldest first. */
  async readEntries(
    queue: Queue,
    partition: number,
    afterId: string,
    count: number
  ): Promise<QueueEntry[]> {
    const start = afterId === '0-0' ? '-' : `(${afterId}`
    const entries = (await this.redis.xrange(
      this.key(queue, partition, 'stream'),
      start,
      '+',
      'COUNT',
      count
    )) as Array<[string, string[]]>
    return entries.map(([streamId, raw]) => ({
      partition,
      streamId,
      message: decodeFields(streamId, raw),
    }))
  }

  /** Deletes entries and their index entries. @returns how many were deleted. */
  async removeEntries(queue: Queue, partition: number, streamIds: string[]): Promise<number> {
    if (streamIds.length === 0) return 0
    return this.redis.removeEntries(
      this.key(queue, partition, 'stream'),
      this.key(queue, partition, 'index'),
      ...streamIds
    )
  }

  /** Cancels a still-scheduled message. @returns whether it was scheduled. */
  async cancelScheduled(queue: Queue, messageId: string): Promise<boolean> {
    for (const p of partitions(queue)) {
      if (
        (await this.redis.cancelScheduled(
          this.key(queue, p, 'delayed'),
          this.key(queue, p, 'delayedBodies'),
          messageId
        )) === 1
      ) {
        return true
      }
    }
    return false
  }

  async findMessage(queue: Queue, messageId: string): Promise<FoundMessage | null> {
    const replies = await sideBySide(
      partitions(queue).flatMap((p) => [
        this.redis.hget(this.key(queue, p, 'index'), messageId),
        this.redis.zscore(this.key(queue, p, 'delayed'), messageId),
        this.redis.hget(this.key(queue, p, 'delayedBodies'), messageId),
      ])
    )
    for (const p of partitions(queue)) {
      const [[e1, streamId], [e2, due], [e3, body]] = replies.slice(p * 3, p * 3 + 3) as [
        Reply,
        Reply,
        Reply,
      ]
      if (e1 || e2 || e3) throw e1 ?? e2 ?? e3
      if (due !== null && body !== null) {
        const fields = JSON.parse(String(body)) as string[]
        return {
          partition: p,
          streamId: null,
          message: decodeFields('0-0', fields),
          deliverAt: Number(due),
          groups: [],
        }
      }
      if (streamId !== null) return this.locate(queue, p, String(streamId))
    }
    return null
  }

  private async locate(
    queue: Queue,
    partition: number,
    streamId: string
  ): Promise<FoundMessage | null> {
    const stream = this.key(queue, partition, 'stream')
    const [entry] = (await this.redis.xrange(stream, streamId, streamId)) as Array<
      [string, string[]]
    >
    if (!entry) return null
    const groups = ((await this.redis.xinfo('GROUPS', stream)) as unknown[])
      .map(fields)
      .filter((g) => !isInternalGroup(String(g.name)))
    const progress = await Promise.all(
      groups.map(async (g) => {
        const name = String(g.name)
        const [pending] = (await this.redis.xpending(stream, name, streamId, streamId, 1)) as Array<
          [string, string, number, number]
        >
        const state: 'waiting' | 'delivered' | 'acked' = pending
          ? 'delivered'
          : compareIds(streamId, String(g['last-delivered-id'])) <= 0
            ? 'acked'
            : 'waiting'
        return { consumerGroup: name, state, deliveryCount: pending ? Number(pending[3]) : 0 }
      })
    )
    return {
      partition,
      streamId,
      message: decodeFields(streamId, entry[1]),
      deliverAt: null,
      groups: progress,
    }
  }

  /**
   * Notes that a partition has a delayed message due at `due`, and wakes sleeping tickers.
   * Called after the message is stored, so a ticker never settles the entry without it.
   */
  async registerDelayed(queue: Queue, partition: number, due: number): Promise<void> {
    const { registry, generations, clock } = this.keys.delayedRegistry
    await this.redis.registerDelayed(
      registry,
      generations,
      clock,
      delayedMember(queue.tenantId, queue.name, partition),
      due
    )
    await this.redis.publish(this.keys.delayedWakeupChannel, String(due))
  }

  /**
   * Registers the partition's earliest delayed message when the registry has no entry for it
   * or a later one: a publish that died between storing the message and registering it (or
   * could not reach the registry's node) leaves that, and no ticker would ever look.
   */
  async repairDelayed(queue: Queue, partition: number): Promise<void> {
    const { registry } = this.keys.delayedRegistry
    const [[e1, earliest], [e2, registered]] = (await sideBySide([
      this.redis.zrange(this.key(queue, partition, 'delayed'), '0', '0', 'WITHSCORES'),
      this.redis.zscore(registry, delayedMember(queue.tenantId, queue.name, partition)),
    ])) as [Reply, Reply]
    if (e1 || e2) throw e1 ?? e2
    const due = (earliest as string[])[1]
    if (due === undefined) return
    if (registered !== null && Number(registered) <= Number(due)) return
    await this.registerDelayed(queue, partition, Number(due))
  }

  /** Partitions whose earliest delayed message is due by `now`, with the generation seen. */
  async duePartitions(
    now: number,
    limit: number
  ): Promise<Array<{ member: string; generation: string }>> {
    const { registry, generations } = this.keys.delayedRegistry
    const members = await this.redis.zrangebyscore(registry, '-inf', now, 'LIMIT', 0, limit)
    if (members.length === 0) return []
    const gens = await this.redis.hmget(generations, ...members)
    return members.map((member, i) => ({ member, generation: gens[i] ?? '' }))
  }

  /** The earliest due time in the registry (ms), or null when nothing is delayed. */
  async earliestDue(): Promise<number | null> {
    const [, score] = await this.redis.zrange(
      this.keys.delayedRegistry.registry,
      '0',
      '0',
      'WITHSCORES'
    )
    return score === undefined ? null : Number(score)
  }

  /**
   * Promotes due messages of one registered partition in batches of `limit`, then settles
   * its registry entry. @returns the due times of what was promoted.
   */
  async promotePartition(
    member: string,
    generation: string,
    now: number,
    limit: number
  ): Promise<number[]> {
    const [tenantId, queue, p] = member.split('|') as [string, string, string]
    const partition = Number(p)
    const key = (part: PartitionPart) => this.keys.partition(tenantId, queue, partition, part)
    const dueTimes: number[] = []
    let nextDue = -1
    for (;;) {
      const [promoted, next, ...times] = (await this.redis.promoteDue(
        key('stream'),
        key('delayed'),
        key('delayedBodies'),
        key('index'),
        now,
        limit
      )) as number[]
      for (const t of times) dueTimes.push(Number(t))
      nextDue = Number(next)
      if (Number(promoted) < limit || nextDue < 0 || nextDue > now) break
    }
    const { registry, generations } = this.keys.delayedRegistry
    await this.redis.settleDelayed(registry, generations, member, generation, nextDue)
    return dueTimes
  }

  /** Claims one occurrence of a schedule for `ttlMs`. @returns whether this caller got it. */
  async claimOccurrence(scheduleId: string, occurrenceMs: number, ttlMs: number): Promise<boolean> {
    return (
      (await this.redis.set(
        this.keys.scheduleClaim(scheduleId, occurrenceMs),
        '1',
        'PX',
        ttlMs,
        'NX'
      )) === 'OK'
    )
  }

  /**
   * Trims a partition's acknowledged entries and those past `retentionBoundMs`, in batches
   * of `batch`, at most `maxBatches` of them. Acknowledged entries published after
   * `ledgerFloorMs` wait for the ledger (0: none do). @returns how many entries went.
   */
  async trimPartition(
    queue: Queue,
    partition: number,
    retentionBoundMs: number,
    batch: number,
    maxBatches: number,
    ledgerFloorMs = 0
  ): Promise<number> {
    let trimmed = 0
    for (let i = 0; i < maxBatches; i++) {
      const n = await this.redis.trim(
        this.key(queue, partition, 'stream'),
        this.key(queue, partition, 'index'),
        this.key(queue, partition, 'ledgerGap'),
        retentionBoundMs,
        batch,
        ledgerFloorMs
      )
      trimmed += n
      if (n < batch) break
    }
    return trimmed
  }
}

/** Stream id, delivery count, fields, and for dead ones the count the hold gave the entry. */
type RawDelivery = [string, number, string[], number?]

function toDelivery(partition: number, [streamId, count, raw, held]: RawDelivery): StoredDelivery {
  return {
    partition,
    streamId,
    deliveryCount: Number(count),
    message: decodeFields(streamId, raw),
    ...(held !== undefined && { heldAs: Number(held) }),
  }
}

/** What {@link StreamsRepository.sweepRemovedQueues} needs of a deleted queue. */
const removedRecord = (q: RemovedQueue) =>
  JSON.stringify({
    tenantId: q.tenantId,
    name: q.name,
    partitionCount: q.partitionCount,
    subscriptionIds: q.subscriptionIds,
  })

/** A partition's member in the delayed registry; `|` appears in no tenant id or queue name. */
const delayedMember = (tenantId: string, queue: string, partition: number) =>
  `${tenantId}|${queue}|${partition}`

/** The group position just before `time`: entries from that millisecond on are read next. */
function positionId(time: Date): string {
  return `${Math.max(0, time.getTime() - 1)}-18446744073709551615`
}
