/**
 * Redis Cluster: three masters on loopback, the service split into one `api` and one `worker`
 * process (as a scaled deployment runs it), the single and batch publish scenarios against a
 * queue of one partition (what one partition takes) and one of many (spread over the shards).
 * Each master's share of the commands tells how evenly the partitions spread.
 */
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { Redis } from 'ioredis'
import { startRedisCluster } from '../../tests/helpers/cluster'
import { onCleanup, spawnTracked, stopChild } from '../lib/cleanup'
import { type Context, createQueue, interleave } from '../lib/context'
import {
  API,
  cpuSeconds,
  createDatabase,
  type Server,
  serviceEnvironment,
  startServer,
} from '../lib/infra'
import { runWrk } from '../lib/load'
import { type Figure, figure } from '../lib/report'

const MASTERS = 3
/** Enough partitions that each master gets several (each partition hashes to its own slot). */
const SPREAD_PARTITIONS = 12
const BATCH = 100

/** The cluster's masters, the api process and the worker process, stopped at cleanup. */
async function startClusterService(ctx: Context) {
  const cluster = await startRedisCluster(join(ctx.work, 'cluster'), MASTERS)
  onCleanup('stop the Redis Cluster', () => cluster.stop())
  const database = await createDatabase()
  if (!database) throw new Error('the cluster scenario needs PostgreSQL')
  const { REDIS_URL: _, ...env } = serviceEnvironment({
    ...ctx.serviceEnv,
    databaseUrl: database.url,
    dataDir: join(ctx.work, 'data-cluster'),
  })
  const clusterEnv = { ...env, REDIS_CLUSTER_NODES: cluster.nodes.join(',') }
  // The api applies the migrations at its first start; the worker starts after it.
  const api = await startServer(
    'cluster-api',
    [ctx.serviceEnv.binary, 'api'],
    clusterEnv,
    '/health',
    join(ctx.work, 'cluster-api.log')
  )
  const workerLog = join(ctx.work, 'cluster-worker.log')
  const worker = spawnTracked([ctx.serviceEnv.binary, 'worker'], {
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...clusterEnv },
    stdout: Bun.file(workerLog),
    stderr: Bun.file(`${workerLog}.err`),
  })
  const deadline = performance.now() + 30_000
  while (!(existsSync(workerLog) && readFileSync(workerLog, 'utf8').includes('service started'))) {
    if (worker.exitCode !== null || performance.now() > deadline)
      throw new Error(`the cluster worker did not start (exit ${worker.exitCode})`)
    await Bun.sleep(50)
  }
  return {
    cluster,
    api,
    pids: { api: api.proc.pid, worker: worker.pid, masters: cluster.servers.map((m) => m.pid) },
    stop: async () => {
      await stopChild(worker)
      await api.stop()
    },
  }
}

/** Commands each master has processed so far. */
async function commandsPerMaster(urls: string[]): Promise<number[]> {
  return Promise.all(
    urls.map(async (url) => {
      const conn = new Redis(url)
      try {
        const stats = await conn.info('stats')
        return Number(/total_commands_processed:(\d+)/.exec(stats)?.[1] ?? Number.NaN)
      } finally {
        conn.disconnect()
      }
    })
  )
}

/** Which processes the cluster scenario charges CPU to. */
interface ClusterPids {
  api: number
  worker: number
  masters: number[]
}

/** CPU seconds used so far by the api, the worker and all masters together. */
const cpuOf = (pids: ClusterPids) => ({
  api: cpuSeconds(pids.api),
  worker: cpuSeconds(pids.worker),
  redis: pids.masters.reduce((a, pid) => a + cpuSeconds(pid), 0),
})

/**
 * wrk runs against both queues, alternated, with each master's share of the spread queue's
 * commands and the CPU each process spent a message over those runs (a per-unit figure
 * contention distorts less than throughput).
 */
