import { heapStats } from 'bun:jsc'
import { mkdirSync, readdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { Logger } from './logger'

/**
 * TCP sockets by inode, named by whom they talk to: `tcp:listen:<port>`, `tcp:in:<port>` for a
 * connection accepted on a listening port, else `tcp:out:<remote port>`.
 */
function tcpPeers(): Map<string, string> {
  const rows: string[][] = []
  for (const table of ['/proc/self/net/tcp', '/proc/self/net/tcp6']) {
    try {
      for (const line of readFileSync(table, 'utf8').split('\n').slice(1)) {
        const cols = line.trim().split(/\s+/)
        if (cols.length > 9) rows.push(cols)
      }
    } catch {}
  }
  const port = (address: string) => Number.parseInt(address.split(':')[1] ?? '0', 16)
  const listening = new Set(rows.filter((r) => r[3] === '0A').map((r) => port(r[1]!)))
  const peers = new Map<string, string>()
  for (const r of rows) {
    const local = port(r[1]!)
    const name =
      r[3] === '0A'
        ? `tcp:listen:${local}`
        : listening.has(local)
          ? `tcp:in:${local}`
          : `tcp:out:${port(r[2]!)}`
    peers.set(r[9]!, name)
  }
  return peers
}

/** Descriptor targets grouped by kind (a TCP peer, `pipe`, `anon_inode:[eventpoll]`, a path). */
function descriptorTargets(): Record<string, number> {
  const counts: Record<string, number> = {}
  const peers = tcpPeers()
  let names: string[] = []
  try {
    names = readdirSync('/proc/self/fd')
  } catch {
    return counts
  }
  for (const fd of names) {
    let target: string
    try {
      const link = readlinkSync(`/proc/self/fd/${fd}`)
      const inode = /^socket:\[(\d+)\]$/.exec(link)?.[1]
      target = (inode && peers.get(inode)) ?? link.replace(/:\[\d+\]$/, '')
    } catch {
      continue
    }
    counts[target] = (counts[target] ?? 0) + 1
  }
  return counts
}

/**
 * The heap's object counts by type and what each descriptor points at. Collects garbage
 * first, so two dumps compare what is still reachable.
 */
export function heapDump() {
  Bun.gc(true)
  const stats = heapStats()
  return {
    at: new Date().toISOString(),
    pid: process.pid,
    rssBytes: process.memoryUsage().rss,
    heapSize: stats.heapSize,
    objectCount: stats.objectCount,
    objectTypeCounts: stats.objectTypeCounts,
    protectedObjectTypeCounts: stats.protectedObjectTypeCounts,
    descriptors: descriptorTargets(),
  }
}

/**
 * Writes a {@link heapDump} (and with `full`, a heap snapshot for the browser's inspector) into
 * `dir` on each SIGUSR2, so that two dumps of a long run show what accumulates. Only installed
 * when MQ_HEAP_SNAPSHOT_DIR is set.
 */
export function installHeapDumps(dir: string, full: boolean, logger: Logger): () => void {
  mkdirSync(dir, { recursive: true })
  let n = 0
  const onSignal = () => {
    const name = `heap-${process.pid}-${++n}`
    try {
      writeFileSync(join(dir, `${name}.json`), JSON.stringify(heapDump()))
      if (full)
        writeFileSync(join(dir, `${name}.heapsnapshot`), JSON.stringify(Bun.generateHeapSnapshot()))
      logger.info({ file: `${name}.json` }, 'heap dump written')
    } catch (err) {
      logger.warn({ code: (err as NodeJS.ErrnoException).code }, 'heap dump failed')
    }
  }
  process.on('SIGUSR2', onSignal)
  return () => process.off('SIGUSR2', onSignal)
}
