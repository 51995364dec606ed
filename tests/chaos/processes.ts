import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { Redis } from 'ioredis'
import postgres from 'postgres'
import { freePort, type PrivateRedis, startPrivateRedis } from '../../src/local/redis-server'
import { JWT_SECRET } from '../helpers/harness'
import { createTestDatabase } from '../helpers/infra'
import type { Config as ConsumerConfig } from './consumer-process'
import type { DeliveryRecord } from './oracle'

/** The repository root: services are started from here, as `bun run src/index.ts <role>`. */
const ROOT = resolve(import.meta.dir, '../..')

/** One master key for every process of a test, so they can read each other's receipts. */
const MASTER_KEY = Buffer.alloc(32, 7).toString('base64')

/**
 * Everything a chaos test started, so that it is all gone at the end whatever happened: child
 * processes are thawed and killed, databases dropped, temporary directories removed. Tests
 * call {@link Reaper.cleanup} in `afterAll`; the exit hook covers a run that is interrupted.
 */
class Reaper {
  private readonly pids = new Set<number>()
  /** Processes this run stopped but does not own (PostgreSQL backends): thawed, never killed. */
  private readonly stopped = new Set<number>()
  private readonly dirs = new Set<string>()
  private readonly finalizers: Array<() => Promise<void>> = []

  constructor() {
    process.on('exit', () => this.killAll())
    for (const signal of ['SIGINT', 'SIGTERM'] as const) {
      process.once(signal, () => {
        this.killAll()
        process.exit(130)
      })
    }
  }

  track(pid: number): void {
    this.pids.add(pid)
  }

  untrack(pid: number): void {
    this.pids.delete(pid)
  }

  /** Notes that `pid` is stopped (SIGSTOP) until {@link Reaper.thawed}; cleanup thaws it. */
  frozen(pid: number): void {
    this.stopped.add(pid)
  }

  thawed(pid: number): void {
    this.stopped.delete(pid)
  }

  /** A new temporary directory, removed at cleanup. */
  tempDir(prefix: string): string {
    const dir = mkdtempSync(join(tmpdir(), `mq-chaos-${prefix}-`))
    this.dirs.add(dir)
    return dir
  }

  /** Runs `fn` at cleanup, after the processes are gone (e.g. dropping a database). */
  onCleanup(fn: () => Promise<void>): void {
    this.finalizers.push(fn)
  }

  private killAll(): void {
    for (const pid of this.stopped) {
      try {
        process.kill(pid, 'SIGCONT')
      } catch {}
    }
    this.stopped.clear()
    for (const pid of this.pids) {
      // A stopped process acts on SIGKILL too, but a thawed one releases its sockets sooner.
      for (const signal of ['SIGCONT', 'SIGKILL'] as const) {
        try {
          process.kill(pid, signal)
        } catch {}
      }
    }
    this.pids.clear()
    for (const dir of this.dirs) rmSync(dir, { recursive: true, force: true })
    this.dirs.clear()
  }

  /** Kills every tracked process, then runs the finalizers and removes the directories. */
  async cleanup(): Promise<void> {
    const pids = [...this.pids]
    this.killAll()
    // Wait until the processes are really gone, so a dropped database has no sessions left.
    for (const pid of pids) {
      for (let i = 0; i < 100 && alive(pid); i++) await Bun.sleep(20)
    }
    for (const fn of this.finalizers.splice(0).reverse()) await fn().catch(() => {})
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    // A zombie (killed, not yet reaped) counts as gone.
    return !readFileSync(`/proc/${pid}/stat`, 'utf8').includes(') Z ')
  } catch {
    return false
  }
}

/** The one reaper of this test process. */
export const reaper = new Reaper()

/** A private redis-server a test may kill, freeze, pause and restart on the same port. */
export class ChaosRedis {
  private server: PrivateRedis | undefined
  private frozen = false

  private constructor(
    readonly dir: string,
    readonly port: number,
    private readonly args: string[]
  ) {}

