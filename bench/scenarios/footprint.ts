/**
 * What one message costs the stores, for docs/CAPACITY.md: Redis memory per retained message
 * (INFO memory's used_memory, and MEMORY USAGE of the queue's own keys), and PostgreSQL bytes
 * per message the ledger records, once published and again once pulled and acked. Bytes per
 * message do not depend on how busy the machine is, unlike the throughput figures.
 */
import postgres from 'postgres'
import {
  type Context,
  createPullSubscriptions,
  createQueue,
  deleteQueue,
  fill,
} from '../lib/context'
import { api } from '../lib/infra'
import { PAYLOAD } from '../lib/load'
import { type Figure, figure } from '../lib/report'
import { drainService } from './consume'

const QUEUE = 'footprint'

/** Bytes of every table of the service's database, with its indexes and TOAST, by table. */
async function tableBytes(sql: postgres.Sql): Promise<Map<string, number>> {
  const rows = await sql<{ name: string; bytes: string }[]>`
    select c.relname as name, pg_total_relation_size(c.oid) as bytes
    from pg_class c join pg_namespace n on n.oid = c.relnamespace
    where c.relkind = 'r' and n.nspname = 'public'`
  return new Map(rows.map((r) => [r.name, Number(r.bytes)]))
}

const total = (m: Map<string, number>) => [...m.values()].reduce((a, b) => a + b, 0)

/** Waits until the tables stop growing (the ledger has caught up), at most `maxMs`. */
async function ledgerSettled(sql: postgres.Sql, maxMs: number): Promise<Map<string, number>> {
  const deadline = performance.now() + maxMs
  let last = await tableBytes(sql)
  while (performance.now() < deadline) {
    await Bun.sleep(1500)
    const now = await tableBytes(sql)
    if (total(now) === total(last)) return now
    last = now
  }
  return last
}

/** Which tables grew, and by how many bytes a message. */
function growth(before: Map<string, number>, after: Map<string, number>, n: number): string {
  return [...after]
    .map(([name, bytes]) => [name, (bytes - (before.get(name) ?? 0)) / n] as const)
    .filter(([, perMessage]) => perMessage >= 1)
    .map(([name, perMessage]) => `${name} ${Math.round(perMessage)}`)
    .join(', ')
}

/**
 * used_memory of the bench's redis-server, and MEMORY USAGE of the queue's keys. Taken once
 * Redis has freed what earlier scenarios deleted: a deleted queue's keys are UNLINKed and freed
 * by a background thread, and a backlog of millions of entries freed during a fill shrinks
 * used_memory under it.
 */
async function redisBytes(
  ctx: Context,
  queue: string
): Promise<{ used: number; queueKeys: number }> {
  const pending = (info: string) => Number(/lazyfree_pending_objects:(\d+)/.exec(info)?.[1] ?? 0)
  let info = await ctx.admin.info('memory')
  for (const started = Date.now(); pending(info) > 0 && Date.now() - started < 60_000; ) {
    await Bun.sleep(100)
    info = await ctx.admin.info('memory')
  }
  const used = Number(/used_memory:(\d+)/.exec(info)?.[1])
  const keys: string[] = []
  let cursor = '0'
  do {
    const [next, found] = await ctx.admin.scan(cursor, 'MATCH', `*{${ctx.tenant}:${queue}:*`)
    cursor = next
    keys.push(...found)
  } while (cursor !== '0')
  let queueKeys = 0
  for (const key of keys) queueKeys += (await ctx.admin.memory('USAGE', key, 'SAMPLES', 0)) ?? 0
  return { used, queueKeys }
}

/**
 * Redis memory a message costs when its publisher sets `messageId`: the dedup key it leaves for
 * DEDUP_WINDOW_MS besides the stream entry.
 */
async function withMessageIds(ctx: Context, n: number): Promise<Figure> {
  const queue = `${QUEUE}-ids`
  await createQueue(ctx, queue)
  const before = await redisBytes(ctx, queue)
  for (let i = 0; i < n; i += 1000) {
    const messages = Array.from({ length: Math.min(1000, n - i) }, (_, j) => ({
      payload: PAYLOAD,
      messageId: `footprint-${i + j}`,
    }))
    await api(ctx.service.url, ctx.token, 'POST', '/publish/batch', { queue, messages })
  }
  const after = await redisBytes(ctx, queue)
  await deleteQueue(ctx, queue)
  return figure({
    scenario: `footprint: ${n.toLocaleString('en-US')} messages of the ~200-byte payload`,
    metric: 'Redis used_memory per retained message with a messageId',
    unit: 'bytes',
    better: 'lower',
    runs: { service: [(after.used - before.used) / n] },
    note: `MEMORY USAGE of the queue's own keys (its dedup keys among them): ${Math.round((after.queueKeys - before.queueKeys) / n)} bytes a message`,
  })
}

export async function footprint(ctx: Context): Promise<Figure[]> {
  const url = ctx.serviceEnv.databaseUrl
  if (!url) {
    ctx.notes.push('footprint: skipped, the service runs on PGlite')
    return []
  }
  const sql = postgres(url, { max: 1, onnotice: () => {} })
  try {
    const n = ctx.plan.footprintCount
    await createQueue(ctx, QUEUE)
    const subs = await createPullSubscriptions(ctx, QUEUE, 1, 'earliest')
    const pgBefore = await ledgerSettled(sql, 10_000)
    const redisBefore = await redisBytes(ctx, QUEUE)
    const filled = await fill({
      url: `${ctx.apiUrl}/publish/batch`,
      token: ctx.token,
      queue: QUEUE,
      count: n,
    })
    const pgPublished = await ledgerSettled(sql, 120_000)
    const redisAfter = await redisBytes(ctx, QUEUE)
    await drainService(ctx, subs, filled.stored, 120_000)
    const pgAcked = await ledgerSettled(sql, 120_000)
    // Before the first queue goes: Redis frees a deleted queue's keys in the background, which
    // would shrink used_memory under the second measurement.
    const ids = await withMessageIds(ctx, filled.stored)
    await deleteQueue(ctx, QUEUE)
    const per = (bytes: number) => [bytes / filled.stored]
    const scenario = `footprint: ${filled.stored.toLocaleString('en-US')} messages of the ~200-byte payload`
    return [
      figure({
        scenario,
        metric: 'Redis used_memory per retained message',
        unit: 'bytes',
        better: 'lower',
        runs: { service: per(redisAfter.used - redisBefore.used) },
        note: `MEMORY USAGE of the queue's own keys: ${Math.round((redisAfter.queueKeys - redisBefore.queueKeys) / filled.stored)} bytes a message`,
      }),
      figure({
        scenario,
        metric: 'PostgreSQL bytes per message published',
        unit: 'bytes',
        better: 'lower',
        runs: { service: per(total(pgPublished) - total(pgBefore)) },
        note: `tables with indexes and TOAST, by table: ${growth(pgBefore, pgPublished, filled.stored)}`,
      }),
      figure({
        scenario,
        metric: 'PostgreSQL bytes per message published, pulled and acked',
        unit: 'bytes',
        better: 'lower',
        runs: { service: per(total(pgAcked) - total(pgBefore)) },
        note: `by table: ${growth(pgBefore, pgAcked, filled.stored)}`,
      }),
      ids,
    ]
  } finally {
    await sql.end({ timeout: 1 })
  }
}
