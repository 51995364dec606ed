import { join } from 'node:path'
import type { Redis } from 'ioredis'
import type { PrivateRedis } from '../../src/local/redis-server'
import { spawnTracked, stopChild } from './cleanup'
import {
  API,
  api,
  BENCH_DIR,
  machineBusy,
  type Server,
  type ServiceEnv,
  waitProcessQuiet,
} from './infra'
import { PAYLOAD } from './load'

/** How long and how big each scenario runs, by mode. */
export interface Plan {
  runs: number
  /** Seconds of each measured wrk run, and of the warm-up run before a system's first. */
  wrkSeconds: number
  warmSeconds: number
  redisRequests: { plain: number; pipelined: number }
  consumeCount: number
  e2eSeconds: number
  e2eRate: number
  delayed: { count: number; windowMs: number; runs: number }
  scaleTenants: number[]
  scaleQueuesPerTenant: number
  /** Messages put in the backlog queue, and the most time that may take. */
  backlog: number
  backlogBudgetMs: number
  /** Messages the footprint scenario stores to measure bytes per message. */
  footprintCount: number
  quietSeconds: number
  /**
   * How long after the work idle memory is read: past the minute of quiet after which the
   * service gives memory back (IDLE_SHRINK), in the full run.
   */
  idleSeconds: number
  /**
   * The most a scenario waits for the service to go quiet (the ledger catching up) before it
   * starts or deletes its queues; the smoke test does not wait for the ledger.
   */
  settleMaxMs: number
}

export const PLANS: Record<'quick' | 'full', Plan> = {
  quick: {
    runs: 1,
    wrkSeconds: 2,
    warmSeconds: 1,
    redisRequests: { plain: 50_000, pipelined: 200_000 },
    consumeCount: 10_000,
    e2eSeconds: 2,
    e2eRate: 2000,
    delayed: { count: 5000, windowMs: 3000, runs: 1 },
    scaleTenants: [1, 10, 100],
    scaleQueuesPerTenant: 10,
    backlog: 100_000,
    backlogBudgetMs: 20_000,
    footprintCount: 10_000,
    quietSeconds: 1,
    idleSeconds: 1,
    settleMaxMs: 2000,
  },
  full: {
    runs: 3,
    wrkSeconds: 4,
    warmSeconds: 2,
    redisRequests: { plain: 150_000, pipelined: 1_000_000 },
    consumeCount: 60_000,
    e2eSeconds: 6,
    e2eRate: 2000,
    // One run of each: a 60 s window of 100,000 arrivals is itself a large sample.
    delayed: { count: 100_000, windowMs: 60_000, runs: 1 },
    scaleTenants: [1, 10, 100],
    scaleQueuesPerTenant: 10,
    backlog: 10_000_000,
    // With the rest, the full run must end within 15 minutes: on a busy machine the backlog
    // is whatever this allows, and the report says how large it was.
    backlogBudgetMs: 45_000,
    footprintCount: 200_000,
    quietSeconds: 10,
    idleSeconds: 100,
    settleMaxMs: 60_000,
  },
}

/**
 * Redis databases: the service keeps db 0 (what it runs with by default); each peer gets its
 * own so its keys are flushed between scenarios without touching the service's.
 */
export const PEER_DB = { bare: 1, bullmq: 2, redis: 3 } as const
/** The LEDGER_MODE=off twin's database: apart from the service's, and never flushed. */
export const LEDGER_OFF_DB = 4

/** A second service process and where its API is. */
export interface ServiceTwin {
  service: Server
  apiUrl: string
}

/** The system name of the LEDGER_MODE=off twin in figures. */
export const LEDGER_OFF = 'LEDGER_MODE=off'

/**
 * The context a scenario's service half runs against the LEDGER_MODE=off twin: the same
 * tenant and token (the twin shares the secret), its own URL and process.
 */
export const ledgerOffContext = (ctx: Context, twin: ServiceTwin): Context => ({
  ...ctx,
  service: twin.service,
  apiUrl: twin.apiUrl,
})

/** What every scenario gets. */
export interface Context {
  plan: Plan
  quick: boolean
  work: string
  redis: PrivateRedis
  /** The harness's own connection, for flushing peer databases. */
  admin: Redis
  service: Server
  bare: Server
  bullmq: Server
  /** The plain peers behind a team's own publish checks (peers/auth.ts). */
  bareAuth: Server
  bullmqAuth: Server
  /**
   * The same build run a second time with LEDGER_MODE=off, on its own Redis database and
   * PostgreSQL database, alternated with the default run (issue 19's all ÷ off); absent when the
   * run was asked for one LEDGER_MODE (`--ledger`) or no scenario needs it.
   */
  ledgerOff?: ServiceTwin
  serviceEnv: ServiceEnv
  tenant: string
  token: string
  /** The service's API base, e.g. http://127.0.0.1:1234/api/v1/mq */
  apiUrl: string
  /** How busy the machine was with other work before the run, in % (machineQuiet). */
  baselineBusy: number
  /** Notes for the report (what was skipped and why). */
  notes: string[]
}