  /**
   * Starts redis-server on loopback with its own port and data directory, the append-only
   * file on and fsync as asked. Slow calls (≥ 50 ms) go to SLOWLOG, for tests that bound how
   * long one script may block Redis.
   */
  static async start(
    opts: { fsync?: 'always' | 'everysec'; args?: string[] } = {}
  ): Promise<ChaosRedis> {
    const args = [
      '--appendfsync',
      opts.fsync ?? 'always',
      '--slowlog-log-slower-than',
      '50000',
      ...(opts.args ?? []),
    ]
    const redis = new ChaosRedis(reaper.tempDir('redis'), freePort(), args)
    await redis.restart()
    return redis
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`
  }

  get pid(): number {
    if (!this.server) throw new Error('redis-server is not running')
    return this.server.pid
  }

  /** Starts the server again on the same port and directory (it replays its AOF). */
  async restart(): Promise<void> {
    this.server = await startPrivateRedis(this.dir, this.args, this.port)
    this.frozen = false
    reaper.track(this.server.pid)
  }

  /** `kill -9`: no shutdown, no final fsync. */
  async kill9(): Promise<void> {
    const pid = this.pid
    if (this.frozen) process.kill(pid, 'SIGCONT')
    process.kill(pid, 'SIGKILL')
    while (alive(pid)) await Bun.sleep(5)
    reaper.untrack(pid)
    this.server = undefined
  }

  /** SIGSTOP: the server keeps its sockets open and answers nothing. */
  freeze(): void {
    process.kill(this.pid, 'SIGSTOP')
    this.frozen = true
  }

  thaw(): void {
    process.kill(this.pid, 'SIGCONT')
    this.frozen = false
  }

  /** Runs `redis-cli` against this server; @returns its output. */
  async cli(...args: string[]): Promise<string> {
    const proc = Bun.spawn(['redis-cli', '-p', String(this.port), ...args], {
      stdout: 'pipe',
      stderr: 'pipe',
    })
    const [out, err] = await Promise.all([
      new Response(proc.stdout).text(),
      new Response(proc.stderr).text(),
    ])
    if ((await proc.exited) !== 0) throw new Error(`redis-cli ${args.join(' ')}: ${err}`)
    return out.trim()
  }

  /** A plain connection for inspecting the server; the caller disconnects it. */
  inspector(): Redis {
    const client = new Redis(this.url, { maxRetriesPerRequest: 1, lazyConnect: false })
    client.on('error', () => {})
    return client
  }
}

/** Where the PostgreSQL server binaries are: on PATH, or Debian's versioned directory. */
function postgresBin(): string | undefined {
  const onPath = Bun.which('postgres')
  if (onPath && Bun.which('initdb')) return dirname(onPath)
  const debian = '/usr/lib/postgresql'
  if (!existsSync(debian)) return undefined
  const versions = readdirSync(debian).sort((a, b) => Number(b) - Number(a))
  return versions.map((v) => join(debian, v, 'bin')).find((d) => existsSync(join(d, 'initdb')))
}

/**
 * A private PostgreSQL server (its own initdb, port and data directory) that a test may
 * freeze, kill and restart, like {@link ChaosRedis}. Run as the `postgres` user when the test
 * runs as root, which initdb refuses.
 */
export class ChaosPostgres {
  private readonly dataDir: string
  private proc: ReturnType<typeof Bun.spawn> | undefined
  private frozenPids: number[] = []

  private constructor(
    private readonly bin: string,
    readonly port: number
  ) {
    const dir = reaper.tempDir('pg')
    this.dataDir = join(dir, 'data')
    if (process.getuid?.() === 0) Bun.spawnSync(['chown', 'postgres', dir])
  }

  /** Starts one; undefined when this machine has no PostgreSQL server binaries. */
  static async start(): Promise<ChaosPostgres | undefined> {
    const bin = postgresBin()
    if (!bin) return undefined
    const pg = new ChaosPostgres(bin, freePort())
    const init = Bun.spawnSync(
      pg.asOwner([join(bin, 'initdb'), '-D', pg.dataDir, '-A', 'trust', '-U', 'postgres', '-N']),
      { stdout: 'ignore', stderr: 'pipe' }
    )
    if (init.exitCode !== 0) throw new Error(`initdb failed: ${init.stderr.toString()}`)
    reaper.onCleanup(() => pg.kill9())
    await pg.restart()
    return pg
  }

  get url(): string {
    return `postgres://postgres@127.0.0.1:${this.port}/postgres`
  }

