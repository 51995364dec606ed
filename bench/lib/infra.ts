import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Subprocess } from 'bun'
import postgres from 'postgres'
import { mintToken } from '../../src/cli/token'
import { freePort, type PrivateRedis, startPrivateRedis } from '../../src/local/redis-server'
import { onCleanup, spawnTracked, stopChild } from './cleanup'
import { memoryLimited } from './memory-limit'

export const ROOT = join(import.meta.dir, '..', '..')
export const BENCH_DIR = join(ROOT, 'bench')
export const API = '/api/v1/mq'

/** Debian packages that bring each tool the bench drives. */
const TOOL_PACKAGES: Record<string, string> = {
  wrk: 'wrk',
  'redis-benchmark': 'redis-tools',
  'redis-server': 'redis-server',
  'redis-cli': 'redis-tools',
}

/**
 * Makes sure each tool is on PATH, installing its Debian package when the bench runs as root
 * on a machine with apt-get (CI and the development machines); elsewhere it says what to install.
 */
export async function ensureTools(tools: string[]): Promise<void> {
  const missing = tools.filter((t) => !Bun.which(t))
  if (missing.length === 0) return
  const packages = [...new Set(missing.map((t) => TOOL_PACKAGES[t] ?? t))]
  if (process.getuid?.() !== 0 || !Bun.which('apt-get')) {
    throw new Error(`missing ${missing.join(', ')}: apt-get install -y ${packages.join(' ')}`)
  }
  console.log(`installing ${packages.join(', ')} (apt-get)…`)
  const install = () =>
    Bun.spawnSync(['apt-get', 'install', '-y', '-qq', ...packages], {
      env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
      stdout: 'ignore',
      stderr: 'pipe',
    })
  // A fresh machine has no package lists yet; update only when the first try needs it.
  if (install().exitCode !== 0) {
    Bun.spawnSync(['apt-get', 'update', '-qq'], { stdout: 'ignore', stderr: 'ignore' })
    const again = install()
    if (again.exitCode !== 0) throw new Error(`apt-get install failed: ${again.stderr.toString()}`)
  }
  const still = tools.filter((t) => !Bun.which(t))
  if (still.length > 0) throw new Error(`still missing after install: ${still.join(', ')}`)
}

/** A temp dir removed at cleanup. */
export function tempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix))
  onCleanup(`remove ${dir}`, () => rmSync(dir, { recursive: true, force: true }))
  return dir
}

/** The bench's own redis-server, with the service's settings (append-only file, noeviction). */
export async function startRedis(dir: string): Promise<PrivateRedis> {
  const redis = await startPrivateRedis(join(dir, 'redis'))
  onCleanup('stop redis-server', () => redis.stop())
  return redis
}

const PG_ADMIN_URL = process.env.BENCH_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres'

/**
 * A fresh database on the local PostgreSQL (dropped at cleanup), like the tests make; undefined
 * when none answers, and the service then runs on PGlite in its data dir.
 * @returns its URL and the server's version.
 */
export async function createDatabase(): Promise<{ url: string; version: string } | undefined> {
  const admin = postgres(PG_ADMIN_URL, { max: 1, connect_timeout: 2, onnotice: () => {} })
  const name = `mq_bench_${process.pid}_${Math.random().toString(36).slice(2, 8)}`
  let version: string
  try {
    const [row] = await admin.unsafe('show server_version')
    version = String(row?.server_version ?? '?').split(' ')[0]!
    await admin.unsafe(`create database ${name}`)
  } catch {
    return undefined
  } finally {
    await admin.end({ timeout: 1 })
  }
  onCleanup(`drop database ${name}`, async () => {
    const again = postgres(PG_ADMIN_URL, { max: 1, onnotice: () => {} })
    await again.unsafe(`drop database if exists ${name} with (force)`)
    await again.end()
  })
  const url = new URL(PG_ADMIN_URL)
  url.pathname = `/${name}`
  return { url: url.toString(), version }
}

