import type { LedgerRepository } from '../db/ledger-repository'
import { chunks, ledgerRow, type RowsJson } from '../db/ledger-rows'
import type { AttemptBatch, LedgerMode } from '../domain/ledger'
import type { Queue } from '../domain/queues'
import type { Logger } from '../observability/logger'
import { decodeBatch, type LedgerStreams, type RawEntry } from '../streams/ledger'
import { LEDGER_WRITER_DEFAULTS, type LedgerWriterOptions } from './ledger-writer-options'
import { type Loop, missedDeadline, Pause } from './loop'

/** What the writer needs; the composition root (`src/wiring/worker.ts`) builds it. */
export interface LedgerWriterDeps {
  mode: LedgerMode
  /** Queues of every tenant, a page at a time, ordered by id. */
  queues(afterId: string | null, limit: number): Promise<Queue[]>
  /** Opens the writer's own connection, under a consumer name no other process uses. */
  connect(): LedgerStreams
  records: Pick<LedgerRepository, 'recordMessageRows' | 'recordAttempts'>
  /** Whether one read may name many streams: not on a cluster, where they hash to many slots. */
  multiKey: boolean
  logger: Logger
}

const QUEUES_PER_PAGE = 500
/** Entries per stored batch. */
const BATCH = 1000
/**
 * Reads: a quiet stream is read with many others, a few entries each; one that filled its
 * share is read alone next time, a full batch at once. No read returns more than 1000.
 */
const STREAMS_PER_READ = 100
const QUIET_COUNT = 10
const BUSY_COUNT = 1000
/** Reads (and sweep steps) in flight at once. */
const PARALLEL = 8
/** Groups created or destroyed per round trip. */
const GROUPS_PER_CALL = 500

/** What a stream read by the writer holds: one partition of a queue, or attempts. */
type Target = { queue: Queue; partition: number } | 'attempts'

/** Entries read but not yet stored, and what to acknowledge once they are. */
class Batch {
  messages: RowsJson[] = []
  attempts: AttemptBatch[] = []
  acks = new Map<string, string[]>()
  size = 0
}

/**
 * Writes the ledger (`message_records`, `consumption_records`) in batches, off the hot path.
 * Messages come from their streams, read with a consumer group of the ledger's own on every
 * partition of every queue: publishing costs nothing more. Trimming never waits for that
 * group: what it trims before the ledger read it is counted as the queue's ledger gap, which
 * the writer reports with one warning line per gap. Attempts come from the event streams the
 * ack, nack and dead-letter paths append to. Rows are written idempotently before the entries
 * are acknowledged, so a batch stored twice (a writer that died before acknowledging it, its
 * entries claimed by another) is stored once. A row PostgreSQL refuses is recorded and left
 * out; an outage keeps the batch in hand and retries it, backing off. Any number of writers
 * may run: the group hands each entry to one of them.
 */
export class LedgerWriter implements Loop {
  readonly name = 'ledger-writer'
  private readonly options: Required<LedgerWriterOptions>
  private readonly targets = new Map<string, Target>()
  private readonly known = new Map<string, Queue>()
  /** Streams whose group went missing: checked at the next refresh. */
  private readonly lost = new Set<string>()
  private readonly busy = new Set<string>()
  private streams: LedgerStreams | undefined
  private batch = new Batch()
  private running: Promise<void> | undefined
  private stopping = false
  private readonly pauses = new Pause()
  private nextRefresh = 0
  private nextSweep = 0
  private nextGapCheck = 0
  private failures = 0
  /** Rows PostgreSQL refused and the writer left out, since it started (each one logged). */
  refusedRows = 0

  constructor(
    private readonly deps: LedgerWriterDeps,
    options: LedgerWriterOptions = {}
  ) {
    this.options = { ...LEDGER_WRITER_DEFAULTS, ...options }
  }

  start(): void {
    if (this.running) return
    this.stopping = false
    this.streams = this.deps.connect()
    // The event streams get their group (and are read) from the first refresh on.
    if (this.deps.mode !== 'off') for (const s of this.streams.eventStreams()) this.lost.add(s)
    this.running = this.run()
  }

  /**
   * Stops reading and waits for the batch in hand to be stored and acknowledged, for up to
   * the deadline; what is left unacknowledged is claimed by another writer later.
   */
  async stop(): Promise<void> {
    this.stopping = true
    this.pauses.end()
    const late = await missedDeadline(
      this.running ?? Promise.resolve(),
      this.options.stopDeadlineMs
    )
    if (late) this.deps.logger.warn('ledger writer stopped with a batch not yet stored')
    this.streams?.close()
    this.running = undefined
  }

  private get redis(): LedgerStreams {
    if (!this.streams) throw new Error('ledger writer is not started')
    return this.streams
  }

