/**
 * End-to-end latency at a fixed rate: publishes `rate` messages/s for `seconds` (open loop:
 * each message leaves at its scheduled time whatever the answers do) and measures, in this
 * same process, the time from just before its publish request to its receipt. One process
 * holds both ends, so `performance.now()` is one monotonic clock for both.
 * Receivers:
 * - "pull": long-poll pull + ack over HTTP (the service's subscriptions, the bare peer);
 * - "webhook": an HTTP server on `port` that the service (or a BullMQ Worker) POSTs to;
 * - "bullmq": BullMQ Workers; with `webhookPort` each job is POSTed to the receiver on
 *   that port (what a BullMQ user writes to push to an endpoint), else received in the Worker.
 */
import { Worker } from 'bullmq'
import { Redis } from 'ioredis'
import { summarize } from '../lib/stats'
import { type PullTarget, pullLoop, readJob, report } from './common'

type Receiver =
  | { kind: 'pull'; targets: PullTarget[]; token?: string }
  | { kind: 'webhook'; port: number }
  | { kind: 'bullmq'; redisUrl: string; queue: string; consumers: number; webhookPort?: number }

interface Job {
  publishUrl: string
  token?: string
  queue: string
  rate: number
  seconds: number
  /** How long to wait for stragglers once publishing stops. */
  drainMs: number
  payload: Record<string, unknown>
  receiver: Receiver
}

/** Publishes in flight at once at most; past it the publisher falls behind and says so. */
const MAX_IN_FLIGHT = 2000

const job = readJob<Job>()
const latencies: number[] = []
const seen = new Set<number>()
let duplicates = 0
let allIn: () => void = () => {}
let sent = 0
/** Known once publishing is over: what was accepted, so what must arrive. */
let expected = Number.POSITIVE_INFINITY

/** Set when the first probe arrives: the receiver is live. */
let probed: () => void = () => {}

function receive(payload: { seq?: number; sentAt?: number; probe?: boolean }): void {
  const now = performance.now()
  if (payload.probe) {
    probed()
    return
  }
  if (typeof payload.seq !== 'number' || typeof payload.sentAt !== 'number') return
  if (seen.has(payload.seq)) {
    duplicates++
    return
  }
  seen.add(payload.seq)
  latencies.push(now - payload.sentAt)
  if (seen.size >= expected) allIn()
}

const stop = new AbortController()
const cleanups: Array<() => Promise<void> | void> = []
let receiverFailures = 0

function startWebhookReceiver(port: number): void {
  const server = Bun.serve({
    hostname: '127.0.0.1',
    port,
    fetch: async (req) => {
      receive((await req.json()) as { seq?: number; sentAt?: number })
      return new Response(null, { status: 204 })
    },
  })
  cleanups.push(() => server.stop(true))
}

const r = job.receiver
if (r.kind === 'pull') {
  const loops = r.targets.map((target) =>
    pullLoop({
      target,
      token: r.token,
      max: 100,
      waitMs: 5000,
      signal: stop.signal,
      onBatch: (batch) => {
        for (const d of batch) receive(d.payload)
      },
    })
  )
  cleanups.push(async () => {
    receiverFailures = (await Promise.all(loops)).reduce((a, b) => a + b, 0)
  })
} else if (r.kind === 'webhook') {
  startWebhookReceiver(r.port)
} else {
  const connection = new Redis(r.redisUrl, { maxRetriesPerRequest: null })
  const hook = r.webhookPort ? `http://127.0.0.1:${r.webhookPort}/hook` : undefined
  if (r.webhookPort) startWebhookReceiver(r.webhookPort)
  const workers = Array.from(
    { length: r.consumers },
    () =>
      new Worker(
        r.queue,
        async (j) => {
          if (!hook) return receive(j.data)
          const res = await fetch(hook, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify(j.data),
          })
          if (!res.ok) throw new Error(`webhook answered ${res.status}`)
        },
        { connection, prefix: 'bench:bull', concurrency: 10 }
      )
  )
  await Promise.all(workers.map((w) => w.waitUntilReady()))
  cleanups.push(() => Promise.all(workers.map((w) => w.close(true))).then(() => {}))
}

const headers: Record<string, string> = { 'content-type': 'application/json' }
if (job.token) headers.authorization = `Bearer ${job.token}`

/**
 * Measures the steady state, not start-up: probes go out every 200 ms until one arrives (a
 * new webhook subscription is picked up by the worker's next refresh; long polls and Workers
 * are waiting at once), then stragglers get a moment to drain.
 * @returns ms until the receiver was live, or NaN if it never was.
 */
async function waitUntilLive(timeoutMs: number): Promise<number> {
  const started = performance.now()
  let live = false
  const arrived = new Promise<void>((resolve) => {
    probed = () => {
      live = true
      resolve()
    }
  })
  while (!live && performance.now() - started < timeoutMs) {
    void fetch(job.publishUrl, {
      method: 'POST',
      headers,
      body: JSON.stringify({ queue: job.queue, payload: { probe: true } }),
    }).catch(() => {})
    await Promise.race([arrived, Bun.sleep(200)])
  }
  if (!live) return Number.NaN
  const liveMs = performance.now() - started
  await Bun.sleep(500)
  return liveMs
}

const liveMs = await waitUntilLive(20_000)
const publishLatencies: number[] = []
let publishErrors = 0
let inFlight = 0
let skipped = 0

async function publish(seq: number): Promise<void> {
  const sentAt = performance.now()
  inFlight++
  try {
    const res = await fetch(job.publishUrl, {
      method: 'POST',
      headers,
      body: JSON.stringify({ queue: job.queue, payload: { ...job.payload, seq, sentAt } }),
    })
    await res.arrayBuffer()
    if (res.ok) publishLatencies.push(performance.now() - sentAt)
    else publishErrors++
  } catch {
    publishErrors++
  } finally {
    inFlight--
  }
}

const started = performance.now()
const total = Math.round(job.rate * job.seconds)
while (sent < total) {
  const due = Math.min(total, Math.floor(((performance.now() - started) * job.rate) / 1000))
  while (sent < due) {
    if (inFlight >= MAX_IN_FLIGHT) {
      skipped += due - sent
      sent = due
      break
    }
    void publish(sent++)
  }
  await Bun.sleep(1)
}
const publishedMs = performance.now() - started
while (inFlight > 0) await Bun.sleep(5)
expected = sent - skipped - publishErrors
if (seen.size < expected) {
  await Promise.race([
    new Promise<void>((resolve) => {
      allIn = resolve
    }),
    Bun.sleep(job.drainMs),
  ])
}
stop.abort()
for (const c of cleanups) await c()

const e2e = summarize(latencies)
const pub = summarize(publishLatencies)
report({
  liveMs,
  sent: sent - skipped,
  received: seen.size,
  duplicates,
  publishErrors,
  receiverFailures,
  achievedRate: ((sent - skipped) / publishedMs) * 1000,
  p50Ms: e2e.p50,
  p99Ms: e2e.p99,
  maxMs: e2e.max,
  publishP50Ms: pub.p50,
  publishP99Ms: pub.p99,
})
