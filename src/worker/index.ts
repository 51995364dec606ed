import type { Deps } from '../deps'

/** A long-running loop of the worker role. */
export interface Loop {
  readonly name: string
  start(): void
  /** Stops taking new work and resolves once in-flight work is done. */
  stop(): Promise<void>
}

/**
 * Starts the worker role's loops. Delivery, ticker and reclaimer loops register here as they
 * are built; every one is safe to run in many processes at once.
 */
export function startWorker(deps: Deps, loops: Loop[] = []) {
  for (const loop of loops) loop.start()
  deps.logger.info({ loops: loops.map((l) => l.name) }, 'worker started')
  return {
    stop: async () => {
      await Promise.all(loops.map((l) => l.stop()))
    },
  }
}