  private async run(): Promise<void> {
    while (!this.stopping) {
      try {
        if (this.batch.size > 0) await this.flush()
        if (Date.now() >= this.nextRefresh) await this.refresh()
        if (this.deps.mode === 'off') {
          await this.pause(this.options.refreshMs)
          continue
        }
        if (Date.now() >= this.nextSweep) await this.sweep()
        // Not behind: wait before reading again, so the next batch is a larger one and the
        // writer yields the thread (shared with request handling in role `all`) meanwhile.
        if ((await this.pass()) < BATCH) await this.pause(this.options.idleMs)
        this.failures = 0
      } catch (err) {
        if (this.stopping) break
        // The batch in hand is kept and stored again first: its entries are pending for
        // this consumer and would not be read again.
        const ms = Math.min(this.options.retryCapMs, this.options.retryMs * 2 ** this.failures)
        this.failures = Math.min(this.failures + 1, 30)
        this.deps.logger.warn({ err, retryInMs: ms }, 'ledger writer failed; retrying')
        await this.pause(ms)
      }
    }
    if (this.batch.size > 0) await this.flush().catch(() => {})
  }

  private pause(ms: number): Promise<void> {
    return this.stopping ? Promise.resolve() : this.pauses.for(ms)
  }

  /**
   * Reads the queue list again. Queues seen for the first time get the group (mode `all`:
   * from their first entry, so nothing published before is missed) or lose it (a mode that
   * does not read the streams); deleted queues are no longer read.
   */
  private async refresh(): Promise<void> {
    const current = new Map<string, Queue>()
    for (let after: string | null = null; ; ) {
      const page: Queue[] = await this.deps.queues(after, QUEUES_PER_PAGE)
      for (const queue of page) current.set(queue.id, queue)
      if (page.length < QUEUES_PER_PAGE) break
      after = page.at(-1)!.id
    }
    for (const [id, queue] of this.known) {
      if (!current.has(id)) this.forget(queue)
    }
    const added = [...current.values()].filter((q) => !this.known.has(q.id))
    const streams = added.flatMap((q) => this.redis.messageStreams(q))
    for (const part of chunks(streams, GROUPS_PER_CALL)) {
      if (this.deps.mode === 'all') await this.redis.ensureGroup(part)
      else await this.redis.destroyGroup(part)
    }
    for (const queue of added) {
      this.known.set(queue.id, queue)
      if (this.deps.mode !== 'all') continue
      this.redis.messageStreams(queue).forEach((stream, partition) => {
        this.targets.set(stream, { queue, partition })
      })
    }
    await this.recover()
    if (this.deps.mode === 'all' && Date.now() >= this.nextGapCheck) await this.reportGaps()
    this.nextRefresh = Date.now() + this.options.refreshMs
  }

  /** One warning line per gap: entries of a partition trimmed before the ledger read them. */
  private async reportGaps(): Promise<void> {
    this.nextGapCheck = Date.now() + this.options.gapCheckMs
    const partitions = [...this.targets.values()].filter((t) => t !== 'attempts')
    for (const part of chunks(partitions, GROUPS_PER_CALL)) {
      const gaps = await Promise.all(part.map((t) => this.redis.takeGap(t.queue, t.partition)))
      gaps.forEach((messages, i) => {
        if (messages === 0) return
        const { queue, partition } = part[i]!
        this.deps.logger.warn(
          { tenantId: queue.tenantId, queueId: queue.id, queue: queue.name, partition, messages },
          'ledger gap: messages trimmed before the ledger recorded them'
        )
      })
    }
  }

  /** Gives the group back to streams that lost it but still belong to a queue or the log. */
  private async recover(): Promise<void> {
    const events = new Set(this.redis.eventStreams())
    const again = [...this.lost].filter((s) => events.has(s) || this.targets.has(s))
    this.lost.clear()
    for (const part of chunks(again, GROUPS_PER_CALL)) await this.redis.ensureGroup(part)
    for (const stream of again) if (events.has(stream)) this.targets.set(stream, 'attempts')
  }

  private forget(queue: Queue): void {
    this.known.delete(queue.id)
    for (const stream of this.redis.messageStreams(queue)) {
      this.targets.delete(stream)
      this.busy.delete(stream)
    }
  }

  /** Reads every stream once, storing as it goes. @returns how many entries it read. */
  private async pass(): Promise<number> {
    const streams = [...this.targets.keys()]
    const reads = [
      ...streams.filter((s) => this.busy.has(s)).map((s) => ({ streams: [s], count: BUSY_COUNT })),
      ...chunks(
        streams.filter((s) => !this.busy.has(s)),
        this.deps.multiKey ? STREAMS_PER_READ : 1
      ).map((part) => ({ streams: part, count: QUIET_COUNT })),
    ]
    let read = 0
    for (const window of chunks(reads, PARALLEL)) {
      if (this.stopping) break
      const counts = await Promise.all(window.map((r) => this.read(r.streams, r.count)))
      for (const n of counts) read += n
      if (this.batch.size >= BATCH) await this.flush()
    }
    await this.flush()
    return read
  }