  private asOwner(command: string[]): string[] {
    return process.getuid?.() === 0 ? ['runuser', '-u', 'postgres', '--', ...command] : command
  }

  /** The postmaster and the backends it forked. */
  private pids(): number[] {
    const file = join(this.dataDir, 'postmaster.pid')
    if (!existsSync(file)) return []
    const main = Number(readFileSync(file, 'utf8').split('\n')[0])
    const children = Bun.spawnSync(['pgrep', '-P', String(main)]).stdout.toString()
    return [main, ...children.split('\n').filter(Boolean).map(Number)]
  }

  /** Starts the server (after a kill: crash recovery) and waits until it answers. */
  async restart(): Promise<void> {
    const proc = Bun.spawn(
      this.asOwner([
        join(this.bin, 'postgres'),
        '-D',
        this.dataDir,
        '-p',
        String(this.port),
        '-k',
        this.dataDir,
        '-c',
        'listen_addresses=127.0.0.1',
        '-c',
        'fsync=off',
        '-c',
        'shared_buffers=32MB',
      ]),
      { stdin: 'ignore', stdout: 'ignore', stderr: 'ignore' }
    )
    this.proc = proc
    reaper.track(proc.pid)
    const deadline = Date.now() + 20_000
    for (;;) {
      const probe = postgres(this.url, { max: 1, connect_timeout: 1, onnotice: () => {} })
      const ok = await probe`select 1`.then(
        () => true,
        () => false
      )
      await probe.end({ timeout: 1 })
      if (ok) {
        // The postmaster too, so an interrupted run that only kills tracked processes ends it.
        reaper.track(this.pids()[0]!)
        return
      }
      if (Date.now() > deadline) throw new Error('private PostgreSQL did not start')
      await Bun.sleep(100)
    }
  }

  /** SIGSTOP to the postmaster and every backend: sockets stay open, nothing answers. */
  freeze(): void {
    this.frozenPids = this.pids()
    for (const pid of this.frozenPids) {
      reaper.frozen(pid)
      process.kill(pid, 'SIGSTOP')
    }
  }

  /** `kill -9` of the postmaster and every backend; resolves once the server is gone. */
  async kill9(): Promise<void> {
    for (const pid of [...this.pids(), ...this.frozenPids]) {
      try {
        process.kill(pid, 'SIGKILL')
      } catch {}
      reaper.thawed(pid)
    }
    this.frozenPids = []
    const proc = this.proc
    if (!proc) return
    // runuser stops itself when its child stops, and would wait stopped for ever.
    proc.kill('SIGKILL')
    await proc.exited
    reaper.untrack(proc.pid)
    this.proc = undefined
  }
}

/** The metadata database of one test: its own PostgreSQL database, or PGlite. */
export interface ChaosDatabase {
  /** Environment for the service: `DATABASE_URL`, or nothing (PGlite under `DATA_DIR`). */
  env: Record<string, string>
  /**
   * Stops (SIGSTOP) the PostgreSQL server processes serving this database's open sessions,
   * and only those: other databases on the server go on. @returns a function that thaws them.
   * Absent on PGlite.
   */
  freezeSessions?(): Promise<() => void>
  /**
   * Whether several service processes may share it. PGlite is a single-process database, so
   * tests that need more than one process skip themselves without PostgreSQL.
   */
  shared: boolean
}

