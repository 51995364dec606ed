import type { Logger } from '../observability/logger'

/** What start-up opened, closed in reverse order at shutdown (or when start-up fails). */
export class Closers {
  private readonly closers: Array<() => Promise<unknown>> = []

  constructor(private readonly logger: Logger) {}

  add(close: () => Promise<unknown>): void {
    this.closers.push(close)
  }

  readonly close = async (): Promise<void> => {
    for (const fn of this.closers.reverse()) {
      await fn().catch((err) => this.logger.warn({ err: (err as Error).message }, 'close failed'))
    }
  }
}
