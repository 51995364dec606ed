import { Cron } from 'croner'
import type { DelayedStore } from '../domain/ports'
import type { Logger } from '../observability/logger'
import { createRedis, type RedisClient, type RedisTarget } from '../streams/redis'
import type { Loop } from './loop'

/** Partitions settled per registry read, and messages promoted per script call. */
const PARTITIONS_PER_READ = 100
const MESSAGES_PER_CALL = 1000

export interface DelayedTickerDeps {
  store: DelayedStore
  redisTarget: RedisTarget
  wakeupChannel: string
  logger: Logger
  /** Called with how late (ms) each promoted message was, for the lateness histogram. */
  onPromoted(latenessMs: number[]): void
}

/**
 * Promotes delayed messages when they are due. It holds no state of its own: due times live
 * in Redis, and promotion is an atomic script, so any number of tickers may run. croner ticks
 * every second as a floor; between ticks a timer wakes for the earliest due time, and
 * publishers announce new due times on a channel, so a message is late by milliseconds, not
 * by up to a second.
 */
export class DelayedTicker implements Loop {
  readonly name = 'delayed-ticker'
  private job: Cron | undefined
  private subscriber: RedisClient | undefined
  private timer: Timer | undefined
  private timerAt = Number.POSITIVE_INFINITY
  private running: Promise<void> | undefined
  private rerun = false
  private stopping = false

  constructor(private readonly deps: DelayedTickerDeps) {}

  start(): void {
    this.job = new Cron(
      '* * * * * *',
      {
        protect: true,
        catch: (err) => this.deps.logger.error({ err }, 'delayed ticker failed'),
      },
      () => this.kick()
    )
    const subscriber = createRedis(this.deps.redisTarget, 'subscriber', this.deps.logger)
    subscriber.on('message', (channel: string, due: string) => {
      if (channel === this.deps.wakeupChannel) this.wakeAt(Number(due))
    })
    void subscriber
      .subscribe(this.deps.wakeupChannel)
      // A due time announced before the subscription took effect (a cluster takes a while to
      // connect) was missed: look at the registry again rather than wait for the next tick.
      .then(() => this.kick())
      .catch((err: Error) => {
        this.deps.logger.warn(
          { err: err.message },
          'delayed wake-ups unavailable; ticking each second'
        )
      })
    this.subscriber = subscriber
    this.kick()
  }

  /** Runs a tick now, or right after the one in progress (never two at once here). */
  private kick(): void {
    if (this.stopping) return
    if (this.running) {
      this.rerun = true
      return
    }
    this.running = this.tick()
      .catch((err) => this.deps.logger.error({ err }, 'delayed ticker failed'))
      .finally(() => {
        this.running = undefined
        if (this.rerun) {
          this.rerun = false
          this.kick()
        }
      })
  }

  private wakeAt(due: number): void {
    if (this.stopping || !(due < this.timerAt)) return
    clearTimeout(this.timer)
    this.timerAt = due
    this.timer = setTimeout(
      () => {
        this.timerAt = Number.POSITIVE_INFINITY
        this.kick()
      },
      Math.max(0, due - Date.now())
    )
  }

  private async tick(): Promise<void> {
    for (;;) {
      const now = Date.now()
      const due = await this.deps.store.duePartitions(now, PARTITIONS_PER_READ)
      const promoted = await Promise.all(
        due.map((d) =>
          this.deps.store.promotePartition(d.member, d.generation, now, MESSAGES_PER_CALL)
        )
      )
      const lateness = promoted.flat().map((dueAt) => Date.now() - dueAt)
      if (lateness.length > 0) this.deps.onPromoted(lateness)
      if (due.length < PARTITIONS_PER_READ || this.stopping) break
    }
    const earliest = await this.deps.store.earliestDue()
    if (earliest !== null) this.wakeAt(earliest)
  }

  async stop(): Promise<void> {
    this.stopping = true
    this.job?.stop()
    clearTimeout(this.timer)
    await this.running
    this.subscriber?.disconnect()
  }
}
