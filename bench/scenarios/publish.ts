import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import {
  type Context,
  createQueue,
  deleteQueue,
  fill,
  flushPeers,
  interleave,
  LEDGER_OFF,
  ledgerOffContext,
  PEER_DB,
} from '../lib/context'
import { api, tokenFor, waitProcessQuiet } from '../lib/infra'
import { type HttpRun, runRedisBenchmark, runWrk } from '../lib/load'
import { type Figure, figure, ledgerFigure } from '../lib/report'

const BATCH = 100
const PEERS = ['bare+auth', 'bullmq+auth', 'bare', 'bullmq'] as const
type HttpSystem = 'service' | typeof LEDGER_OFF | (typeof PEERS)[number]

/** The service, its LEDGER_MODE=off twin right after it (alternated), then the peers. */
const httpSystems = (ctx: Context): HttpSystem[] => [
  'service',
  ...(ctx.ledgerOff ? [LEDGER_OFF as HttpSystem] : []),
  ...PEERS,
]

/** Where each system takes a publish, and the bearer it needs (the +auth peers check it too). */
function endpoint(ctx: Context, system: HttpSystem, path: '/publish' | '/publish/batch') {
  const servers = {
    bare: ctx.bare,
    bullmq: ctx.bullmq,
    'bare+auth': ctx.bareAuth,
    'bullmq+auth': ctx.bullmqAuth,
  }
  if (system === 'service') return { url: `${ctx.apiUrl}${path}`, token: ctx.token }
  if (system === LEDGER_OFF) return { url: `${ctx.ledgerOff!.apiUrl}${path}`, token: ctx.token }
  return { url: `${servers[system].url}${path}`, token: system.endsWith('+auth') ? ctx.token : '' }
}

/** wrk runs of each HTTP system, interleaved, after one warm-up run per system. */
async function wrkRuns(
  ctx: Context,
  path: '/publish' | '/publish/batch',
  queue: string
): Promise<Partial<Record<HttpSystem, HttpRun[]>>> {
  const systems = httpSystems(ctx)
  const runOnce = (system: HttpSystem, seconds: number) => {
    const { url, token } = endpoint(ctx, system, path)
    return runWrk({
      url,
      script: path === '/publish' ? 'publish' : 'batch',
      env: { BENCH_TOKEN: token, BENCH_QUEUE: queue, BENCH_BATCH: String(BATCH) },
      seconds,
      workDir: ctx.work,
    })
  }
  for (const system of systems) await runOnce(system, ctx.plan.warmSeconds)
  return interleave(ctx, ctx.plan.runs, systems, (system) => runOnce(system, ctx.plan.wrkSeconds))
}

/** Each system's runs reduced to one number, the LEDGER_MODE=off twin left out (its own row). */
const pick = <S extends string>(runs: Partial<Record<S, HttpRun[]>>, f: (r: HttpRun) => number) =>
  Object.fromEntries(
    Object.entries<HttpRun[] | undefined>(runs)
      .filter(([k]) => k !== LEDGER_OFF)
      .map(([k, v]) => [k, (v ?? []).map(f)])
  ) as Record<S, number[]>

function errorNote(runs: Partial<Record<string, HttpRun[]>>): string | undefined {
  const bad = Object.entries(runs)
    .map(([k, v]) => [k, (v ?? []).reduce((a, r) => a + r.errors, 0)] as const)
    .filter(([, n]) => n > 0)
  return bad.length > 0
    ? `errors (socket or non-2xx): ${bad.map(([k, n]) => `${k} ${n}`).join(', ')}`
    : undefined
}

/** The LEDGER_MODE=all ÷ off row of a throughput figure, when the twin ran. */
function ledgerRow(
  scenario: string,
  unit: string,
  runs: Partial<Record<HttpSystem, HttpRun[]>>,
  value: (r: HttpRun) => number
): Figure[] {
  const off = runs[LEDGER_OFF]
  if (!off) return []
  return [ledgerFigure(scenario, unit, (runs.service ?? []).map(value), off.map(value))]
}

/** `runs` runs of redis-benchmark XADD into the redis peer's database. */
async function redisXadd(ctx: Context, key: string, requests: number, pipeline: number) {
  const out: number[] = []
  for (let i = 0; i < ctx.plan.runs; i++) {
    const r = await runRedisBenchmark({
      port: ctx.redis.port,
      db: PEER_DB.redis,
      key,
      requests,
      pipeline,
    })
    out.push(r.rps)
  }
  return out
}

