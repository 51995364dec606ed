import type { Subprocess } from 'bun'

/**
 * Everything the bench starts or creates registers how to undo it here, so a failure, a
 * Ctrl-C or a SIGTERM still stops every child, drops the database and removes temp dirs.
 */
const actions: Array<{ name: string; run: () => Promise<void> | void }> = []
const children = new Set<Subprocess>()

/** Registers an undo step; steps run in reverse order of registration. */
export function onCleanup(name: string, run: () => Promise<void> | void): void {
  actions.push({ name, run })
}

/** Runs every registered step once, newest first; a failing step does not stop the others. */
export async function cleanup(): Promise<void> {
  for (let step = actions.pop(); step; step = actions.pop()) {
    try {
      await step.run()
    } catch (err) {
      console.error(`cleanup '${step.name}' failed: ${(err as Error).message}`)
    }
  }
}

/**
 * Stops a child: SIGTERM (the service and redis-server flush and close on it), then SIGKILL
 * if it is still there after `graceMs`.
 */
export async function stopChild(proc: Subprocess, graceMs = 5000): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return
  proc.kill('SIGTERM')
  const timer = setTimeout(() => proc.kill('SIGKILL'), graceMs)
  await proc.exited
  clearTimeout(timer)
  children.delete(proc)
}

/** Spawns a child that is stopped at cleanup at the latest (and killed if the bench dies). */
export function spawnTracked(
  cmd: string[],
  opts: NonNullable<Parameters<typeof Bun.spawn>[1]> = {}
): Subprocess {
  const proc = Bun.spawn(cmd, opts)
  children.add(proc)
  void proc.exited.then(() => children.delete(proc))
  onCleanup(`stop ${cmd[0]} (pid ${proc.pid})`, () => stopChild(proc))
  return proc
}

let installed = false

/**
 * Signals run the cleanup and exit; `exit` (reached even after an uncaught error) kills any
 * child still alive, since nothing asynchronous can run there.
 */
export function installSignalHandlers(): void {
  if (installed) return
  installed = true
  let interrupted = false
  const onSignal = (signal: NodeJS.Signals) => {
    if (interrupted) return
    interrupted = true
    console.error(`\n${signal}: stopping everything the bench started…`)
    void cleanup().finally(() => process.exit(130))
  }
  process.on('SIGINT', onSignal)
  process.on('SIGTERM', onSignal)
  process.on('SIGHUP', onSignal)
  process.on('exit', () => {
    for (const child of children) child.kill('SIGKILL')
  })
}