/**
 * `bun run build` (dist/mq) with drizzle/ copied beside it, as the README's binary section.
 * With `ref`, the service is built from that commit, exported into `workDir` (sharing this
 * checkout's node_modules), so uncommitted edits in the working tree are not measured.
 * @returns the binary's path and what was built (a commit, marked when the tree was dirty).
 */
export function buildService(workDir: string, ref?: string): { binary: string; source: string } {
  const git = (...args: string[]) => {
    const r = Bun.spawnSync(['git', ...args], { cwd: ROOT, stdout: 'pipe', stderr: 'pipe' })
    if (r.exitCode !== 0) throw new Error(`git ${args.join(' ')}: ${r.stderr.toString()}`)
    return r.stdout
  }
  let dir = ROOT
  let source: string
  if (ref) {
    const commit = git('rev-parse', '--short', ref).toString().trim()
    dir = join(workDir, 'source')
    mkdirSync(dir)
    const tar = git('archive', '--format=tar', commit)
    const untar = Bun.spawnSync(['tar', '-x', '-C', dir], { stdin: tar, stderr: 'pipe' })
    if (untar.exitCode !== 0) throw new Error(`tar: ${untar.stderr.toString()}`)
    symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules'))
    source = `commit ${commit}`
  } else {
    const commit = git('rev-parse', '--short', 'HEAD').toString().trim()
    const dirty = git('status', '--porcelain', '--', 'src', 'drizzle').toString().trim() !== ''
    source = `working tree at ${commit}${dirty ? ' with uncommitted changes in src/' : ''}`
  }
  const build = Bun.spawnSync(['bun', 'run', 'build'], { cwd: dir, stdout: 'pipe', stderr: 'pipe' })
  if (build.exitCode !== 0) throw new Error(`bun run build failed:\n${build.stderr.toString()}`)
  cpSync(join(dir, 'drizzle'), join(dir, 'dist', 'drizzle'), { recursive: true })
  return { binary: join(dir, 'dist', 'mq'), source }
}

/** A started HTTP server of the bench (the service or a peer). */
export interface Server {
  name: string
  url: string
  proc: Subprocess
  /** Milliseconds from spawn to the first healthy answer. */
  startMs: number
  /** Whether it ran under the bench's memory limit (`memory-limit.ts`). */
  memoryLimited: boolean
  stop(): Promise<void>
}

/**
 * Polls `url` until it answers 200, the child exits, or `timeoutMs` passes.
 * @returns milliseconds since `startedAt`.
 */
export async function waitHealthy(
  url: string,
  proc: Subprocess,
  startedAt: number,
  timeoutMs = 30_000
): Promise<number> {
  while (performance.now() - startedAt < timeoutMs) {
    if (proc.exitCode !== null) throw new Error(`${url}: the process exited with ${proc.exitCode}`)
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(1000) })
      if (res.status === 200) return performance.now() - startedAt
    } catch {
      // Not listening yet.
    }
    await Bun.sleep(5)
  }
  throw new Error(`${url} was not healthy within ${timeoutMs} ms`)
}

/**
 * Starts `cmd` with `env` on a free loopback port, under the bench's memory limit where one can
 * be set, and waits for `healthPath` to answer 200.
 */
export async function startServer(
  name: string,
  cmd: string[],
  env: Record<string, string>,
  healthPath: string,
  logFile: string
): Promise<Server> {
  const port = freePort()
  const limited = memoryLimited(name, cmd)
  const startedAt = performance.now()
  const proc = spawnTracked(limited.cmd, {
    cwd: ROOT,
    env: {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      HOME: process.env.HOME ?? '/',
      ...env,
      PORT: String(port),
    },
    stdout: Bun.file(logFile),
    stderr: Bun.file(`${logFile}.err`),
  })
  const url = `http://127.0.0.1:${port}`
  let startMs: number
  try {
    startMs = await waitHealthy(`${url}${healthPath}`, proc, startedAt)
  } catch (err) {
    await stopChild(proc)
    const tail = readFileSync(`${logFile}.err`, 'utf8').slice(-2000)
    throw new Error(`${name} did not start: ${(err as Error).message}\n${tail}`)
  }
  return {
    name,
    url,
    proc,
    startMs,
    memoryLimited: limited.limited,
    stop: () => stopChild(proc),
  }
}