/** Single POST /publish, ~200-byte JSON, 50 connections. */
export async function singlePublish(ctx: Context): Promise<Figure[]> {
  const scenario = 'single POST /publish, 50 connections'
  await createQueue(ctx, 'publish')
  if (ctx.ledgerOff) await createQueue(ledgerOffContext(ctx, ctx.ledgerOff), 'publish')
  const runs = await wrkRuns(ctx, '/publish', 'publish')
  const key = 'bench:redis:publish'
  const redisPlain = await redisXadd(ctx, key, ctx.plan.redisRequests.plain, 1)
  const redisPipelined = await redisXadd(ctx, key, ctx.plan.redisRequests.pipelined, 16)
  await deleteQueue(ctx, 'publish')
  if (ctx.ledgerOff) await deleteQueue(ledgerOffContext(ctx, ctx.ledgerOff), 'publish')
  await flushPeers(ctx)
  const rps = pick(runs, (r) => r.rps)
  return [
    figure({
      scenario,
      metric: 'throughput',
      unit: 'requests/s',
      better: 'higher',
      runs: { ...rps, 'redis XADD': redisPlain, 'redis XADD -P16': redisPipelined },
      target: (s, p) => ({
        text: '≥ 1.0 × bare+auth and ≥ 1.3 × bullmq+auth',
        met: s >= p['bare+auth']! && s >= 1.3 * p['bullmq+auth']!,
      }),
      note: errorNote(runs),
    }),
    ...ledgerRow(scenario, 'requests/s', runs, (r) => r.rps),
    figure({
      scenario,
      metric: 'latency p50',
      unit: 'ms',
      better: 'lower',
      runs: pick(runs, (r) => r.p50Ms),
    }),
    figure({
      scenario,
      metric: 'latency p99',
      unit: 'ms',
      better: 'lower',
      runs: pick(runs, (r) => r.p99Ms),
      target: (s, p) => ({ text: "≤ 2 × bare's", met: s <= 2 * p.bare! }),
    }),
  ]
}

/** POST /publish/batch with 100 messages a request: messages/s. */
export async function batchPublish(ctx: Context): Promise<Figure[]> {
  const scenario = `POST /publish/batch, ${BATCH} messages a request`
  await createQueue(ctx, 'batch')
  if (ctx.ledgerOff) await createQueue(ledgerOffContext(ctx, ctx.ledgerOff), 'batch')
  const runs = await wrkRuns(ctx, '/publish/batch', 'batch')
  const redisPipelined = await redisXadd(
    ctx,
    'bench:redis:batch',
    ctx.plan.redisRequests.pipelined,
    BATCH
  )
  await deleteQueue(ctx, 'batch')
  if (ctx.ledgerOff) await deleteQueue(ledgerOffContext(ctx, ctx.ledgerOff), 'batch')
  await flushPeers(ctx)
  return [
    figure({
      scenario,
      metric: 'throughput',
      unit: 'messages/s',
      better: 'higher',
      runs: { ...pick(runs, (r) => r.rps * BATCH), [`redis XADD -P${BATCH}`]: redisPipelined },
      target: (s, p) => ({
        text: '≥ 0.8 × bare and ≥ 4 × bullmq',
        met: s >= 0.8 * p.bare! && s >= 4 * p.bullmq!,
      }),
      note: errorNote(runs),
    }),
    ...ledgerRow(scenario, 'messages/s', runs, (r) => r.rps * BATCH),
    figure({
      scenario,
      metric: 'request latency p99',
      unit: 'ms',
      better: 'lower',
      runs: pick(runs, (r) => r.p99Ms),
    }),
  ]
}

/**
 * Publish throughput with 1, 10 and 100 tenants × 10 queues, each request to the next
 * tenant's queue in turn; the bare peer gets the same queue names.
 */
export async function scale(ctx: Context): Promise<Figure[]> {
  const figures: Figure[] = []
  const perTenant = ctx.plan.scaleQueuesPerTenant
  let oneTenant: number[] = []
  for (const tenants of ctx.plan.scaleTenants) {
    const made = (
      await Promise.all(
        Array.from({ length: tenants }, async () => {
          const token = await tokenFor(crypto.randomUUID(), ctx.serviceEnv.jwtSecret)
          const queues = Array.from({ length: perTenant }, (_, q) => `scale-q${q}`)
          for (const queue of queues) await createQueue(ctx, queue, token)
          return queues.map((queue) => ({ token, queue }))
        })
      )
    ).flat()
    const serviceTargets = join(ctx.work, `targets-service-${tenants}.txt`)
    const bareTargets = join(ctx.work, `targets-bare-${tenants}.txt`)
    writeFileSync(serviceTargets, made.map((m) => `${m.token} ${m.queue}`).join('\n'))
    writeFileSync(
      bareTargets,
      made.map((m, i) => `- t${Math.floor(i / perTenant)}-${m.queue}`).join('\n')
    )
    const run = (system: 'service' | 'bare', seconds: number) =>
      runWrk({
        url: system === 'service' ? `${ctx.apiUrl}/publish` : `${ctx.bare.url}/publish`,
        script: 'targets',
        env: { BENCH_TARGETS: system === 'service' ? serviceTargets : bareTargets },
        seconds,
        workDir: ctx.work,
      })
    // Warm the new tokens and queues into the service's caches, as a steady state would have.
    await run('service', ctx.plan.warmSeconds)
    const runs = await interleave(ctx, ctx.plan.runs, ['service', 'bare'] as const, (s) =>
      run(s, ctx.plan.wrkSeconds)
    )
    const rps = pick(runs, (r) => r.rps)
    if (tenants === ctx.plan.scaleTenants[0]) oneTenant = rps.service
    figures.push(
      figure({
        scenario: `scale: ${tenants} tenant${tenants > 1 ? 's' : ''} × ${perTenant} queues`,
        metric: 'publish throughput',
        unit: 'requests/s',
        better: 'higher',
        runs: {
          ...rps,
          ...(tenants === ctx.plan.scaleTenants[0]
            ? {}
            : { [`service, ${ctx.plan.scaleTenants[0]} tenant`]: oneTenant }),
        },
        note: errorNote(runs),
      })
    )
    // The smoke test leaves them to the end of the run (the database is dropped, Redis
    // stopped): deleting up to a thousand queues takes longer than the runs themselves.
    // Ten at a time: each delete removes its queue's ledger rows, and a thousand at once queue
    // behind the database pool past the request deadline.
    if (!ctx.quick) {
      for (let i = 0; i < made.length; i += 10) {
        await Promise.all(made.slice(i, i + 10).map((m) => deleteQueue(ctx, m.queue, m.token)))
      }
    }
    await flushPeers(ctx)
  }
  return figures
}

