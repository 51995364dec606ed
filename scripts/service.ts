/**
 * Starts the service the way a user does, for the repository checks: a command (e.g. the
 * README's `bun install && bun start`) run by bash in its own process group, on a free port,
 * with a fresh DATA_DIR, so it shares nothing with a service already running here.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

export interface RunningService {
  port: number
  dataDir: string
  /** Stops the whole process group (bun, the service, its redis-server) and removes DATA_DIR. */
  stop(): Promise<void>
}

/** A loopback port nothing listens on right now. */
export function freePort(): number {
  const server = Bun.listen({ hostname: '127.0.0.1', port: 0, socket: { data() {} } })
  const { port } = server
  server.stop(true)
  return port
}

/** Signals a process group started with `detached: true`; it may already be gone. */
export function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal)
  } catch {}
}

export async function startService(
  command: string,
  opts: { root: string; timeoutMs?: number }
): Promise<RunningService> {
  const port = freePort()
  const dataDir = mkdtempSync(join(tmpdir(), 'mq-check-'))
  const log = join(dataDir, 'service.log')
  const child = Bun.spawn(['bash', '-c', command], {
    cwd: opts.root,
    env: { ...process.env, PORT: String(port), DATA_DIR: dataDir, LOG_LEVEL: 'warn' },
    stdin: 'ignore',
    stdout: Bun.file(log),
    stderr: 'inherit',
    detached: true,
  })
  const stop = async () => {
    signalGroup(child.pid, 'SIGTERM')
    const killed = setTimeout(() => signalGroup(child.pid, 'SIGKILL'), 15_000)
    await child.exited
    clearTimeout(killed)
    // The service's children (redis-server) leave with it; this catches any that did not.
    signalGroup(child.pid, 'SIGKILL')
    rmSync(dataDir, { recursive: true, force: true })
  }
  const deadline = Date.now() + (opts.timeoutMs ?? 120_000)
  while (Date.now() < deadline) {
    if (child.exitCode !== null) break
    const res = await fetch(`http://127.0.0.1:${port}/health`).catch(() => null)
    if (res?.status === 200) return { port, dataDir, stop }
    await Bun.sleep(250)
  }
  const output = await Bun.file(log)
    .text()
    .catch(() => '')
  await stop()
  throw new Error(`the service did not become healthy (${command}):\n${output.slice(-4000)}`)
}