/** What the service needs to run: where its stores are and which secret signs tokens. */
export interface ServiceEnv {
  binary: string
  redisUrl: string
  databaseUrl?: string
  dataDir: string
  jwtSecret: string
  /** LEDGER_MODE, when not the default (`--ledger`: what the ledger costs). */
  ledgerMode?: string
}

/**
 * The service's environment: default configuration except what the bench must pin (stores,
 * secret, loopback bind, and WEBHOOK_ALLOWED_HOSTS so the loopback webhook receiver is allowed).
 */
export function serviceEnvironment(s: ServiceEnv): Record<string, string> {
  return {
    REDIS_URL: s.redisUrl,
    ...(s.databaseUrl ? { DATABASE_URL: s.databaseUrl } : {}),
    DATA_DIR: s.dataDir,
    JWT_SECRET: s.jwtSecret,
    HOST: '127.0.0.1',
    WEBHOOK_ALLOWED_HOSTS: '127.0.0.1',
    ...(s.ledgerMode ? { LEDGER_MODE: s.ledgerMode } : {}),
  }
}

/** Starts the compiled service in role `all`. */
export function startService(s: ServiceEnv, logFile: string): Promise<Server> {
  return startServer('service', [s.binary, 'all'], serviceEnvironment(s), '/health', logFile)
}

/** A token for `tenant` with every scope, valid for the whole run. */
export function tokenFor(tenant: string, secret: string): Promise<string> {
  return mintToken(
    ['--tenant', tenant, '--scope', 'mq:admin mq:publish mq:consume mq:read', '--ttl', '7200'],
    secret
  )
}

/** Calls the service's API; @throws with the answer's body on a non-2xx status. */
export async function api<T = unknown>(
  baseUrl: string,
  token: string,
  method: string,
  path: string,
  body?: unknown
): Promise<T> {
  const send = () =>
    fetch(`${baseUrl}${API}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    })
  // A pooled keep-alive connection the server closed while the bench waited fails at once
  // with ECONNRESET, before the request reached the server: send it again on a new one.
  const res = await send().catch((err: { code?: string }) => {
    if (err.code !== 'ECONNRESET') throw err
    return send()
  })
  const text = await res.text()
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${text.slice(0, 500)}`)
  return (text ? JSON.parse(text) : undefined) as T
}

/** CPU time (user + system) `pid` has used, in seconds, or NaN once it is gone. */
export function cpuSeconds(pid: number): number {
  try {
    // Fields after the parenthesised command name; utime and stime are the 12th and 13th.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS
  } catch {
    return Number.NaN
  }
}

/**
 * Waits until `pid` uses under 15 % of a core over 300 ms (background work such as the
 * ledger catching up is done), or `maxMs` passes.
 * @returns milliseconds waited.
 */
export async function waitProcessQuiet(pid: number, maxMs: number): Promise<number> {
  const started = performance.now()
  while (performance.now() - started < maxMs) {
    const before = cpuSeconds(pid)
    await Bun.sleep(300)
    if (!(cpuSeconds(pid) - before >= 0.045)) break
  }
  return performance.now() - started
}

/** Share of the machine's CPU (all cores) busy over `ms`, from /proc/stat, in %. */
export async function machineBusy(ms: number): Promise<number> {
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

/** USER_HZ: 100 on every Linux the bench runs on (getconf CLK_TCK). */
const CLOCK_TICKS = 100

/** Resident memory of `pid` in MB (VmRSS), or NaN once the process is gone. */
export function rssMb(pid: number): number {
  try {
    const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
    return match ? Number(match[1]) / 1024 : Number.NaN
  } catch {
    return Number.NaN
  }
}
