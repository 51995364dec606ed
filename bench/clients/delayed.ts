/**
 * Delayed delivery, in two phases on one queue with consumers running throughout:
 * 1. spread: `count` messages due evenly over `windowMs` (starting `leadMs` after the first
 *    publish, time enough to publish them all); each arrival is compared with its due time:
 *    early (before it) must never happen, lateness p50/p99 is the figure;
 * 2. overdue: `count` messages all due at one instant; the time from it until none is still
 *    scheduled (promoted) and until all have arrived (delivered).
 * Due times are wall-clock (the service compares them with its Date.now(); one machine).
 * - kind "service": batch publish with deliverAt, long-poll pull + ack, queue stats for promotion;
 * - kind "bullmq": addBulk with delay, Workers, getDelayedCount for promotion.
 */
import { Queue, Worker } from 'bullmq'
import { Redis } from 'ioredis'
import { summarize } from '../lib/stats'
import { type PullTarget, pullLoop, readJob, report } from './common'

type Job = {
  count: number
  windowMs: number
  leadMs: number
  payload: Record<string, unknown>
} & (
  | { kind: 'service'; apiUrl: string; token: string; queue: string; targets: PullTarget[] }
  | { kind: 'bullmq'; redisUrl: string; queue: string; consumers: number }
)

const BATCH = 1000
const job = readJob<Job>()
const stop = new AbortController()

interface Phase {
  name: 'spread' | 'overdue'
  lateness: number[]
  early: number
  arrived: number
  onAllArrived?: () => void
}
let phase: Phase = { name: 'spread', lateness: [], early: 0, arrived: 0 }

function receive(payload: { due?: number; phase?: string }): void {
  if (typeof payload.due !== 'number' || payload.phase !== phase.name) return
  const lateness = Date.now() - payload.due
  if (lateness < 0) phase.early++
  phase.lateness.push(lateness)
  phase.arrived++
  if (phase.arrived >= job.count) phase.onAllArrived?.()
}

/** Publishes messages due at `dueOf(i)`; @returns how many were not stored as scheduled. */
let publishBatch: (dues: number[]) => Promise<number>
/** Messages still waiting in the delayed set. */
let scheduledCount: () => Promise<number>
let closeConsumers: () => Promise<void>

if (job.kind === 'service') {
  const headers = { authorization: `Bearer ${job.token}`, 'content-type': 'application/json' }
  publishBatch = async (dues) => {
    const res = await fetch(`${job.apiUrl}/publish/batch`, {
      method: 'POST',
      headers,
      body: JSON.stringify({
        queue: job.queue,
        messages: dues.map((due) => ({
          payload: { ...job.payload, due, phase: phase.name },
          deliverAt: new Date(due).toISOString(),
        })),
      }),
    })
    if (!res.ok) throw new Error(`publish: ${res.status} ${await res.text()}`)
    const body = (await res.json()) as { results: { status: string }[] }
    return body.results.filter((r) => r.status !== 'scheduled').length
  }
  scheduledCount = async () => {
    const res = await fetch(`${job.apiUrl}/queues/${job.queue}`, { headers })
    const queue = (await res.json()) as { stats: { scheduled: number } }
    return queue.stats.scheduled
  }
  const loops = job.targets.map((target) =>
    pullLoop({
      target,
      token: job.token,
      max: 100,
      waitMs: 5000,
      signal: stop.signal,
      onBatch: (batch) => {
        for (const d of batch) receive(d.payload)
      },
    })
  )
  closeConsumers = async () => {
    stop.abort()
    await Promise.all(loops)
  }
} else {
  const connection = new Redis(job.redisUrl, { maxRetriesPerRequest: null })
  const queue = new Queue(job.queue, { connection, prefix: 'bench:bull' })
  publishBatch = async (dues) => {
    const now = Date.now()
    await queue.addBulk(
      dues.map((due) => ({
        name: 'message',
        data: { ...job.payload, due, phase: phase.name },
        opts: { delay: Math.max(0, due - now) },
      }))
    )
    return dues.filter((due) => due <= now).length
  }
  scheduledCount = () => queue.getDelayedCount()
  const workers = Array.from(
    { length: job.consumers },
    () =>
      new Worker(job.queue, async (j) => receive(j.data), {
        connection,
        prefix: 'bench:bull',
        concurrency: 100,
      })
  )
  closeConsumers = async () => {
    await Promise.all(workers.map((w) => w.close(true)))
  }
}

/** Publishes `job.count` messages with the due times of `dueOf`, four batches at a time. */
async function publishAll(dueOf: (i: number) => number): Promise<number> {
  let notScheduled = 0
  let next = 0
  await Promise.all(
    Array.from({ length: 4 }, async () => {
      while (next < job.count) {
        const from = next
        next = Math.min(job.count, next + BATCH)
        const dues = Array.from({ length: next - from }, (_, k) => dueOf(from + k))
        notScheduled += await publishBatch(dues)
      }
    })
  )
  return notScheduled
}

function arrivedOrTimeout(timeoutMs: number): Promise<void> {
  return Promise.race([
    new Promise<void>((resolve) => {
      if (phase.arrived >= job.count) resolve()
      phase.onAllArrived = resolve
    }),
    Bun.sleep(timeoutMs),
  ])
}

// Phase 1: spread over the window.
const spreadStart = Date.now() + job.leadMs
const spreadNotScheduled = await publishAll(
  (i) => spreadStart + Math.floor((i * job.windowMs) / job.count)
)
await arrivedOrTimeout(Math.max(0, spreadStart + job.windowMs - Date.now()) + 10_000)
const spread = { ...summarize(phase.lateness), early: phase.early, arrived: phase.arrived }

// Phase 2: all overdue at once.
phase = { name: 'overdue', lateness: [], early: 0, arrived: 0 }
const dueAt = Date.now() + job.leadMs
const overdueNotScheduled = await publishAll(() => dueAt)
const publishedBy = Date.now()
let promotedMs = Number.NaN
const timeout = dueAt + 20_000
while (Date.now() < timeout) {
  if (Date.now() >= dueAt && (await scheduledCount()) === 0) {
    promotedMs = Date.now() - dueAt
    break
  }
  await Bun.sleep(10)
}
await arrivedOrTimeout(Math.max(0, timeout - Date.now()))
const deliveredMs = phase.arrived >= job.count ? Math.max(...phase.lateness) : Number.NaN
await closeConsumers()

report({
  count: job.count,
  windowMs: job.windowMs,
  spreadNotScheduled,
  spreadArrived: spread.arrived,
  early: spread.early,
  latenessP50Ms: spread.p50,
  latenessP99Ms: spread.p99,
  latenessMaxMs: spread.max,
  overdueNotScheduled,
  overduePublishedBeforeDue: publishedBy <= dueAt,
  overdueArrived: phase.arrived,
  promotedMs,
  deliveredMs,
})
