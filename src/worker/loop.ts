/** A long-running loop of the worker role. */
export interface Loop {
  readonly name: string
  start(): void
  /** Stops taking new work and resolves once in-flight work is done. */
  stop(): Promise<void>
}

/** After a failed pull, wait or pass, so a failing Redis or PostgreSQL is not hammered. */
export const ERROR_PAUSE_MS = 1000

/** Below the process's 10 s shutdown deadline, leaving time to close connections. */
export const STOP_DEADLINE_MS = 8000

/**
 * Waits for `work` to settle, for at most `deadlineMs`: how a loop's stop() bounds the wait
 * for what it has in hand. @returns true when the deadline came first.
 */
export async function missedDeadline(work: Promise<unknown>, deadlineMs: number): Promise<boolean> {
  let timer: Timer | undefined
  const late = await Promise.race([
    work.then(() => false),
    new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(true), deadlineMs)
    }),
  ])
  clearTimeout(timer)
  return late
}

/** A loop's pause between passes, which stop() ends early. */
export class Pause {
  private wakeUp: (() => void) | undefined

  /** Resolves after `ms`, or at the next {@link end}. */
  for(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, ms)
      this.wakeUp = () => {
        clearTimeout(timer)
        resolve()
      }
    })
  }

  end(): void {
    this.wakeUp?.()
  }
}
