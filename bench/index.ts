/**
 * `bun run bench [-- --quick] [-- --only publish,batch] [-- --out DIR] [-- --ledger off]`: starts a private
 * redis-server, a fresh PostgreSQL database (or PGlite), the compiled service and its peers on
 * loopback, runs every scenario of issue 6 and writes latest.{md,json,svg} in DIR
 * (bench/results by default; CI's smoke run writes elsewhere, leaving the committed ones).
 * Everything it starts is stopped, and everything it creates removed, on success, failure,
 * Ctrl-C or SIGTERM.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { cpus, loadavg, release } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { Redis } from 'ioredis'
import type { PrivateRedis } from '../src/local/redis-server'
import { cleanup, installSignalHandlers } from './lib/cleanup'
import {
  type Context,
  LEDGER_OFF,
  LEDGER_OFF_DB,
  PLANS,
  peerRedisUrl,
  type ServiceTwin,
} from './lib/context'
import {
  API,
  BENCH_DIR,
  buildService,
  cpuSeconds,
  createDatabase,
  ensureTools,
  machineBusy,
  ROOT,
  rssMb,
  type Server,
  type ServiceEnv,
  serviceEnvironment,
  startRedis,
  startServer,
  startService,
  tempDir,
  tokenFor,
  waitProcessQuiet,
} from './lib/infra'
import { limitMemory, memoryLimitNote } from './lib/memory-limit'
import { type Figure, figure, type RunInfo, toMarkdown, toSvg } from './lib/report'
import { cluster } from './scenarios/cluster'
import { delayed, e2ePull, e2eWebhook, pullAck } from './scenarios/consume'
import { footprint } from './scenarios/footprint'
import { backlog, batchPublish, scale, singlePublish } from './scenarios/publish'
import { startup } from './scenarios/startup'

const SCENARIOS: Record<string, (ctx: Context) => Promise<Figure[]>> = {
  publish: singlePublish,
  batch: batchPublish,
  consume: pullAck,
  e2e: e2ePull,
  webhook: e2eWebhook,
  delayed,
  scale,
  backlog,
  footprint,
}

const { values: args } = parseArgs({
  args: Bun.argv.slice(2).filter((a) => a !== '--'),
  options: {
    quick: { type: 'boolean', default: false },
    only: { type: 'string' },
    'wait-idle': { type: 'string' },
    ref: { type: 'string' },
    out: { type: 'string' },
    ledger: { type: 'string' },
    cluster: { type: 'boolean', default: false },
  },
})
const mode = args.quick ? 'quick' : 'full'
const plan = PLANS[mode]
const only = args.only?.split(',').map((s) => s.trim())
const unknown = only?.filter((s) => !(s in SCENARIOS) && s !== 'startup' && s !== 'cluster')
if (unknown?.length) {
  console.error(
    `unknown scenario ${unknown.join(', ')}; one of startup, ${Object.keys(SCENARIOS).join(', ')}, cluster`
  )
  process.exit(2)
}
const wanted = (name: string) => !only || only.includes(name)
/** The cluster scenario starts stores of its own: the smoke test runs it only when asked. */
const wantCluster = only ? only.includes('cluster') : mode === 'full' || args.cluster

/** The cluster scenario, its failure a note of the report rather than the run's end. */
async function runCluster(ctx: Context): Promise<Figure[]> {
  log('scenario cluster')
  try {
    return await cluster(ctx)
  } catch (err) {
    ctx.notes.push(`cluster: failed (${(err as Error).message.split('\n')[0]})`)
    console.error('scenario cluster failed:', err)
    return []
  }
}
const LEDGER_MODES = ['all', 'failures', 'off']
if (args.ledger !== undefined && !LEDGER_MODES.includes(args.ledger)) {
  console.error(`--ledger is one of ${LEDGER_MODES.join(', ')}`)
  process.exit(2)
}