export const peerRedisUrl = (ctx: Pick<Context, 'redis'>, peer: keyof typeof PEER_DB) =>
  `${ctx.redis.url}/${PEER_DB[peer]}`

/** Empties the peers' databases (asynchronously on the server, so it does not stall it). */
export async function flushPeers(ctx: Context): Promise<void> {
  for (const db of Object.values(PEER_DB)) {
    await ctx.admin.select(db)
    await ctx.admin.flushdb('ASYNC')
  }
  await ctx.admin.select(0)
}

/** Creates a queue of the bench tenant with room for everything a scenario puts in. */
export async function createQueue(
  ctx: Context,
  name: string,
  token = ctx.token,
  extra: Record<string, unknown> = {}
): Promise<void> {
  await api(ctx.service.url, token, 'POST', '/queues', {
    name,
    maxLength: 100_000_000,
    ...extra,
  })
}

/**
 * Waits (at most 30 s, in the quick mode too) until the machine is back to how busy it was
 * before the run, give or take 10 points: the service's ledger copies what a run published
 * behind it, mostly in PostgreSQL's processes, which a wait on the service's own process does
 * not see, and that catch-up must not weigh on the next run, whichever system it measures.
 */
export async function machineQuiet(baselineBusy: number): Promise<void> {
  const until = performance.now() + 30_000
  while ((await machineBusy(300)) > baselineBusy + 10 && performance.now() < until) {}
}

/**
 * Deletes a queue once the service has gone quiet: the worker's ledger copies each message to
 * PostgreSQL behind the publishes, and rows of a queue deleted before it caught up are refused
 * one by one (a warning each), which would load the scenarios after this one. A queue the
 * ledger is still busy with after `settleMaxMs` is left for the end of the run, which drops
 * the database and stops Redis.
 */
export async function deleteQueue(ctx: Context, name: string, token = ctx.token): Promise<void> {
  const waited = await waitProcessQuiet(ctx.service.proc.pid, ctx.plan.settleMaxMs)
  if (waited >= ctx.plan.settleMaxMs) return
  await api(ctx.service.url, token, 'DELETE', `/queues/${name}`).catch((err: Error) => {
    // api() sends a request again when its connection was reset, which can happen after the
    // server took it (seen among a thousand deletes at once): the second finds the queue gone.
    if (!/^DELETE \S+: 404 /.test(err.message)) throw err
  })
}

/**
 * Pull subscriptions `consumers` strong in one consumer group, each allowed batches of 100.
 * @returns their ids.
 */
export async function createPullSubscriptions(
  ctx: Context,
  queue: string,
  consumers: number,
  offsetResetPolicy: 'earliest' | 'latest',
  settings: Record<string, unknown> = {}
): Promise<string[]> {
  const ids: string[] = []
  for (let i = 0; i < consumers; i++) {
    const sub = await api<{ id: string }>(ctx.service.url, ctx.token, 'POST', '/subscriptions', {
      queue,
      consumerGroup: 'bench',
      consumerName: `c${i}`,
      subscriptionType: 'redis_consumer',
      maxPollRecords: 100,
      offsetResetPolicy,
      ...settings,
    })
    ids.push(sub.id)
  }
  return ids
}

/** Pull targets of the service's subscriptions. */
export const servicePullTargets = (ctx: Context, subscriptionIds: string[]) =>
  subscriptionIds.map((id) => ({
    pullUrl: `${ctx.apiUrl}/subscriptions/${id}/pull`,
    ackUrl: `${ctx.apiUrl}/subscriptions/${id}/ack`,
  }))

/** Pull targets of the bare peer (consumers c0…, one group). */
export const barePullTargets = (ctx: Context, queue: string, consumers: number) =>
  Array.from({ length: consumers }, (_, i) => ({
    pullUrl: `${ctx.bare.url}/streams/${queue}/consumers/c${i}/pull`,
    ackUrl: `${ctx.bare.url}/streams/${queue}/consumers/c${i}/ack`,
  }))

