/**
 * Consumption throughput: drains `expected` messages already in a queue with `consumers`
 * concurrent consumers and reports messages/s from the first pull to the last ack.
 * - kind "http": pull + ack over HTTP (the service's subscriptions or the bare peer's routes);
 * - kind "bullmq": BullMQ Workers (a job is acknowledged when the Worker completes it).
 */
import { Worker } from 'bullmq'
import { Redis } from 'ioredis'
import { type PullTarget, pullLoop, readJob, report } from './common'

type Job =
  | {
      kind: 'http'
      targets: PullTarget[]
      token?: string
      max: number
      expected: number
      timeoutMs: number
    }
  | {
      kind: 'bullmq'
      redisUrl: string
      queue: string
      consumers: number
      concurrency: number
      expected: number
      timeoutMs: number
    }

const job = readJob<Job>()
const started = performance.now()
let received = 0
let done: () => void
const finished = new Promise<void>((resolve) => {
  done = resolve
})
const deadline = setTimeout(() => done(), job.timeoutMs)

if (job.kind === 'http') {
  const stop = new AbortController()
  const loops = job.targets.map((target) =>
    pullLoop({
      target,
      token: job.token,
      max: job.max,
      waitMs: 1000,
      signal: stop.signal,
      onAcked: (count) => {
        received += count
        if (received >= job.expected) done()
      },
    })
  )
  await finished
  const elapsedMs = performance.now() - started
  stop.abort()
  const failures = (await Promise.all(loops)).reduce((a, b) => a + b, 0)
  report({ received, elapsedMs, rate: (received / elapsedMs) * 1000, failures })
} else {
  const connection = new Redis(job.redisUrl, { maxRetriesPerRequest: null })
  const workers = Array.from(
    { length: job.consumers },
    () =>
      new Worker(job.queue, async () => {}, {
        connection,
        prefix: 'bench:bull',
        concurrency: job.concurrency,
      })
  )
  for (const w of workers) {
    w.on('completed', () => {
      received++
      if (received >= job.expected) done()
    })
  }
  await finished
  const elapsedMs = performance.now() - started
  clearTimeout(deadline)
  await Promise.all(workers.map((w) => w.close(true)))
  report({ received, elapsedMs, rate: (received / elapsedMs) * 1000, failures: 0 })
}