const began = performance.now()
const log = (msg: string) =>
  console.log(`[${((performance.now() - began) / 1000).toFixed(0).padStart(4)} s] ${msg}`)

/** Samples the RSS of the long-running servers, keeping each one's peak. */
function memorySampler(servers: Server[]) {
  const peak = new Map<string, number>()
  /** Peaks since the last `resetSince()`, to tell which scenario made the overall one. */
  let since = new Map<string, number>()
  const sample = () => {
    for (const s of servers) {
      const mb = rssMb(s.proc.pid)
      if (mb > (peak.get(s.name) ?? 0)) peak.set(s.name, mb)
      if (mb > (since.get(s.name) ?? 0)) since.set(s.name, mb)
    }
  }
  const timer = setInterval(sample, 100)
  return {
    peak,
    resetSince: () => {
      const last = Object.fromEntries([...since].map(([k, v]) => [k, Math.round(v)]))
      since = new Map()
      return last
    },
    now: () => Object.fromEntries(servers.map((s) => [s.name, rssMb(s.proc.pid)])),
    stop: () => clearInterval(timer),
  }
}

function machine(): RunInfo['machine'] {
  const cpuinfo = readFileSync('/proc/cpuinfo', 'utf8')
  const meminfo = readFileSync('/proc/meminfo', 'utf8')
  return {
    nproc: cpus().length,
    cpu: /model name\s*:\s*(.+)/.exec(cpuinfo)?.[1]?.trim() ?? 'unknown CPU',
    memoryGiB: Math.round(Number(/MemTotal:\s+(\d+)/.exec(meminfo)?.[1] ?? 0) / 1024 / 1024),
    kernel: release(),
  }
}

/** Above this share of the machine's CPU busy before the run, other work is running. */
const IDLE_BUSY_PERCENT = 10

function toolVersion(cmd: string[], pattern: RegExp): string {
  const out = Bun.spawnSync(cmd, { stdout: 'pipe', stderr: 'pipe' })
  return pattern.exec(`${out.stdout.toString()}${out.stderr.toString()}`)?.[1] ?? '?'
}

/** Waits for a busy machine to settle when asked (`--wait-idle`); says how busy it was. */
async function machineBefore(): Promise<{ busy: number; load: number }> {
  // Figures taken while other work loads the machine are not comparable with earlier runs:
  // wait a while for it to end when asked (a shared machine), and say in the report how busy it was.
  let busy = await machineBusy(1000)
  const waitUntil = performance.now() + Number(args['wait-idle'] ?? 0) * 1000
  while (busy > IDLE_BUSY_PERCENT && performance.now() < waitUntil) {
    log(`machine ${busy}% busy with other work; waiting for it to settle`)
    await Bun.sleep(5000)
    busy = await machineBusy(2000)
  }
  return { busy, load: loadavg()[0]! }
}

type PeerServers = Pick<Context, 'bare' | 'bareAuth' | 'bullmq' | 'bullmqAuth'>

/** The plain peers and their +auth twins, each on its own port. */
async function startPeers(work: string, redis: PrivateRedis, jwtSecret: string) {
  const start = (file: string, db: 'bare' | 'bullmq', env: Record<string, string> = {}) =>
    startServer(
      file,
      ['bun', join(BENCH_DIR, 'peers', `${file}.ts`)],
      { REDIS_URL: peerRedisUrl({ redis }, db), ...env },
      '/health',
      join(work, `${file}.log`)
    )
  const peers: PeerServers = {
    bare: await start('bare', 'bare'),
    bareAuth: await start('bare-auth', 'bare', { JWT_SECRET: jwtSecret }),
    bullmq: await start('bullmq', 'bullmq'),
    bullmqAuth: await start('bullmq-auth', 'bullmq', { JWT_SECRET: jwtSecret }),
  }
  return peers
}

/** The scenarios that report LEDGER_MODE=all ÷ off. */
const LEDGER_SCENARIOS = ['publish', 'batch', 'consume']