async function clusterRuns(
  ctx: Context,
  api: Server,
  urls: string[],
  pids: ClusterPids,
  script: 'publish' | 'batch'
) {
  const systems = ['1 partition', `${SPREAD_PARTITIONS} partitions`] as const
  const queueOf = { '1 partition': 'cl-one', [`${SPREAD_PARTITIONS} partitions`]: 'cl-spread' }
  const perRequest = script === 'publish' ? 1 : BATCH
  let shares: number[] = []
  const cpu = { api: 0, worker: 0, redis: 0, messages: 0 }
  const run = async (system: (typeof systems)[number], seconds: number) => {
    const before = { commands: await commandsPerMaster(urls), cpu: cpuOf(pids) }
    const r = await runWrk({
      url: `${api.url}${API}/${script === 'publish' ? 'publish' : 'publish/batch'}`,
      script,
      env: { BENCH_TOKEN: ctx.token, BENCH_QUEUE: queueOf[system]!, BENCH_BATCH: String(BATCH) },
      seconds,
      workDir: ctx.work,
    })
    if (system !== '1 partition') {
      const after = { commands: await commandsPerMaster(urls), cpu: cpuOf(pids) }
      const done = after.commands.map((a, i) => a - before.commands[i]!)
      const total = done.reduce((a, b) => a + b, 0)
      shares = done.map((d) => d / total)
      for (const k of ['api', 'worker', 'redis'] as const) cpu[k] += after.cpu[k] - before.cpu[k]
      cpu.messages += (r.requests - r.errors) * perRequest
    }
    return r
  }
  for (const system of systems) await run(system, ctx.plan.warmSeconds)
  const runs = await interleave(ctx, ctx.plan.runs, systems, (s) => run(s, ctx.plan.wrkSeconds))
  const us = (seconds: number) => ((seconds / cpu.messages) * 1e6).toFixed(1)
  const spread = [
    `commands per master in the last ${SPREAD_PARTITIONS}-partition run: ${shares.map((x) => `${Math.round(x * 100)} %`).join(', ')}`,
    `CPU a message over the ${SPREAD_PARTITIONS}-partition runs (warm-up included): api ${us(cpu.api)} µs, worker ${us(cpu.worker)} µs (the ledger's share included), Redis masters together ${us(cpu.redis)} µs`,
  ].join('; ')
  return { runs, spread }
}

/** The single and batch figures of one cluster run: whole cluster and per shard. */
function clusterFigures(
  scenario: string,
  unit: string,
  runs: Record<string, { rps: number }[]>,
  perRequest: number,
  note: string
): Figure[] {
  const spreadKey = `${SPREAD_PARTITIONS} partitions`
  const rate = (k: string) => (runs[k] ?? []).map((r) => r.rps * perRequest)
  return [
    figure({
      scenario,
      metric: 'throughput',
      unit,
      better: 'higher',
      runs: { service: rate(spreadKey), '1 partition': rate('1 partition') },
      note: `service: a queue of ${SPREAD_PARTITIONS} partitions over ${MASTERS} masters; ${note}`,
    }),
    figure({
      scenario,
      metric: 'per master (mean of the 3)',
      unit,
      better: 'higher',
      runs: { service: rate(spreadKey).map((v) => v / MASTERS) },
    }),
  ]
}

/** The cluster scenario; its processes and stores are stopped before it returns. */
export async function cluster(ctx: Context): Promise<Figure[]> {
  const started = await startClusterService(ctx)
  try {
    const clusterCtx: Context = { ...ctx, service: started.api, apiUrl: `${started.api.url}${API}` }
    await createQueue(clusterCtx, 'cl-one')
    await createQueue(clusterCtx, 'cl-spread', ctx.token, { partitionCount: SPREAD_PARTITIONS })
    const urls = started.cluster.servers.map((s) => s.url)
    const single = await clusterRuns(ctx, started.api, urls, started.pids, 'publish')
    const batch = await clusterRuns(ctx, started.api, urls, started.pids, 'batch')
    const where = `${MASTERS} Redis masters, one api and one worker process`
    return [
      ...clusterFigures(
        `cluster (${where}): single POST /publish`,
        'requests/s',
        single.runs,
        1,
        single.spread
      ),
      ...clusterFigures(
        `cluster (${where}): POST /publish/batch, ${BATCH} a request`,
        'messages/s',
        batch.runs,
        BATCH,
        batch.spread
      ),
    ]
  } finally {
    await started.stop()
    await started.cluster.stop()
  }
}
