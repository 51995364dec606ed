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
import { cleanup, installSignalHandlers } from './lib/cleanup'
import { type Context, PLANS, peerRedisUrl } from './lib/context'
import {
  API,
  BENCH_DIR,
  buildService,
  cpuSeconds,
  createDatabase,
  ensureTools,
  ROOT,
  rssMb,
  type Server,
  type ServiceEnv,
  startRedis,
  startServer,
  startService,
  tempDir,
  tokenFor,
  waitProcessQuiet,
} from './lib/infra'
import { limitMemory, memoryLimitNote } from './lib/memory-limit'
import { type Figure, figure, type RunInfo, toMarkdown, toSvg } from './lib/report'
import { delayed, e2ePull, e2eWebhook, pullAck } from './scenarios/consume'
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
  },
})
const mode = args.quick ? 'quick' : 'full'
const plan = PLANS[mode]
const only = args.only?.split(',').map((s) => s.trim())
const unknown = only?.filter((s) => !(s in SCENARIOS) && s !== 'startup')
if (unknown?.length) {
  console.error(
    `unknown scenario ${unknown.join(', ')}; one of startup, ${Object.keys(SCENARIOS).join(', ')}`
  )
  process.exit(2)
}
const wanted = (name: string) => !only || only.includes(name)
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

/** Share of the machine's CPU (all cores) busy over `ms`, from /proc/stat, in %. */
async function machineBusy(ms: number): Promise<number> {
  const read = () => {
    const [, ...fields] = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/)
    const n = fields.map(Number)
    const idle = n[3]! + n[4]!
    return { idle, total: n.reduce((a, b) => a + b, 0) }
  }
  const a = read()
  await Bun.sleep(ms)
  const b = read()
  return Math.round((1 - (b.idle - a.idle) / (b.total - a.total)) * 100)
}

function toolVersion(cmd: string[], pattern: RegExp): string {
  const out = Bun.spawnSync(cmd, { stdout: 'pipe', stderr: 'pipe' })
  return pattern.exec(`${out.stdout.toString()}${out.stderr.toString()}`)?.[1] ?? '?'
}

