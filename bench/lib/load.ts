import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { BENCH_DIR } from './infra'

/** The ~200-byte JSON message every scenario sends (an order, as a typical event). */
export const PAYLOAD = {
  orderId: 'ord-2026-000123456',
  customerId: 'cus-98765',
  items: [
    { sku: 'SKU-1001', qty: 2, price: 19.99 },
    { sku: 'SKU-2002', qty: 1, price: 5.5 },
  ],
  currency: 'EUR',
  total: 45.48,
  note: 'leave it at the front door, ring twice',
}
export const PAYLOAD_JSON = JSON.stringify(PAYLOAD)

/** Connections of every HTTP throughput scenario (the figure). */
export const CONNECTIONS = 50
/**
 * One wrk thread: the machine has 2 cores, and a second wrk thread takes CPU from the server
 * under test; one thread drives well past 100,000 requests/s on loopback, above every server here.
 */
const WRK_THREADS = 1

export interface HttpRun {
  /** Requests per second that were answered 2xx/3xx. */
  rps: number
  p50Ms: number
  p99Ms: number
  requests: number
  /** Socket errors, timeouts and non-2xx/3xx answers. */
  errors: number
}

/**
 * Runs wrk with `script` (bench/wrk/<script>.lua, with report.lua and PAYLOAD prepended)
 * against `url` for `seconds`.
 */
export async function runWrk(opts: {
  url: string
  script: 'publish' | 'batch' | 'targets'
  env: Record<string, string>
  seconds: number
  workDir: string
  connections?: number
}): Promise<HttpRun> {
  const scriptPath = join(opts.workDir, `${opts.script}.lua`)
  // A Lua long string cannot contain "]==]", which JSON never does.
  const header = `PAYLOAD = [==[${PAYLOAD_JSON}]==]\n`
  writeFileSync(
    scriptPath,
    header +
      readFileSync(join(BENCH_DIR, 'wrk', 'report.lua'), 'utf8') +
      readFileSync(join(BENCH_DIR, 'wrk', `${opts.script}.lua`), 'utf8')
  )
  const connections = opts.connections ?? CONNECTIONS
  const proc = Bun.spawn(
    [
      'wrk',
      `-t${WRK_THREADS}`,
      `-c${connections}`,
      `-d${opts.seconds}s`,
      '--timeout',
      '10s',
      '-s',
      scriptPath,
      opts.url,
    ],
    { env: { ...process.env, ...opts.env }, stdout: 'pipe', stderr: 'pipe' }
  )
  const [out, err] = await Promise.all([
    new Response(proc.stdout).text(),
    new Response(proc.stderr).text(),
  ])
  await proc.exited
  const line = out.split('\n').find((l) => l.startsWith('BENCH_JSON '))
  if (!line) throw new Error(`wrk printed no report:\n${out}\n${err}`)
  const r = JSON.parse(line.slice('BENCH_JSON '.length)) as Record<string, number>
  const errors = r.connect! + r.read! + r.write! + r.status! + r.timeout!
  return {
    rps: (r.requests! - r.status!) / (r.durationUs! / 1e6),
    p50Ms: r.p50Us! / 1000,
    p99Ms: r.p99Us! / 1000,
    requests: r.requests!,
    errors,
  }
}

/**
 * redis-benchmark XADD of the same payload to `key`: `pipeline` 1 is one command per round
 * trip, more is that many in flight per connection (the store's own limit).
 */
export async function runRedisBenchmark(opts: {
  port: number
  db: number
  key: string
  requests: number
  pipeline: number
}): Promise<HttpRun> {
  const proc = Bun.spawn(
    [
      'redis-benchmark',
      '-h',
      '127.0.0.1',
      '-p',
      String(opts.port),
      '--dbnum',
      String(opts.db),
      '-c',
      String(CONNECTIONS),
      '-n',
      String(opts.requests),
      '-P',
      String(opts.pipeline),
      '--csv',
      'XADD',
      opts.key,
      '*',
      'payload',
      PAYLOAD_JSON,
    ],
    { stdout: 'pipe', stderr: 'pipe' }
  )
  const out = await new Response(proc.stdout).text()
  await proc.exited
  // "test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms",
  // "p99_latency_ms","max_latency_ms"; the test name holds the payload's commas, so count
  // from the end.
  const row = out
    .trim()
    .split('\n')
    .find((l) => l.startsWith('"XADD'))
  if (!row) throw new Error(`redis-benchmark printed no result:\n${out}`)
  const [rps, , , p50, , p99] = row
    .split(',')
    .slice(-7)
    .map((c) => Number(c.replace(/"/g, '')))
  return {
    rps: rps!,
    p50Ms: p50!,
    p99Ms: p99!,
    requests: opts.requests,
    errors: 0,
  }
}
