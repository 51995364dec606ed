import { Cron } from 'croner'
import { fireDueSchedules, type ScheduleDeps } from '../domain/schedules'
import type { Logger } from '../observability/logger'
import type { Loop } from './loop'

/**
 * Fires recurring schedules each second. Occurrences are claimed in Redis and recorded with
 * a conditional update, so several workers may tick at once and each occurrence publishes
 * once (see fireDueSchedules).
 */
export class ScheduleTicker implements Loop {
  readonly name = 'schedule-ticker'
  private job: Cron | undefined
  private running: Promise<unknown> | undefined

  constructor(
    private readonly deps: ScheduleDeps,
    private readonly logger: Logger
  ) {}

  start(): void {
    this.job = new Cron(
      '* * * * * *',
      {
        // A slow tick (PostgreSQL busy) is skipped over rather than overlapped.
        protect: true,
        catch: (err) => this.logger.error({ err }, 'schedule ticker failed'),
      },
      async () => {
        this.running = fireDueSchedules(this.deps, new Date())
        await this.running
      }
    )
  }

  async stop(): Promise<void> {
    this.job?.stop()
    await this.running?.catch(() => {})
  }
}
