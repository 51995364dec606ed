import { existsSync, mkdirSync, readFileSync, realpathSync, rmSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { Redis } from 'ioredis'

/** A redis-server child process owned by this process. */
export interface PrivateRedis {
  url: string
  port: number
  pid: number
  stop(): Promise<void>
}

export class RedisServerMissingError extends Error {
  constructor() {
    super(
      'redis-server was not found on PATH: install it (Debian/Ubuntu: apt-get install -y redis-server; macOS: brew install redis) or set REDIS_URL to a running Redis.'
    )
    this.name = 'RedisServerMissingError'
  }
}

/** A free loopback TCP port, found by letting the OS pick one. */
export function freePort(): number {
  const listener = Bun.listen({ hostname: '127.0.0.1', port: 0, socket: { data() {} } })
  const port = listener.port
  listener.stop(true)
  return port
}

/**
 * Whether `pid` is a redis-server serving `dataDir`. redis-server changes into its `--dir`,
 * so its working directory tells it apart from another one that took over a stale pid.
 */
function isRedisServing(pid: number, dataDir: string): boolean {
  try {
    return (
      readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('redis-server') &&
      realpathSync(`/proc/${pid}/cwd`) === realpathSync(dataDir)
    )
  } catch {
    return false
  }
}

/**
 * An earlier run killed with SIGKILL leaves its redis-server behind, holding the append-only
 * file; stop it before starting ours on the same directory.
 */
async function stopLeftover(pidFile: string, dataDir: string): Promise<void> {
  if (!existsSync(pidFile)) return
  const pid = Number(readFileSync(pidFile, 'utf8').trim())
  if (Number.isInteger(pid) && pid > 0 && isRedisServing(pid, dataDir)) {
    process.kill(pid, 'SIGTERM')
    for (let i = 0; i < 100 && isRedisServing(pid, dataDir); i++) await Bun.sleep(50)
  }
  rmSync(pidFile, { force: true })
}

async function waitUntilReady(
  url: string,
  exited: () => boolean,
  timeoutMs: number
): Promise<void> {
  const deadline = Date.now() + timeoutMs
  const probe = new Redis(url, {
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  })
  probe.on('error', () => {})
  try {
    while (Date.now() < deadline) {
      if (exited()) throw new Error('redis-server exited during start-up')
      try {
        if (probe.status !== 'ready') await probe.connect()
        // PING fails with LOADING while the append-only file is replayed.
        if ((await probe.ping()) === 'PONG') return
      } catch {
        probe.disconnect()
        await Bun.sleep(50)
      }
    }
    throw new Error(`redis-server did not answer within ${timeoutMs} ms`)
  } finally {
    probe.disconnect()
  }
}

/**
 * Starts `redis-server` on a free loopback port with its data in `dir`: append-only file on
 * (so messages survive a restart), `noeviction` (a queue must never lose data to memory
 * pressure), no RDB snapshots.
 * @param extraArgs further `redis-server` arguments, e.g. `['--appendfsync', 'always']`.
 * @param port the port to listen on; a restart after a crash passes the old one, so clients
 * configured with its URL find it again.
 * @throws RedisServerMissingError when the binary is not installed.
 */
export async function startPrivateRedis(
  dir: string,
  extraArgs: string[] = [],
  port = freePort()
): Promise<PrivateRedis> {
  const bin = Bun.which('redis-server')
  if (!bin) throw new RedisServerMissingError()
  const dataDir = resolve(dir)
  mkdirSync(dataDir, { recursive: true })
  const pidFile = join(dataDir, 'redis.pid')
  await stopLeftover(pidFile, dataDir)
  const proc = Bun.spawn(
    [
      bin,
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--dir',
      dataDir,
      '--pidfile',
      pidFile,
      '--logfile',
      join(dataDir, 'redis.log'),
      '--appendonly',
      'yes',
      '--maxmemory-policy',
      'noeviction',
      '--save',
      '',
      ...extraArgs,
    ],
    { stdout: 'ignore', stderr: 'inherit' }
  )
  let exited = false
  void proc.exited.then(() => {
    exited = true
  })
  const url = `redis://127.0.0.1:${port}`
  try {
    await waitUntilReady(url, () => exited, 15_000)
  } catch (err) {
    proc.kill('SIGKILL')
    throw err
  }
  return {
    url,
    port,
    pid: proc.pid,
    stop: async () => {
      if (exited) return
      // SIGTERM makes redis-server flush the append-only file before it exits.
      proc.kill('SIGTERM')
      await proc.exited
    },
  }
}
