/**
 * RELIABILITY P1, the soak: `bun run test:soak`, and in CI `test:soak:ci` (10 minutes).
 * Mixed traffic for SOAK_MINUTES (default 30): pull consumers in two killable processes,
 * webhooks, delayed messages, over SOAK_TENANTS tenants (default 20; RELIABILITY asks for 100
 * on bigger machines), with a consumer process killed with SIGKILL every sixth of the run
 * (every 5 min in a 30-minute one). Passes with lost = 0, duplicates only from the kills, service RSS
 * after warm-up within +10 %, Redis memory back near its baseline after the drain, open file
 * descriptors stable, and publish p99 in the last sixth within 20 % of the first.
 *
 *   SOAK_MINUTES=30 bun run test:soak     # the full run
 *   SOAK_MINUTES=3 bun run test:soak      # a quick check that it works
 *
 * With MQ_HEAP_SNAPSHOT_DIR set, the services write heap dumps there (src/observability/
 * heap-dump.ts) after warm-up, at the end of traffic and after the drain.
 */
import { afterAll, expect, test } from 'bun:test'
import { readdirSync, readFileSync } from 'node:fs'
import { WINDOW_SECONDS } from '../../src/observability/flow-window'
import { newTenant, token } from '../helpers/harness'
import { type Answer, drain, produce } from './client'
import { expectValid, History, report } from './oracle'
import {
  ChaosRedis,
  ConsumerProcess,
  chaosDatabase,
  reaper,
  ServiceProcess,
  serviceEnv,
} from './processes'
import { type Hit, receiver } from './receiver'
import { adminClient, outgoing, subscribedQueues } from './stack'

afterAll(() => reaper.cleanup())

const MINUTES = Number(process.env.SOAK_MINUTES ?? 30)
const TENANTS = Number(process.env.SOAK_TENANTS ?? 20)
const DURATION_MS = MINUTES * 60_000
/** Where the services write heap dumps (src/observability/heap-dump.ts) after warm-up and at the end. */
const HEAP_DIR = process.env.MQ_HEAP_SNAPSHOT_DIR
const KILL_EVERY_MS = DURATION_MS / 6
const SAMPLE_EVERY_MS = Math.min(30_000, DURATION_MS / 20)
/** Dedup markers last this long, so that Redis can be seen to return to its baseline. */
const DEDUP_WINDOW_MS = 30_000
/** The per-second flow counters behind the metrics' rates expire after two windows. */
const FLOW_COUNTERS_TTL_MS = WINDOW_SECONDS * 2 * 1000

/** Resident memory (kB) and open descriptors of a process, from /proc. */
function processStats(pid: number): { rssKb: number; fds: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  return {
    rssKb: Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0),
    fds: readdirSync(`/proc/${pid}/fd`).length,
  }
}

const median = (values: number[]) =>
  values.toSorted((a, b) => a - b)[Math.floor(values.length / 2)]!
const p99 = (values: number[]) =>
  values.toSorted((a, b) => a - b)[Math.min(values.length - 1, Math.floor(values.length * 0.99))]!