/**
 * Puts up to `count` messages into a queue through a batch route (`url` is the service's or a
 * peer's `/publish/batch`), 1,000 per request, `concurrency` requests in flight, stopping
 * early when `budgetMs` runs out. A 503 or 429 is retried after its Retry-After, as a
 * client would (an overloaded store answers so); anything else fails the fill.
 * @returns how many were stored, messages/s achieved and how many requests were retried.
 */
export async function fill(opts: {
  url: string
  token?: string
  queue: string
  count: number
  concurrency?: number
  budgetMs?: number
  /** Messages carry keys `k0`… in turn, this many of them; none when unset. */
  keys?: number
}): Promise<{ stored: number; rate: number; retried: number }> {
  const BATCH = 1000
  const MAX_RETRIES = 20
  const headers: Record<string, string> = { 'content-type': 'application/json' }
  if (opts.token) headers.authorization = `Bearer ${opts.token}`
  const message = JSON.stringify({ payload: PAYLOAD })
  const keyed = (i: number) => JSON.stringify({ payload: PAYLOAD, key: `k${i % opts.keys!}` })
  const bodyOf = (n: number, first = 0) =>
    `{"queue":${JSON.stringify(opts.queue)},"messages":[${
      opts.keys
        ? Array.from({ length: n }, (_, j) => keyed(first + j)).join(',')
        : Array(n).fill(message).join(',')
    }]}`
  const fullBody = bodyOf(BATCH)
  const started = performance.now()
  const deadline = started + (opts.budgetMs ?? Number.POSITIVE_INFINITY)
  let next = 0
  let stored = 0
  let retried = 0
  await Promise.all(
    Array.from({ length: opts.concurrency ?? 4 }, async () => {
      while (next < opts.count && performance.now() < deadline) {
        const n = Math.min(BATCH, opts.count - next)
        const first = next
        next += n
        for (let attempt = 0; ; attempt++) {
          const res = await fetch(opts.url, {
            method: 'POST',
            headers,
            body: n === BATCH && !opts.keys ? fullBody : bodyOf(n, first),
          })
          const text = await res.text()
          if (res.ok) break
          if ((res.status !== 503 && res.status !== 429) || attempt >= MAX_RETRIES) {
            throw new Error(`fill ${opts.queue}: ${res.status} ${text.slice(0, 300)}`)
          }
          retried++
          await Bun.sleep(Number(res.headers.get('retry-after') ?? 1) * 1000)
        }
        stored += n
      }
    })
  )
  return { stored, rate: (stored / (performance.now() - started)) * 1000, retried }
}

/**
 * Runs a client process (bench/clients/<name>.ts) with `job` and returns what it reported;
 * it is killed if it outlives `timeoutMs`.
 */
export async function runClient<T>(name: string, job: unknown, timeoutMs: number): Promise<T> {
  const proc = spawnTracked(
    ['bun', join(BENCH_DIR, 'clients', `${name}.ts`), JSON.stringify(job)],
    {
      stdout: 'pipe',
      stderr: 'pipe',
    }
  )
  const timer = setTimeout(() => void stopChild(proc, 1000), timeoutMs)
  const [out, err] = await Promise.all([
    new Response(proc.stdout as ReadableStream).text(),
    new Response(proc.stderr as ReadableStream).text(),
  ])
  await proc.exited
  clearTimeout(timer)
  const line = out.split('\n').find((l) => l.startsWith('BENCH_RESULT '))
  if (!line)
    throw new Error(`client ${name} reported nothing (exit ${proc.exitCode}):\n${err.slice(-3000)}`)
  if (err.trim())
    console.error(
      err
        .trim()
        .split('\n')
        .map((l) => `  [${name}] ${l}`)
        .join('\n')
    )
  return JSON.parse(line.slice('BENCH_RESULT '.length)) as T
}

/**
 * Runs `fn` for each run and system, systems interleaved within a run so slow drift (Redis
 * growing, the machine warming) spreads over all of them alike, each once the machine is quiet
 * again (machineQuiet) so no run pays for the one before it.
 */
export async function interleave<S extends string, T>(
  ctx: Pick<Context, 'baselineBusy'>,
  runs: number,
  systems: readonly S[],
  fn: (system: S, run: number) => Promise<T>
): Promise<Record<S, T[]>> {
  const out = Object.fromEntries(systems.map((s) => [s, [] as T[]])) as Record<S, T[]>
  for (let run = 0; run < runs; run++) {
    for (const system of systems) {
      await machineQuiet(ctx.baselineBusy)
      out[system].push(await fn(system, run))
    }
  }
  return out
}

export { API }
