/**
 * Two or more builds of the service side by side on one scenario, for deciding whether a
 * change is kept: `bun run bench/ab.ts --ref HEAD --ref work` (`work` is the working tree).
 * Each build runs in role `all` on its own Redis database and PostgreSQL database; the builds
 * take turns under the same wrk load, and each turn reports requests/s with the CPU each
 * build's process and Redis spent per request, which moves less with other work on the
 * machine than requests/s does. `--script batch` measures the batch route instead.
 */
import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { cleanup, installSignalHandlers } from './lib/cleanup'
import { machineQuiet } from './lib/context'
import {
  API,
  api,
  buildService,
  cpuSeconds,
  createDatabase,
  ensureTools,
  machineBusy,
  type Server,
  startRedis,
  startService,
  tempDir,
  tokenFor,
} from './lib/infra'
import { runWrk } from './lib/load'
import { median } from './lib/stats'

const { values } = parseArgs({
  options: {
    ref: { type: 'string', multiple: true },
    rounds: { type: 'string', default: '4' },
    seconds: { type: 'string', default: '10' },
    script: { type: 'string', default: 'publish' },
    ledger: { type: 'string' },
  },
})
const refs = values.ref ?? ['HEAD', 'work']
const script = values.script === 'batch' ? 'batch' : 'publish'
const TENANT = '00000000-0000-4000-8000-00000000ab01'
const SECRET = 'ab-secret-ab-secret-ab-secret-ab-secret'

interface Build {
  ref: string
  server: Server
  token: string
}

async function main() {
  installSignalHandlers()
  await ensureTools(['wrk', 'redis-server'])
  // Measured before anything starts: a turn waits for the machine to be back to this.
  const baselineBusy = await machineBusy(1000)
  const dir = tempDir('mq-ab-')
  const redis = await startRedis(dir)
  const builds: Build[] = []
  for (const [i, ref] of refs.entries()) {
    const workDir = join(dir, `build-${i}`)
    mkdirSync(workDir, { recursive: true })
    const built = buildService(workDir, ref === 'work' ? undefined : ref)
    const db = await createDatabase()
    const server = await startService(
      {
        binary: built.binary,
        redisUrl: `${redis.url}/${i}`,
        databaseUrl: db?.url,
        dataDir: join(workDir, 'data'),
        jwtSecret: SECRET,
        ledgerMode: values.ledger,
      },
      join(workDir, 'service.log')
    )
    const token = await tokenFor(TENANT, SECRET)
    await api(server.url, token, 'POST', '/queues', { name: 'ab', maxLength: 100_000_000 })
    builds.push({ ref, server, token })
    console.log(`${ref}: ${built.source}`)
  }
  const rows: string[] = []
  const runs = new Map<string, Array<{ rps: number; cpuUs: number }>>()
  for (let round = 0; round <= Number(values.rounds); round++) {
    for (const b of builds) {
      await machineQuiet(baselineBusy)
      const cpu0 = cpuSeconds(b.server.proc.pid)
      const redis0 = cpuSeconds(redis.pid)
      const run = await runWrk({
        url: `${b.server.url}${API}/publish${script === 'batch' ? '/batch' : ''}`,
        script,
        env: { BENCH_TOKEN: b.token, BENCH_QUEUE: 'ab', BENCH_BATCH: '100' },
        // Round 0 warms the JIT up and is not reported.
        seconds: round === 0 ? 5 : Number(values.seconds),
        workDir: dir,
      })
      if (round === 0) continue
      const perRequest = (seconds: number) => (seconds * 1e6) / run.requests
      const cpuUs = perRequest(cpuSeconds(b.server.proc.pid) - cpu0)
      const redisUs = perRequest(cpuSeconds(redis.pid) - redis0)
      runs.set(b.ref, [...(runs.get(b.ref) ?? []), { rps: run.rps, cpuUs }])
      rows.push(
        `| ${round} | ${b.ref} | ${Math.round(run.rps)} | ${run.p99Ms.toFixed(2)} | ` +
          `${cpuUs.toFixed(1)} | ${redisUs.toFixed(1)} | ${run.errors} |`
      )
      console.log(rows.at(-1))
    }
  }
  console.log(
    `\n${script}, role all, wrk 1 thread 50 connections\n\n` +
      '| round | build | requests/s | p99 ms | service CPU µs/request | Redis CPU µs/request | errors |\n' +
      '| ---: | --- | ---: | ---: | ---: | ---: | ---: |\n' +
      rows.join('\n')
  )
  for (const [ref, r] of runs) {
    console.log(
      `median ${ref}: ${Math.round(median(r.map((x) => x.rps)))} requests/s, ` +
        `${median(r.map((x) => x.cpuUs)).toFixed(1)} µs service CPU a request`
    )
  }
}

try {
  await main()
} finally {
  await cleanup()
}
