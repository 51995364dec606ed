import { Cron } from 'croner'
import type { Queue } from '../domain/queues'
import type { Logger } from '../observability/logger'
import type { Loop } from '.'

/** Entries per script call, and calls per partition per sweep, to bound Redis busy time. */
const BATCH = 1000
const MAX_BATCHES = 20
const QUEUES_PER_PAGE = 500

export interface TrimmerDeps {
  /** Queues of every tenant, a page at a time, ordered by id. */
  queues(afterId: string | null, limit: number): Promise<Queue[]>
  trimPartition(
    queue: Queue,
    partition: number,
    retentionBoundMs: number,
    batch: number,
    maxBatches: number,
    ledgerFloorMs: number
  ): Promise<number>
  /** How long acknowledged entries wait for the ledger to read them; null: no ledger reads them. */
  ledgerGraceMs: number | null
  logger: Logger
}

/**
 * Keeps streams bounded: every few seconds it trims what every consumer group has
 * acknowledged and what is older than its queue's retention. Safe in many workers: trimming
 * twice trims nothing the second time.
 */
export class Trimmer implements Loop {
  readonly name = 'trimmer'
  private job: Cron | undefined
  private running: Promise<number> | undefined

  constructor(
    private readonly deps: TrimmerDeps,
    private readonly pattern = '*/5 * * * * *'
  ) {}

  start(): void {
    this.job = new Cron(
      this.pattern,
      { protect: true, catch: (err) => this.deps.logger.error({ err }, 'trimmer failed') },
      async () => {
        this.running = this.sweep()
        await this.running
      }
    )
  }

  /** One pass over every queue. @returns how many entries went. */
  async sweep(now = Date.now()): Promise<number> {
    let trimmed = 0
    let after: string | null = null
    for (;;) {
      const page: Queue[] = await this.deps.queues(after, QUEUES_PER_PAGE)
      for (const queue of page) {
        for (let p = 0; p < queue.partitionCount; p++) {
          trimmed += await this.deps.trimPartition(
            queue,
            p,
            now - queue.retentionMs,
            BATCH,
            MAX_BATCHES,
            this.deps.ledgerGraceMs === null ? 0 : now - this.deps.ledgerGraceMs
          )
        }
      }
      if (page.length < QUEUES_PER_PAGE) break
      after = page.at(-1)!.id
    }
    if (trimmed > 0) this.deps.logger.debug({ trimmed }, 'trimmed streams')
    return trimmed
  }

  async stop(): Promise<void> {
    this.job?.stop()
    await this.running?.catch(() => 0)
  }
}