/** A fresh database on TEST_PG_URL's server (dropped at cleanup), else PGlite. */
export async function chaosDatabase(): Promise<ChaosDatabase> {
  const database = await createTestDatabase()
  if (!database) return { env: {}, shared: false }
  reaper.onCleanup(() => database.drop())
  const freezeSessions = async () => {
    const admin = postgres(database.url, { max: 1, onnotice: () => {} })
    const rows = await admin`select pid from pg_stat_activity
      where datname = current_database() and pid <> pg_backend_pid()`
    await admin.end()
    const pids = rows.map((r) => Number(r.pid))
    for (const pid of pids) {
      reaper.frozen(pid)
      process.kill(pid, 'SIGSTOP')
    }
    return () => {
      for (const pid of pids) {
        process.kill(pid, 'SIGCONT')
        reaper.thawed(pid)
      }
    }
  }
  return { env: { DATABASE_URL: database.url }, shared: true, freezeSessions }
}

export type Role = 'api' | 'worker' | 'all'

/**
 * The service as a child process (`bun run src/index.ts <role>`), on loopback, with its log in
 * a file of its own. Its HTTP port stays the same across restarts, as a real instance's would.
 */
export class ServiceProcess {
  readonly port: number
  private proc: ReturnType<typeof Bun.spawn> | undefined
  private frozen = false
  private readonly logFile: string
  private starts = 0

  constructor(
    readonly role: Role,
    readonly name: string,
    private readonly env: Record<string, string>
  ) {
    this.port = freePort()
    this.logFile = join(reaper.tempDir(`log-${name}`), 'service.log')
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`
  }

  get pid(): number | undefined {
    return this.proc?.pid
  }

  get running(): boolean {
    return this.proc !== undefined && this.proc.exitCode === null && this.proc.signalCode === null
  }

  /**
   * Spawns the process and waits until it logged that it started (and, for the roles that
   * serve HTTP, until `/api/v1/mq/health/ping` answers 200).
   */
  async start(opts: { timeoutMs?: number } = {}): Promise<void> {
    this.starts++
    const proc = Bun.spawn(['bun', 'run', 'src/index.ts', this.role], {
      cwd: ROOT,
      env: {
        PATH: process.env.PATH ?? '',
        HOME: process.env.HOME ?? '/tmp',
        NODE_ENV: 'test',
        HOST: '127.0.0.1',
        PORT: String(this.port),
        // info is quiet (start-up and shutdown lines), and the start-up line says when it is ready.
        LOG_LEVEL: 'info',
        JWT_SECRET,
        MQ_MASTER_KEY: MASTER_KEY,
        ...this.env,
      },
      stdin: 'ignore',
      stdout: Bun.file(`${this.logFile}.${this.starts}`),
      stderr: Bun.file(`${this.logFile}.${this.starts}.err`),
    })
    this.proc = proc
    this.frozen = false
    reaper.track(proc.pid)
    const deadline = Date.now() + (opts.timeoutMs ?? 20_000)
    while (!this.logged('message queue service started')) {
      if (!this.running) throw new Error(`${this.name} exited during start-up:\n${this.logTail()}`)
      if (Date.now() > deadline) throw new Error(`${this.name} did not start:\n${this.logTail()}`)
      await Bun.sleep(25)
    }
    if (this.role === 'worker') return
    while (Date.now() < deadline) {
      const res = await fetch(`${this.url}/api/v1/mq/health/ping`).catch(() => undefined)
      if (res?.status === 200) return
      await Bun.sleep(25)
    }
    throw new Error(`${this.name} did not answer /health/ping:\n${this.logTail()}`)
  }

  private logged(text: string): boolean {
    const file = `${this.logFile}.${this.starts}`
    return existsSync(file) && readFileSync(file, 'utf8').includes(text)
  }

  /** The last lines of the current run's stdout and stderr, for failure messages. */
  logTail(lines = 30): string {
    const read = (f: string) => (existsSync(f) ? readFileSync(f, 'utf8') : '')
    const out = read(`${this.logFile}.${this.starts}`) + read(`${this.logFile}.${this.starts}.err`)
    return out.split('\n').slice(-lines).join('\n')
  }

  /** Everything every run printed: its JSON log and its stderr. */
  logs(): string {
    let out = ''
    for (let i = 1; i <= this.starts; i++) {
      for (const f of [`${this.logFile}.${i}`, `${this.logFile}.${i}.err`]) {
        if (existsSync(f)) out += readFileSync(f, 'utf8')
      }
    }
    return out
  }

  /** `kill -9`; resolves once the process is gone. */
  async kill9(): Promise<void> {
    const proc = this.proc
    if (!proc || !this.running) return
    proc.kill('SIGKILL')
    await proc.exited
    reaper.untrack(proc.pid)
  }

  /** SIGTERM, the graceful shutdown; @returns the exit code. */
  async terminate(): Promise<number | null> {
    const proc = this.proc
    if (!proc) return null
    if (this.frozen) this.thaw()
    if (this.running) proc.kill('SIGTERM')
    const code = await proc.exited
    reaper.untrack(proc.pid)
    return code
  }

  freeze(): void {
    this.proc?.kill('SIGSTOP')
    this.frozen = true
  }

  thaw(): void {
    this.proc?.kill('SIGCONT')
    this.frozen = false
  }
}

/** Environment that points a service at `redis` (one server, or a cluster's nodes) and `database`. */
export function serviceEnv(
  redis: { url: string } | { nodes: string[] },
  database: ChaosDatabase,
  extra: Record<string, string> = {}
): Record<string, string> {
  return {
    ...('nodes' in redis
      ? { REDIS_CLUSTER_NODES: redis.nodes.join(',') }
      : { REDIS_URL: redis.url }),
    DATA_DIR: reaper.tempDir('data'),
    ...database.env,
    ...extra,
  }
}

/**
 * A consumer process (tests/chaos/consumer-process.ts) that a test kills. Each start is a new
 * incarnation; what an incarnation received and did not settle is what it abandoned.
 */
export class ConsumerProcess {
  private proc: ReturnType<typeof Bun.spawn> | undefined
  private reading: Promise<void> | undefined
  private received = new Set<string>()
  private settled = new Set<string>()
  private incarnation = 0

  constructor(
    private readonly config: Omit<ConsumerConfig, 'name'> & { name: string },
    private readonly onDelivery: (record: DeliveryRecord) => void
  ) {}

  start(): void {
    this.incarnation++
    this.received = new Set()
    this.settled = new Set()
    const name = `${this.config.name}#${this.incarnation}`
    const proc = Bun.spawn(['bun', 'run', join(import.meta.dir, 'consumer-process.ts')], {
      cwd: ROOT,
      env: { ...process.env, CHAOS_CONSUMER: JSON.stringify({ ...this.config, name }) },
      stdin: 'ignore',
      stdout: 'pipe',
      stderr: 'inherit',
    })
    this.proc = proc
    reaper.track(proc.pid)
    this.reading = this.read(proc.stdout as ReadableStream<Uint8Array>)
  }

