import { existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { onCleanup } from './cleanup'

/**
 * The memory the seed gives the service ("1,000 QPS with p95 < 50 ms in 512 MB"). Every server
 * the bench starts, the peers too, runs under it as a container's memory limit would run it.
 * That matters for Bun: JSC sizes its heap to the memory it sees, which without a limit is the
 * whole machine's (24 GiB here), and lets the heap grow that much further between collections.
 */
export const MEMORY_LIMIT_MB = 512

const V2_ROOT = '/sys/fs/cgroup'
const V1_ROOT = '/sys/fs/cgroup/memory'

/** Where a memory cgroup can be made: cgroup v2 with its memory controller, or v1's. */
function hierarchy(): { root: string; limitFile: string } | null {
  const controllers = join(V2_ROOT, 'cgroup.controllers')
  if (
    existsSync(controllers) &&
    readFileSync(controllers, 'utf8').split(/\s+/).includes('memory')
  ) {
    return { root: V2_ROOT, limitFile: 'memory.max' }
  }
  if (existsSync(join(V1_ROOT, 'memory.limit_in_bytes'))) {
    return { root: V1_ROOT, limitFile: 'memory.limit_in_bytes' }
  }
  return null
}

const made = new Map<string, string | null>()
let wanted = true

/**
 * Whether servers get the limit. The service on PGlite holds a whole PostgreSQL in its own
 * process (about 300 MB idle), which the seed's budget is not for: then no server gets one, so
 * all are still measured alike.
 */
export function limitMemory(on: boolean): void {
  wanted = on
}

/**
 * A memory cgroup of MEMORY_LIMIT_MB for the servers called `name` (one at a time: restarts
 * reuse it), removed at cleanup once they are stopped.
 * @returns the path of its `cgroup.procs`, or null where none can be made (not root, no memory
 * controller): the server then runs without a limit.
 */
function memoryCgroup(name: string): string | null {
  if (made.has(name)) return made.get(name) ?? null
  let procs: string | null = null
  const h = hierarchy()
  if (h) {
    const dir = join(h.root, `mq-bench-${process.pid}-${name}`)
    try {
      if (h.root === V2_ROOT) writeFileSync(join(V2_ROOT, 'cgroup.subtree_control'), '+memory')
      mkdirSync(dir)
      // Registered before the servers are spawned, so it runs after they are stopped.
      onCleanup(`remove cgroup ${dir}`, () => rmdirSync(dir))
      writeFileSync(join(dir, h.limitFile), String(MEMORY_LIMIT_MB * 1024 * 1024))
      procs = join(dir, 'cgroup.procs')
    } catch {
      procs = null
    }
  }
  made.set(name, procs)
  return procs
}

/**
 * `cmd` started inside the memory cgroup of `name`: a shell moves itself in and then becomes
 * `cmd` (exec keeps the pid, which the CPU and RSS sampling follow), so the limit holds from the
 * process's first instruction, before JSC reads it.
 */
export function memoryLimited(name: string, cmd: string[]): { cmd: string[]; limited: boolean } {
  const procs = wanted ? memoryCgroup(name) : null
  if (!procs) return { cmd, limited: false }
  return { cmd: ['sh', '-c', 'echo $$ > "$0" && exec "$@"', procs, ...cmd], limited: true }
}

/** What the report says of the limit, given whether the servers ran under it. */
export function memoryLimitNote(limited: boolean): string {
  if (limited) {
    return `every server (the service and its peers) ran in a memory cgroup of ${MEMORY_LIMIT_MB} MB, the seed's budget, as a container limit runs it; JSC sizes its heap to that limit`
  }
  const why = wanted
    ? 'no memory cgroup could be made (it needs root and a cgroup memory controller)'
    : 'the service ran on PGlite, a whole PostgreSQL in its process'
  return `${why}: the servers ran without a memory limit, and JSC sized their heaps to the whole machine's memory`
}
