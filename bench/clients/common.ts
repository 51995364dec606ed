/**
 * What the bench's client processes share: how they get their job (JSON in argv[2]), how they
 * report (one JSON line on stdout), and the HTTP pull-and-ack loop used against the service
 * and the bare peer alike.
 */

/** The job a client was started with. */
export function readJob<T>(): T {
  const raw = process.argv[2]
  if (!raw) throw new Error('expected the job as JSON in the first argument')
  return JSON.parse(raw) as T
}

/** Prints the result for the harness and exits (open connections would keep the process up). */
export function report(result: unknown): never {
  console.log(`BENCH_RESULT ${JSON.stringify(result)}`)
  process.exit(0)
}

/** One consumer of an HTTP pull API: the service's subscription or the bare peer's. */
export interface PullTarget {
  pullUrl: string
  ackUrl: string
}

export interface Delivery {
  receipt: string
  payload: Record<string, unknown>
}

/**
 * Pulls (long polling `waitMs`) and acks until `signal` aborts, handing each batch to
 * `onBatch` before it is acked and the count to `onAcked` after. A failed call is retried after a pause, never in a tight loop.
 * @returns how many calls failed.
 */
export async function pullLoop(opts: {
  target: PullTarget
  token?: string
  max: number
  waitMs: number
  signal: AbortSignal
  onBatch?(deliveries: Delivery[]): void
  onAcked?(count: number): void
}): Promise<number> {
  const headers: Record<string, string> = { 'content-type': 'application/json' }
  if (opts.token) headers.authorization = `Bearer ${opts.token}`
  const pullBody = JSON.stringify({ max: opts.max, waitMs: opts.waitMs })
  let failures = 0
  while (!opts.signal.aborted) {
    try {
      const res = await fetch(opts.target.pullUrl, {
        method: 'POST',
        headers,
        body: pullBody,
        signal: opts.signal,
      })
      if (!res.ok) throw new Error(`pull: ${res.status} ${await res.text()}`)
      const { messages } = (await res.json()) as { messages: Delivery[] }
      if (messages.length === 0) continue
      opts.onBatch?.(messages)
      const ack = await fetch(opts.target.ackUrl, {
        method: 'POST',
        headers,
        body: JSON.stringify({ receipts: messages.map((m) => m.receipt) }),
      })
      if (!ack.ok) throw new Error(`ack: ${ack.status} ${await ack.text()}`)
      opts.onAcked?.(messages.length)
    } catch (err) {
      if (opts.signal.aborted) break
      failures++
      if (failures <= 3) console.error((err as Error).message)
      await Bun.sleep(100)
    }
  }
  return failures
}