async function main(): Promise<void> {
  installSignalHandlers()
  log(`mode ${mode}${only ? `, only ${only.join(', ')}` : ''}`)
  // Figures taken while other work loads the machine are not comparable with earlier runs:
  // wait a while for it to end when asked (a shared machine), and say in the report how busy it was.
  let busyBefore = await machineBusy(1000)
  const waitUntil = performance.now() + Number(args['wait-idle'] ?? 0) * 1000
  while (busyBefore > IDLE_BUSY_PERCENT && performance.now() < waitUntil) {
    log(`machine ${busyBefore}% busy with other work; waiting for it to settle`)
    await Bun.sleep(5000)
    busyBefore = await machineBusy(2000)
  }
  const loadBefore = loadavg()[0]!
  await ensureTools(['wrk', 'redis-benchmark', 'redis-server'])
  const work = tempDir('mq-bench-')
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
  const redisUrls = {
    bare: peerRedisUrl({ redis }, 'bare'),
    bullmq: peerRedisUrl({ redis }, 'bullmq'),
  }
  const figures: Figure[] = []
  const notes: string[] = []
  /** Per scenario, each process's CPU use over it, in % of one core. */
  const scenarioCpu: Record<string, Record<string, number>> = {}
  /** Per scenario, each server's peak RSS in MB. */
  const scenarioPeakMb: Record<string, Record<string, number>> = {}

  // Start-up first: the first start applies the migrations to the fresh database.
  const first = await startService(serviceEnv, join(work, 'first-start.log'))
  await first.stop()
  if (wanted('startup')) {
    log('scenario startup')
    figures.push(...(await startup({ plan, work, redisUrls }, serviceEnv, first.startMs)))
  }

  const service = await startService(serviceEnv, join(work, 'service.log'))
  const peerCmd = (name: string) => ['bun', join(BENCH_DIR, 'peers', `${name}.ts`)]
  const bare = await startServer(
    'bare',
    peerCmd('bare'),
    { REDIS_URL: redisUrls.bare },
    '/health',
    join(work, 'bare.log')
  )
  const bullmq = await startServer(
    'bullmq',
    peerCmd('bullmq'),
    { REDIS_URL: redisUrls.bullmq },
    '/health',
    join(work, 'bullmq.log')
  )
  const admin = new Redis(redis.url)
  const tenant = crypto.randomUUID()
  const ctx: Context = {
    plan,
    quick: mode === 'quick',
    work,
    redis,
    admin,
    service,
    bare,
    bullmq,
    serviceEnv,
    tenant,
    token: await tokenFor(tenant, serviceEnv.jwtSecret),
    apiUrl: `${service.url}${API}`,
    notes,
  }
  const memory = memorySampler([service, bare, bullmq])
  try {
    await Bun.sleep(plan.quietSeconds * 1000)
    const idleAtStart = memory.now()
    // CPU used per scenario by each long-running process: which one saturated a core.
    const pids = {
      service: service.proc.pid,
      bare: bare.proc.pid,
      bullmq: bullmq.proc.pid,
      'redis-server': redis.pid,
    }
    const cpuNow = () =>
      Object.fromEntries(Object.entries(pids).map(([k, pid]) => [k, cpuSeconds(pid)]))
    for (const [name, run] of Object.entries(SCENARIOS)) {
      if (!wanted(name)) continue
      // Each scenario starts on a quiet service: background work left by the one before (the
      // ledger copying what it published) would otherwise be charged to this one.
      const settleMs = await waitProcessQuiet(service.proc.pid, plan.settleMaxMs)
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
        notes.push(`${name}: failed (${message})`)
        console.error(`scenario ${name} failed:`, err)
      }
      const wallS = (performance.now() - startedAt) / 1000
      const after = cpuNow()
      scenarioCpu[name] = Object.fromEntries(
        Object.keys(pids).map((k) => [k, Math.round(((after[k]! - before[k]!) / wallS) * 100)])
      )
      scenarioPeakMb[name] = memory.resetSince()
      log(
        `  cpu over ${wallS.toFixed(0)} s: ${Object.entries(scenarioCpu[name]!)
          .map(([k, v]) => `${k} ${v}%`)
          .join(', ')}; peak RSS: ${Object.entries(scenarioPeakMb[name]!)
          .map(([k, v]) => `${k} ${v} MB`)
          .join(', ')}`
      )
    }
    // Idle means no work: the ledger may still be writing what the last scenario published.
    const busyAfterMs = await waitProcessQuiet(service.proc.pid, plan.settleMaxMs)
    const busyS = (busyAfterMs / 1000).toFixed(0)
    const quietNote =
      busyAfterMs >= plan.settleMaxMs
        ? `the service was still busy ${busyS} s after the load ended`
        : `the service went quiet ${busyS} s after the load ended`
    // Past the minute of quiet after which the service gives memory back (IDLE_SHRINK).
    await Bun.sleep(plan.idleSeconds * 1000)
    const idleAfter = memory.now()
    memory.stop()
    figures.push(
      figure({
        scenario: 'memory (RSS)',
        metric: 'peak during the run',
        unit: 'MB',
        better: 'lower',
        runs: Object.fromEntries([...memory.peak].map(([k, v]) => [k, [v]])),
        target: (s) => ({ text: '≤ 200 MB', met: s <= 200 }),
        note: memoryLimitNote(service.memoryLimited),
      }),
      figure({
        scenario: 'memory (RSS)',
        metric: `idle, ${plan.idleSeconds} s after the work`,
        unit: 'MB',
        better: 'lower',
        runs: Object.fromEntries(Object.entries(idleAfter).map(([k, v]) => [k, [v]])),
        target: (s) => ({ text: '≤ 100 MB', met: s <= 100 }),
        note: `${quietNote}; idle after start: ${Object.entries(idleAtStart)
          .map(([k, v]) => `${k} ${v.toFixed(0)} MB`)
          .join(', ')}`,
      })
    )
  } finally {
    memory.stop()
    admin.disconnect()
  }

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
      `machine before the run: ${busyBefore}% busy (all cores, other processes), load average ${loadBefore.toFixed(1)}; after: load average ${loadavg()[0]!.toFixed(1)}${busyBefore > IDLE_BUSY_PERCENT ? ' — other work was running, figures are depressed' : ''}`,
      ...notes,
    ],
  }
  const markdown = toMarkdown(info, figures)
  const out = args.out ?? join(BENCH_DIR, 'results')
  mkdirSync(out, { recursive: true })
  writeFileSync(join(out, 'latest.md'), markdown)
  writeFileSync(
    join(out, 'latest.json'),
    `${JSON.stringify({ ...info, figures, cpuPercentOfOneCore: scenarioCpu, peakRssMb: scenarioPeakMb }, null, 2)}\n`
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