test(
  `P1 soak: ${MINUTES} min of mixed traffic with consumer kills`,
  async () => {
    const redis = await ChaosRedis.start({ fsync: 'everysec' })
    const database = await chaosDatabase()
    const env = serviceEnv(redis, database, {
      WEBHOOK_ALLOWED_HOSTS: '127.0.0.1',
      DEDUP_WINDOW_MS: String(DEDUP_WINDOW_MS),
      ...(HEAP_DIR ? { MQ_HEAP_SNAPSHOT_DIR: HEAP_DIR } : {}),
    })
    // An api and a worker where PostgreSQL allows several processes, else one of role all.
    const services = database.shared
      ? [new ServiceProcess('api', 'api', env), new ServiceProcess('worker', 'worker', env)]
      : [new ServiceProcess('all', 'all', env)]
    await Promise.all(services.map((s) => s.start()))
    const client = adminClient(() => services[0]!.url)
    const history = new History()
    const inspector = redis.inspector()
    reaper.onCleanup(async () => inspector.disconnect())
    const usedMemory = async () =>
      Number(/used_memory:(\d+)/.exec(await inspector.info('memory'))?.[1] ?? 0)

    const tenants = Array.from({ length: TENANTS }, newTenant)
    const pulled = await subscribedQueues(
      client,
      tenants.slice(2),
      { name: 'work', partitionCount: 2, maxLength: 100_000 },
      { sessionTimeoutMs: 5000 }
    )
    const hook = receiver(async (_n: number, hit: Hit) => {
      const messageId = hit.headers['webhook-id'] ?? ''
      history.deliver({
        messageId,
        deliveryCount: Number(hit.headers['x-mq-delivery-count']),
        consumer: 'webhook',
        ts: hit.at,
        intact: (JSON.parse(hit.body) as { id?: string }).id === messageId,
      })
      await Bun.sleep(Math.random() * 20)
      return new Response('ok')
    })
    const pushed = await subscribedQueues(
      client,
      tenants.slice(0, 2),
      { name: 'work', maxLength: 100_000 },
      { subscriptionType: 'webhook', handlerConfig: { url: hook.url, timeoutMs: 2000 } }
    )
    const tokens = Object.fromEntries(
      await Promise.all(
        tenants.map(async (t) => [t, await token(t, 'mq:admin', { expiresIn: 86_400 })])
      )
    )
    const consumers = ['c1', 'c2'].map(
      (name) =>
        new ConsumerProcess(
          {
            baseUrl: services[0]!.url,
            name,
            tokens,
            subscriptions: pulled,
            processingMs: [0, 20],
            max: 20,
            waitMs: 5000,
            visibilityTimeoutMs: 5000,
          },
          (record) => history.deliver(record)
        )
    )
    for (const c of consumers) c.start()
    const baselineMemory = await usedMemory()

    // About 60 messages a second; one in ten delayed by 1 to 5 s.
    const started = Date.now()
    const latencies: Array<{ at: number; ms: number }> = []
    const producing = produce(
      client,
      history,
      outgoing('soak', [...pulled, ...pushed], {
        more: () => Date.now() - started < DURATION_MS,
        extra: (i) => (i % 10 === 0 ? { delayMs: 1000 + (i % 5) * 1000 } : undefined),
      }),
      {
        concurrency: 4,
        pauseMs: 60,
        onAnswer: (a: Answer, at: number) => {
          if (a.status === 201 || a.status === 200) latencies.push({ at, ms: a.ms })
        },
      }
    )

    const samples: Array<{ at: number; rssKb: number; fds: number; redisBytes: number }> = []
    let kills = 0
    let held = 0
    let nextKill = started + KILL_EVERY_MS
    let dumpedWarm = false
    const dumpHeaps = () => {
      if (HEAP_DIR) for (const s of services) process.kill(s.pid!, 'SIGUSR2')
    }
    while (Date.now() - started < DURATION_MS) {
      await Bun.sleep(SAMPLE_EVERY_MS)
      const stats = services.map((s) => processStats(s.pid!))
      samples.push({
        at: Date.now() - started,
        rssKb: stats.reduce((n, s) => n + s.rssKb, 0),
        fds: stats.reduce((n, s) => n + s.fds, 0),
        redisBytes: await usedMemory(),
      })
      if (!dumpedWarm && Date.now() - started >= DURATION_MS / 6) {
        dumpHeaps()
        dumpedWarm = true
      }
      if (Date.now() >= nextKill && Date.now() - started < DURATION_MS) {
        const victim = consumers[kills % consumers.length]!
        held += (await victim.kill9()).length
        victim.start()
        kills++
        nextKill += KILL_EVERY_MS
      }
    }
    await producing
    dumpHeaps()
    await Promise.all(consumers.map((c) => c.terminate()))
    const drainMs = await drain(client, history, pulled, { timeoutMs: 120_000 })
    const pushedTenants = new Set(pushed.map((t) => t.tenant))
    const pushedIds = [...history.ids('ok')].filter((id) =>
      pushedTenants.has(history.publishes.get(id)!.tenant)
    )
    const deadline = Date.now() + 60_000
    // One map of the deliveries a round: built per id, a 30-minute run spent minutes here.
    const allPushed = () => {
      const delivered = history.byMessage()
      return pushedIds.every((id) => delivered.has(id))
    }
    while (Date.now() < deadline && !allPushed()) await Bun.sleep(200)
    // Trimming (every 5 s), the dedup markers' expiry and that of the per-second flow counters
    // behind the metrics' rates (two minutes) give the memory back.
    await Bun.sleep(Math.max(DEDUP_WINDOW_MS, FLOW_COUNTERS_TTL_MS) + 10_000)
    const memoryAfterDrain = await usedMemory()
    dumpHeaps()
    const peakMemory = Math.max(...samples.map((s) => s.redisBytes))

    const figures = history.check()
    // Warm-up: the first sixth of the run. Medians of three samples smooth out collections.
    const warm = samples.filter((s) => s.at >= DURATION_MS / 6)
    const rssWarm = median(warm.slice(0, 3).map((s) => s.rssKb))
    const rssEnd = median(warm.slice(-3).map((s) => s.rssKb))
    const firstWindow = latencies.filter((l) => l.at - started < DURATION_MS / 6).map((l) => l.ms)
    const lastWindow = latencies
      .filter((l) => l.at - started >= (DURATION_MS * 5) / 6)
      .map((l) => l.ms)
    report(`P1 soak (${MINUTES} min)`, {
      ...figures,
      tenants: TENANTS,
      kills,
      heldAtKills: held,
      drainMs,
      rssWarmKb: rssWarm,
      rssEndKb: rssEnd,
      rssGrowthPct: Math.round(((rssEnd - rssWarm) / rssWarm) * 1000) / 10,
      fdsStart: samples[0]!.fds,
      fdsEnd: samples.at(-1)!.fds,
      redisBaselineBytes: baselineMemory,
      redisPeakBytes: peakMemory,
      redisAfterDrainBytes: memoryAfterDrain,
      publishP99FirstMs: Math.round(p99(firstWindow)),
      publishP99LastMs: Math.round(p99(lastWindow)),
      rssSeriesMb: samples.map((s) => Math.round(s.rssKb / 1024)),
      fdSeries: samples.map((s) => s.fds),
    })
    expectValid(figures)
    expect(figures.duplicated).toBeLessThanOrEqual(held)
    expect(rssEnd).toBeLessThanOrEqual(rssWarm * 1.1)
    // Back to within a megabyte of where it started, or at least 90 % of what traffic added.
    expect(memoryAfterDrain).toBeLessThanOrEqual(
      Math.max(baselineMemory + 1_048_576, baselineMemory + (peakMemory - baselineMemory) * 0.1)
    )
    expect(samples.at(-1)!.fds).toBeLessThanOrEqual(samples[0]!.fds + 10)
    // Within 20 %, or 20 ms on a machine where a few milliseconds are noise.
    expect(p99(lastWindow)).toBeLessThanOrEqual(
      Math.max(p99(firstWindow) * 1.2, p99(firstWindow) + 20)
    )
  },
  (MINUTES + 10) * 60_000
)