  private async read(stream: ReadableStream<Uint8Array>): Promise<void> {
    const decoder = new TextDecoder()
    let buffered = ''
    for await (const chunk of stream) {
      buffered += decoder.decode(chunk, { stream: true })
      let nl = buffered.indexOf('\n')
      while (nl >= 0) {
        const text = buffered.slice(0, nl)
        buffered = buffered.slice(nl + 1)
        nl = buffered.indexOf('\n')
        if (text.startsWith('D ')) {
          const record = JSON.parse(text.slice(2)) as DeliveryRecord
          this.received.add(record.messageId)
          this.onDelivery(record)
        } else if (text.startsWith('S ')) {
          for (const id of (JSON.parse(text.slice(2)) as { ids: string[] }).ids) {
            this.settled.add(id)
          }
        }
      }
    }
  }

  /** `kill -9`. @returns the ids this incarnation held: received and not settled. */
  async kill9(): Promise<string[]> {
    const proc = this.proc
    if (!proc) return []
    proc.kill('SIGKILL')
    await proc.exited
    await this.reading
    reaper.untrack(proc.pid)
    return [...this.received].filter((id) => !this.settled.has(id))
  }

  /** SIGTERM: it settles what it holds, then exits. */
  async terminate(): Promise<void> {
    const proc = this.proc
    if (!proc) return
    proc.kill('SIGTERM')
    await proc.exited
    await this.reading
    reaper.untrack(proc.pid)
  }
}
