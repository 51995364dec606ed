import { Cron } from 'croner'
import type { MaintenanceStore } from '../domain/ports'
import type { Queue } from '../domain/queues'
import type { Logger } from '../observability/logger'
import type { MaintenanceTask } from '../observability/metrics'
import type { Loop } from './loop'

/** Entries per script call, and calls per partition per sweep, to bound Redis busy time. */
const BATCH = 1000
const MAX_BATCHES = 20
const QUEUES_PER_PAGE = 500
/**
 * Sweeps per delayed-registry repair (about a minute at one sweep per 5 s): a lost
 * registration is rare, and the repair reads two keys per partition.
 */
const REPAIR_EVERY = 12

export interface TrimmerDeps {
  /** Queues of every tenant, a page at a time, ordered by id. */
  queues(afterId: string | null, limit: number): Promise<Queue[]>
  trimPartition: MaintenanceStore['trimPartition']
  /**
   * Registers the partition's earliest delayed message in the tickers' registry when its entry
   * is missing or later: what a publish leaves when it dies between storing a delayed message
   * and registering it.
   */
  repairDelayed(queue: Queue, partition: number): Promise<void>
  /**
   * Deletes again the keys of queues deleted more than a grace period before `now` (what a
   * late writer recreated), and forgets them. @returns how many were swept.
   */
  sweepRemovedQueues(now: number): Promise<number>
  /** One partition's task failed and the sweep went past it. */
  onFailure(task: MaintenanceTask): void
  /** How long acknowledged entries wait for the ledger to read them; null: no ledger reads them. */
  ledgerGraceMs: number | null
  logger: Logger
}

/** A Redis error's code (the first word of its message, e.g. `ERR`, `CLUSTERDOWN`). */
function errorCode(err: unknown): string {
  if (!(err instanceof Error)) return 'unknown'
  return /^[A-Z][A-Z_]+(?=\s|$)/.exec(err.message)?.[0] ?? err.name
}

/**
 * Keeps streams bounded: every few seconds it trims what every consumer group has
 * acknowledged and what is older than its queue's retention, and repairs the delayed
 * registry. Safe in many workers: trimming twice trims nothing the second time.
 */
export class Trimmer implements Loop {
  readonly name = 'trimmer'
  private job: Cron | undefined
  private running: Promise<number> | undefined
  private sweeps = 0

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
    const repair = this.sweeps++ % REPAIR_EVERY === 0
    await this.attempt('removed', {}, async () => {
      await this.deps.sweepRemovedQueues(now)
      return 0
    })
    for (;;) {
      const page: Queue[] = await this.deps.queues(after, QUEUES_PER_PAGE)
      for (const queue of page) {
        for (let p = 0; p < queue.partitionCount; p++) {
          const ids = { tenantId: queue.tenantId, queueId: queue.id, partition: p }
          trimmed += await this.attempt('trim', ids, () =>
            this.deps.trimPartition(
              queue,
              p,
              now - queue.retentionMs,
              BATCH,
              MAX_BATCHES,
              this.deps.ledgerGraceMs === null ? 0 : now - this.deps.ledgerGraceMs
            )
          )
          if (repair) {
            await this.attempt('delayed', ids, async () => {
              await this.deps.repairDelayed(queue, p)
              return 0
            })
          }
        }
      }
      if (page.length < QUEUES_PER_PAGE) break
      after = page.at(-1)!.id
    }
    if (trimmed > 0) this.deps.logger.debug({ trimmed }, 'trimmed streams')
    return trimmed
  }

  /**
   * Runs one piece of the sweep. A failure is logged (code and ids only) and counted, and the
   * sweep goes on: one broken partition must not stop trimming every queue after it.
   */
  private async attempt(
    task: MaintenanceTask,
    ids: Record<string, string | number>,
    run: () => Promise<number>
  ): Promise<number> {
    try {
      return await run()
    } catch (err) {
      this.deps.onFailure(task)
      this.deps.logger.warn({ task, code: errorCode(err), ...ids }, 'sweep went past a failure')
      return 0
    }
  }

  async stop(): Promise<void> {
    this.job?.stop()
    await this.running?.catch(() => 0)
  }
}
