/**
 * Items of one subscription sent to Redis together, gathered while the previous call runs:
 * every acknowledgement (or permit given back) meanwhile goes in the next call, one round trip
 * for all of them instead of one each. The first item is sent at once (no timer), so batching
 * costs no latency; it only grows with the load.
 */
export class Batch<T> {
  private pending: Array<{ item: T; done: PromiseWithResolvers<void> }> = []
  private flushing = false

  constructor(private readonly send: (items: T[]) => Promise<unknown>) {}

  /** @returns once the call carrying `item` has settled it (or rejects as that call did). */
  add(item: T): Promise<void> {
    const done = Promise.withResolvers<void>()
    this.pending.push({ item, done })
    if (!this.flushing) void this.flush()
    return done.promise
  }

  private async flush(): Promise<void> {
    this.flushing = true
    while (this.pending.length > 0) {
      const batch = this.pending.splice(0)
      try {
        await this.send(batch.map((p) => p.item))
        for (const p of batch) p.done.resolve()
      } catch (err) {
        for (const p of batch) p.done.reject(err)
      }
    }
    this.flushing = false
  }
}

/** Slots shared by every dispatcher of a process: the global in-flight cap. */
export class Slots {
  private waiters: Array<() => void> = []

  constructor(private free: number) {}

  /** Takes up to `n` slots. @returns how many it got. */
  take(n: number): number {
    const got = Math.max(0, Math.min(n, this.free))
    this.free -= got
    return got
  }

  give(n: number): void {
    if (n <= 0) return
    this.free += n
    for (const wake of this.waiters.splice(0)) wake()
  }

  /** Resolves the next time slots are given back. */
  freed(): Promise<void> {
    return new Promise((resolve) => this.waiters.push(resolve))
  }
}