/**
 * The same build a second time with LEDGER_MODE=off, on a Redis database and a PostgreSQL
 * database of its own, so its worker never sees the default service's queues (issue 19's
 * all ÷ off, alternated in the same run). None when the run was asked for one mode, runs on
 * PGlite, or no scenario that reports the ratio runs.
 */
async function startLedgerOffTwin(
  serviceEnv: ServiceEnv,
  redis: PrivateRedis,
  work: string
): Promise<ServiceTwin | undefined> {
  if (args.ledger || !LEDGER_SCENARIOS.some(wanted)) return undefined
  const database = await createDatabase()
  if (!database) return undefined
  const service = await startServer(
    'service-ledger-off',
    [serviceEnv.binary, 'all'],
    serviceEnvironment({
      ...serviceEnv,
      redisUrl: `${redis.url}/${LEDGER_OFF_DB}`,
      databaseUrl: database.url,
      dataDir: join(work, 'data-ledger-off'),
      ledgerMode: 'off',
    }),
    '/health',
    join(work, 'service-ledger-off.log')
  )
  return { service, apiUrl: `${service.url}${API}` }
}

/** Per scenario, each process's CPU use (% of one core) and each server's peak RSS (MB). */
interface ScenarioUse {
  cpu: Record<string, Record<string, number>>
  peakMb: Record<string, Record<string, number>>
}

/** Runs every wanted scenario in turn, each once the service has gone quiet. */
async function runScenarios(
  ctx: Context,
  memory: ReturnType<typeof memorySampler>,
  pids: Record<string, number>,
  figures: Figure[]
): Promise<ScenarioUse> {
  const use: ScenarioUse = { cpu: {}, peakMb: {} }
  const cpuNow = () =>
    Object.fromEntries(Object.entries(pids).map(([k, pid]) => [k, cpuSeconds(pid)]))
  for (const [name, run] of Object.entries(SCENARIOS)) {
    if (!wanted(name)) continue
    // Each scenario starts on a quiet service: background work left by the one before (the
    // ledger copying what it published) would otherwise be charged to this one.
    const settleMs = await waitProcessQuiet(ctx.service.proc.pid, ctx.plan.settleMaxMs)
    log(
      `scenario ${name}${settleMs > 1500 ? ` (after waiting ${(settleMs / 1000).toFixed(0)} s for the service to go quiet)` : ''}`
    )
    const before = cpuNow()
    memory.resetSince()
    const startedAt = performance.now()
    try {
      figures.push(...(await run(ctx)))
    } catch (err) {
      const message = (err as Error).message.split('\n')[0]
      ctx.notes.push(`${name}: failed (${message})`)
      console.error(`scenario ${name} failed:`, err)
    }
    const wallS = (performance.now() - startedAt) / 1000
    const after = cpuNow()
    use.cpu[name] = Object.fromEntries(
      Object.keys(pids).map((k) => [k, Math.round(((after[k]! - before[k]!) / wallS) * 100)])
    )
    use.peakMb[name] = memory.resetSince()
    const list = (o: Record<string, number>, unit: string) =>
      Object.entries(o)
        .map(([k, v]) => `${k} ${v}${unit}`)
        .join(', ')
    log(
      `  cpu over ${wallS.toFixed(0)} s: ${list(use.cpu[name]!, '%')}; peak RSS: ${list(use.peakMb[name]!, ' MB')}`
    )
  }
  return use
}