/**
 * Publish throughput into a queue holding a large backlog against an empty one, for the
 * service and for the bare peer (whose backlog redis-benchmark writes, pipelined).
 */
export async function backlog(ctx: Context): Promise<Figure[]> {
  await createQueue(ctx, 'backlog')
  await createQueue(ctx, 'empty')
  const filled = await fill({
    url: `${ctx.apiUrl}/publish/batch`,
    token: ctx.token,
    queue: 'backlog',
    count: ctx.plan.backlog,
    concurrency: 8,
    budgetMs: ctx.plan.backlogBudgetMs,
  })
  // The worker's ledger copies every message to PostgreSQL behind the publishes; measure the
  // backlog's effect on publishing, not that catch-up (as far as it ends in half a minute).
  const settledMs = await waitProcessQuiet(
    ctx.service.proc.pid,
    Math.min(30_000, ctx.plan.settleMaxMs)
  )
  const n = filled.stored
  const stats = await api<{ stats: { length: number } }>(
    ctx.service.url,
    ctx.token,
    'GET',
    '/queues/backlog'
  )
  await runRedisBenchmark({
    port: ctx.redis.port,
    db: PEER_DB.bare,
    key: 'bench:bare:backlog',
    requests: n,
    pipeline: 1000,
  })
  const systems = ['service backlog', 'service empty', 'bare backlog', 'bare empty'] as const
  const run = (system: (typeof systems)[number], seconds: number) =>
    runWrk({
      url: system.startsWith('service') ? `${ctx.apiUrl}/publish` : `${ctx.bare.url}/publish`,
      script: 'publish',
      env: {
        BENCH_TOKEN: system.startsWith('service') ? ctx.token : '',
        BENCH_QUEUE: system.endsWith('backlog') ? 'backlog' : 'empty',
      },
      seconds,
      workDir: ctx.work,
    })
  // No warm-up: every system is warm from the scenarios before, and two queues' metadata is
  // loaded by the first requests.
  const runs = await interleave(ctx, ctx.plan.runs, systems, (s) => run(s, ctx.plan.wrkSeconds))
  const { 'service backlog': service, ...peers } = pick(runs, (r) => r.rps)
  await deleteQueue(ctx, 'backlog')
  await deleteQueue(ctx, 'empty')
  await flushPeers(ctx)
  const notes = [
    `backlog written through POST /publish/batch at ${Math.round(filled.rate).toLocaleString('en-US')} messages/s${filled.retried > 0 ? ` (${filled.retried} batches retried after a 503 or 429)` : ''}${n < ctx.plan.backlog ? `, stopped at ${n.toLocaleString('en-US')} of ${ctx.plan.backlog.toLocaleString('en-US')} by the time budget` : ''}`,
    `then the service stayed busy ${(settledMs / 1000).toFixed(0)} s (the ledger catching up)`,
    `the queue held ${stats.stats.length.toLocaleString('en-US')}`,
    errorNote(runs),
  ]
  return [
    figure({
      scenario: `backlog: ${n.toLocaleString('en-US')} messages in the queue`,
      metric: 'publish throughput',
      unit: 'requests/s',
      better: 'higher',
      runs: { service, ...peers },
      target: (s, p) => ({
        text: '≥ 0.8 × service empty',
        met: s >= 0.8 * p['service empty']!,
      }),
      note: notes.filter(Boolean).join('; '),
    }),
  ]
}