  /**
   * Reads up to `count` new entries of each of `streams` into the batch. One message stream
   * alone (a busy one, or any on a cluster) comes back as ledger rows ready to store.
   * @returns how many entries it read.
   */
  private async read(streams: string[], count: number): Promise<number> {
    const only = streams.length === 1 ? this.targets.get(streams[0]!) : undefined
    try {
      if (only !== undefined && only !== 'attempts') {
        const stream = streams[0]!
        const { ids, rows } = await this.redis.readRows(stream, only, count)
        this.note(stream, ids.length, count)
        if (rows) this.keep(stream, ids, () => this.batch.messages.push(rows))
        return ids.length
      }
      const replies = await this.redis.read(streams, count)
      let read = 0
      for (const stream of streams) {
        const entries = replies.get(stream) ?? []
        this.note(stream, entries.length, count)
        this.add(stream, entries)
        read += entries.length
      }
      return read
    } catch (err) {
      if (!/NOGROUP/.test((err as Error).message)) throw err
      // A deleted queue (or a destroyed group): the refresh tells which.
      const key = /No such key '([^']+)'/.exec((err as Error).message)?.[1]
      for (const stream of key ? [key] : streams) this.lost.add(stream)
      this.nextRefresh = 0
      return 0
    }
  }

  /** A stream that filled its share is read alone, a full batch at once, next time. */
  private note(stream: string, read: number, count: number): void {
    if (read >= count) this.busy.add(stream)
    else this.busy.delete(stream)
  }

  /** Puts entries in the batch with `store`, to be acknowledged once the batch is stored. */
  private keep(stream: string, ids: string[], store: () => void): void {
    if (ids.length === 0) return
    store()
    const acks = this.batch.acks.get(stream)
    if (acks) acks.push(...ids)
    else this.batch.acks.set(stream, ids)
    this.batch.size += ids.length
  }

  /** Puts entries read as fields in the batch. */
  private add(stream: string, entries: RawEntry[]): void {
    const target = this.targets.get(stream)
    if (target === undefined) return
    const ids = entries.map(([id]) => id)
    if (target !== 'attempts') {
      const of = {
        tenantId: target.queue.tenantId,
        queueId: target.queue.id,
        partition: target.partition,
      }
      const rows = entries.map(([id, fields]) => ledgerRow(of, id, fields))
      this.keep(stream, ids, () =>
        this.batch.messages.push({ json: JSON.stringify(rows), count: rows.length })
      )
      return
    }
    this.keep(stream, ids, () => {
      for (const [id, fields] of entries) {
        try {
          this.batch.attempts.push(decodeBatch(fields[fields.indexOf('a') + 1] ?? ''))
        } catch (err) {
          this.deps.logger.warn({ err: (err as Error).message, id }, 'ledger event unreadable')
        }
      }
    })
  }

  /**
   * Stores the batch, then acknowledges it (and deletes the events it held). Each half is
   * dropped from the batch once stored, so a retry after a failure does not store it again.
   */
  private async flush(): Promise<void> {
    const batch = this.batch
    if (batch.size === 0) return
    if (batch.messages.length > 0) {
      this.refusedRows += await this.deps.records.recordMessageRows(batch.messages)
      batch.messages = []
    }
    if (batch.attempts.length > 0) {
      this.refusedRows += await this.deps.records.recordAttempts(batch.attempts)
      batch.attempts = []
    }
    await Promise.all(
      [...batch.acks].map(([stream, ids]) =>
        this.redis.ack(stream, ids, this.targets.get(stream) === 'attempts')
      )
    )
    this.batch = new Batch()
  }

  /**
   * One writer at a time, every `sweepMs`: takes over entries other consumers have held
   * unacknowledged for `claimIdleMs` (a writer that crashed), stores them, and deletes the
   * consumers of writers that are gone.
   */
  private async sweep(): Promise<void> {
    this.nextSweep = Date.now() + this.options.sweepMs
    if (!(await this.redis.claimSweep(this.options.sweepMs))) return
    for (const window of chunks([...this.targets.keys()], PARALLEL)) {
      if (this.stopping) break
      // A stream that cannot be claimed from now is left to the next sweep; a lost group is
      // noticed by the next read.
      const claimed = await Promise.all(
        window.map((s) =>
          this.redis
            .claim(s, this.options.claimIdleMs, BATCH)
            .catch(() => ({ entries: [], trimmed: [] }))
        )
      )
      for (const [i, stream] of window.entries()) {
        const { entries, trimmed } = claimed[i]!
        // Read by a writer that is gone, then trimmed before it was stored: a gap too. This
        // writer's own batch in hand (claimed back when it waited that long) is stored.
        const held = new Set(this.batch.acks.get(stream))
        const lost = trimmed.filter((id) => !held.has(id)).length
        this.add(stream, entries)
        const target = this.targets.get(stream)
        if (lost > 0 && target && target !== 'attempts') {
          await this.redis.addGap(target.queue, target.partition, lost)
        }
      }
      await Promise.all(
        window.map((s) =>
          this.redis.forgetIdleConsumers(s, this.options.forgetAfterMs).catch(() => 0)
        )
      )
      if (this.batch.size >= BATCH) await this.flush()
    }
    await this.flush()
  }
}