/** Peak RSS over the run, and idle RSS once the service has been quiet past its idle shrink. */
async function memoryFigures(
  ctx: Context,
  memory: ReturnType<typeof memorySampler>,
  idleAtStart: Record<string, number>
): Promise<Figure[]> {
  // Idle means no work: the ledger may still be writing what the last scenario published.
  const busyAfterMs = await waitProcessQuiet(ctx.service.proc.pid, ctx.plan.settleMaxMs)
  const busyS = (busyAfterMs / 1000).toFixed(0)
  const quietNote =
    busyAfterMs >= ctx.plan.settleMaxMs
      ? `the service was still busy ${busyS} s after the load ended`
      : `the service went quiet ${busyS} s after the load ended`
  // Past the minute of quiet after which the service gives memory back (IDLE_SHRINK).
  await Bun.sleep(ctx.plan.idleSeconds * 1000)
  const idleAfter = memory.now()
  memory.stop()
  return [
    figure({
      scenario: 'memory (RSS)',
      metric: 'peak during the run',
      unit: 'MB',
      better: 'lower',
      runs: Object.fromEntries([...memory.peak].map(([k, v]) => [k, [v]])),
      target: (s) => ({ text: '≤ 200 MB', met: s <= 200 }),
      note: memoryLimitNote(ctx.service.memoryLimited),
    }),
    figure({
      scenario: 'memory (RSS)',
      metric: `idle, ${ctx.plan.idleSeconds} s after the work`,
      unit: 'MB',
      better: 'lower',
      runs: Object.fromEntries(Object.entries(idleAfter).map(([k, v]) => [k, [v]])),
      target: (s) => ({ text: '≤ 100 MB', met: s <= 100 }),
      note: `${quietNote}; idle after start: ${Object.entries(idleAtStart)
        .map(([k, v]) => `${k} ${v.toFixed(0)} MB`)
        .join(', ')}`,
    }),
  ]
}

/** Writes latest.{md,json,svg} in `--out` (bench/results by default) and prints the table. */
function writeResults(info: RunInfo, figures: Figure[], use: ScenarioUse): void {
  const markdown = toMarkdown(info, figures)
  const out = args.out ?? join(BENCH_DIR, 'results')
  mkdirSync(out, { recursive: true })
  writeFileSync(join(out, 'latest.md'), markdown)
  writeFileSync(
    join(out, 'latest.json'),
    `${JSON.stringify({ ...info, figures, cpuPercentOfOneCore: use.cpu, peakRssMb: use.peakMb }, null, 2)}\n`
  )
  writeFileSync(join(out, 'latest.svg'), toSvg(info, figures))
  // Committed results must pass `bun run lint` as they are written.
  Bun.spawnSync([join(ROOT, 'node_modules', '.bin', 'biome'), 'format', '--write', out], {
    stdout: 'ignore',
    stderr: 'ignore',
  })
  console.log(`\n${markdown}`)
  log(`wrote latest.md, latest.json and latest.svg in ${out}`)
}

/** The stores, the built service and its environment. */
async function prepare(work: string) {
  await ensureTools(['wrk', 'redis-benchmark', 'redis-server', 'redis-cli'])
  const redis = await startRedis(work)
  const database = await createDatabase()
  limitMemory(database !== undefined)
  log(
    `redis-server on ${redis.url}; ${database ? `PostgreSQL ${database.version}, database made for this run` : 'no PostgreSQL on 127.0.0.1:5432: PGlite'}`
  )
  const { binary, source } = buildService(work, args.ref)
  log(`built ${binary} from the ${source}`)
  const serviceEnv: ServiceEnv = {
    binary,
    redisUrl: redis.url,
    databaseUrl: database?.url,
    dataDir: join(work, 'data'),
    jwtSecret: Buffer.from(crypto.getRandomValues(new Uint8Array(48))).toString('base64'),
    ledgerMode: args.ledger,
  }
  return { redis, database, source, serviceEnv }
}

