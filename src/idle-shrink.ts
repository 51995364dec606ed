import type { Logger } from './observability/logger'

/** How often the process's CPU use is read: one window. */
const WINDOW_MS = 10_000
/** A window that used at least this share of one core was work, after which memory is given back. */
const BUSY_SHARE = 0.2
/**
 * A window under this share of one core is quiet. An idle service in role `all` uses about
 * 2–3 % for its loops and tickers.
 */
const QUIET_SHARE = 0.05
/**
 * Quiet windows in a row before memory is given back: a minute. Traffic with lulls of a few
 * seconds keeps its compiled code; a shorter wait threw it away between the bench's runs.
 */
const QUIET_WINDOWS = 6

/**
 * Decides, one window's CPU share at a time, when to give memory back: once, after work, when
 * the process has been quiet for {@link QUIET_WINDOWS} windows in a row. A steady light load
 * never counts as work, so it is not shrunk again and again.
 */
export class IdleShrinker {
  private armed = false
  private quiet = 0

  constructor(private readonly shrink: () => void) {}

  /** @returns whether this window shrank. */
  observe(share: number): boolean {
    if (share >= BUSY_SHARE) this.armed = true
    this.quiet = share < QUIET_SHARE ? this.quiet + 1 : 0
    if (!this.armed || this.quiet < QUIET_WINDOWS) return false
    this.armed = false
    this.shrink()
    return true
  }
}

/**
 * Gives memory back to the system when the process goes quiet after work. After a load, a
 * quiet service held about 25 MB more than at start (108 against 83 MB after a thousand
 * queues were made, used and deleted), which full collections alone do not return: it is
 * mostly compiled code and the allocators' free pages. `Bun.shrink()` discards compiled code,
 * collects in full and releases free memory. The cost falls on the next load, which runs
 * slower for about a second while JSC compiles the code again (docs/DECISIONS.md, Memory).
 * @returns a stop function.
 */
export function startIdleShrink(logger: Logger): () => void {
  const shrinker = new IdleShrinker(() => Bun.shrink())
  const cpuMicros = () => {
    const { user, system } = process.cpuUsage()
    return user + system
  }
  let used = cpuMicros()
  let at = performance.now()
  const timer = setInterval(() => {
    const nowUsed = cpuMicros()
    const now = performance.now()
    const share = (nowUsed - used) / ((now - at) * 1000)
    used = nowUsed
    at = now
    if (shrinker.observe(share)) logger.debug('quiet after work: memory given back')
  }, WINDOW_MS)
  // Nothing to give back once the process is on its way out.
  timer.unref()
  return () => clearInterval(timer)
}