/** Starts the service, its twin and the peers, and makes the context every scenario gets. */
async function startSystems(
  work: string,
  redis: PrivateRedis,
  serviceEnv: ServiceEnv,
  notes: string[],
  baselineBusy: number
): Promise<Context> {
  const service = await startService(serviceEnv, join(work, 'service.log'))
  const ledgerOff = await startLedgerOffTwin(serviceEnv, redis, work)
  if (!ledgerOff && !args.ledger && LEDGER_SCENARIOS.some(wanted))
    notes.push('LEDGER_MODE=all ÷ off: not measured in this run (no PostgreSQL)')
  const peers = await startPeers(work, redis, serviceEnv.jwtSecret)
  const tenant = crypto.randomUUID()
  return {
    plan,
    quick: mode === 'quick',
    work,
    redis,
    admin: new Redis(redis.url),
    service,
    ...peers,
    ...(ledgerOff ? { ledgerOff } : {}),
    serviceEnv,
    tenant,
    token: await tokenFor(tenant, serviceEnv.jwtSecret),
    apiUrl: `${service.url}${API}`,
    notes,
    baselineBusy,
  }
}

async function main(): Promise<void> {
  installSignalHandlers()
  log(`mode ${mode}${only ? `, only ${only.join(', ')}` : ''}`)
  const before = await machineBefore()
  const work = tempDir('mq-bench-')
  const { redis, database, source, serviceEnv } = await prepare(work)
  const figures: Figure[] = []
  const notes: string[] = []
  // Start-up first: the first start applies the migrations to the fresh database.
  const first = await startService(serviceEnv, join(work, 'first-start.log'))
  await first.stop()
  if (wanted('startup')) {
    log('scenario startup')
    const redisUrls = {
      bare: peerRedisUrl({ redis }, 'bare'),
      bullmq: peerRedisUrl({ redis }, 'bullmq'),
    }
    figures.push(...(await startup({ plan, work, redisUrls }, serviceEnv, first.startMs)))
  }
  const ctx = await startSystems(work, redis, serviceEnv, notes, before.busy)
  const memory = memorySampler([ctx.service, ctx.bare, ctx.bullmq])
  let use: ScenarioUse
  try {
    await Bun.sleep(plan.quietSeconds * 1000)
    const idleAtStart = memory.now()
    // CPU used per scenario by each long-running process: which one saturated a core.
    const pids = {
      service: ctx.service.proc.pid,
      ...(ctx.ledgerOff ? { [LEDGER_OFF]: ctx.ledgerOff.service.proc.pid } : {}),
      bare: ctx.bare.proc.pid,
      'bare+auth': ctx.bareAuth.proc.pid,
      bullmq: ctx.bullmq.proc.pid,
      'bullmq+auth': ctx.bullmqAuth.proc.pid,
      'redis-server': redis.pid,
    }
    use = await runScenarios(ctx, memory, pids, figures)
    figures.push(...(await memoryFigures(ctx, memory, idleAtStart)))
  } finally {
    memory.stop()
    ctx.admin.disconnect()
  }
  if (wantCluster) figures.push(...(await runCluster(ctx)))
  const info: RunInfo = {
    date: `${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC`,
    mode,
    runsPerFigure: plan.runs,
    machine: machine(),
    versions: {
      bun: Bun.version,
      'redis-server': toolVersion(['redis-server', '--version'], /v=(\S+)/),
      wrk: toolVersion(['wrk', '-v'], /wrk (\S+)/),
    },
    database: database ? `PostgreSQL ${database.version}` : 'PGlite',
    source: args.ledger ? `${source}, run with LEDGER_MODE=${args.ledger}` : source,
    durationS: (performance.now() - began) / 1000,
    notes: [
      `machine before the run: ${before.busy}% busy (all cores, other processes), load average ${before.load.toFixed(1)}; after: load average ${loadavg()[0]!.toFixed(1)}${before.busy > IDLE_BUSY_PERCENT ? ' — other work was running, figures are depressed' : ''}`,
      ...notes,
    ],
  }
  writeResults(info, figures, use)
}

try {
  await main()
} catch (err) {
  console.error(err)
  process.exitCode = 1
} finally {
  await cleanup()
}
// Nothing of ours is left running; do not wait for stray handles of libraries.
process.exit()
