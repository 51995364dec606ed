import { afterAll, afterEach, describe, expect, test } from 'bun:test'
import { and, asc, eq, sql } from 'drizzle-orm'
import fc from 'fast-check'
import { Redis } from 'ioredis'
import { createApp } from '../../../src/app'
import { LedgerRepository } from '../../../src/db/ledger-repository'
import { consumptionRecords, messageRecords } from '../../../src/db/schema'
import { systemLedgerRecords } from '../../../src/db/scoped-ledger'
import { asSystem } from '../../../src/db/tenant-scope'
import { buildDeps, type Deps } from '../../../src/deps'
import {
  type AttemptBatch,
  type AttemptStatus,
  LEDGER_TRIM_GRACE_MS,
  TIMED_OUT,
} from '../../../src/domain/ledger'
import { hashKey, publishBatch } from '../../../src/domain/publish'
import { MessageRecordSchema } from '../../../src/http/schemas/messages'
import { createLogger } from '../../../src/observability/logger'
import { LEDGER_GROUP, LEDGER_SHARDS } from '../../../src/streams/ledger'
import { createMetrics } from '../../../src/wiring/metrics'
import { openLedgerStreams } from '../../../src/wiring/worker'
import type { LedgerWriter } from '../../../src/worker/ledger-writer'
import type { LedgerWriterOptions } from '../../../src/worker/ledger-writer-options'
import { subscribe as subscribeOrders } from '../../helpers/consuming'
import {
  call,
  currentInfra,
  newTenant,
  sharedDeps,
  testConfig,
  testResolver,
} from '../../helpers/harness'
import { startLedgerWriter, streamMessage } from '../../helpers/ledger'

const B = '/api/v1/mq'
/** A retention bound that has trimmed nothing of what a test just published. */
const HOUR_AGO = () => Date.now() - 3_600_000
const running: LedgerWriter[] = []
const extraDeps: Deps[] = []

afterEach(async () => {
  await Promise.all(running.splice(0).map((w) => w.stop()))
})

afterAll(async () => {
  await Promise.all(extraDeps.splice(0).map((d) => d.close()))
})

/** Deps of their own (own key prefix) in another LEDGER_MODE. */
async function depsInMode(mode: 'failures' | 'off'): Promise<Deps> {
  const deps = await buildDeps(testConfig({ LEDGER_MODE: mode }), createLogger('silent'), {
    resolveHost: testResolver,
  })
  extraDeps.push(deps)
  return deps
}

/** A writer over the queues of `tenants` only, stopped after the test. */
function startWriter(
  deps: Deps,
  tenants: string[],
  options: LedgerWriterOptions & { consumer?: string } = {}
): LedgerWriter {
  const writer = startLedgerWriter(deps, tenants, options)
  running.push(writer)
  return writer
}

async function until<T>(probe: () => Promise<T>, done: (v: T) => boolean, ms = 5000): Promise<T> {
  const deadline = Date.now() + ms
  for (;;) {
    const value = await probe()
    if (done(value) || Date.now() > deadline) return value
    await Bun.sleep(25)
  }
}

async function setup(deps: Deps, settings: Record<string, unknown> = {}) {
  const app = createApp(deps)
  const tenant = newTenant()
  const res = await call(app, 'POST', `${B}/queues`, {
    tenant,
    body: { name: 'orders', ...settings },
  })
  expect(res.status).toBe(201)
  const publish = async (messages: Array<Record<string, unknown>>) => {
    const r = await call(app, 'POST', `${B}/publish/batch`, {
      tenant,
      body: { queue: 'orders', messages },
    })
    expect(r.status).toBe(201)
    return r.body.results.map((x: { messageId: string }) => x.messageId) as string[]
  }
  const subscribe = (body: Record<string, unknown> = {}) =>
    subscribeOrders(app, tenant, { consumerGroup: 'g', consumerName: 'c', ...body })
  const pull = async (sub: string, body: Record<string, unknown> = {}) => {
    const r = await call(app, 'POST', `${B}/subscriptions/${sub}/pull`, {
      tenant,
      body: { max: 100, ...body },
    })
    expect(r.status).toBe(200)
    return r.body.messages as Array<{ receipt: string; messageId: string; deliveryCount: number }>
  }
  const settle = async (sub: string, verb: 'ack' | 'nack', receipts: string[], extra = {}) => {
    const r = await call(app, 'POST', `${B}/subscriptions/${sub}/${verb}`, {
      tenant,
      body: { receipts, ...extra },
    })
    expect(r.status).toBe(200)
    return r.body
  }
  const getMessage = (id: string, as = tenant) =>
    call(app, 'GET', `${B}/messages/${encodeURIComponent(id)}?queue=orders`, { tenant: as })
  const queue = async () => (await deps.queueDeps.queues.get(tenant, 'orders'))!
  /** Rows of 'orders' only: a dead-letter queue's copies have rows of their own. */
  const rows = async () =>
    deps.database.db
      .select()
      .from(messageRecords)
      .where(
        and(eq(messageRecords.tenantId, tenant), eq(messageRecords.topicId, (await queue()).id))
      )
  const attempts = () =>
    deps.database.db
      .select()
      .from(consumptionRecords)
      .where(eq(consumptionRecords.tenantId, tenant))
      .orderBy(asc(consumptionRecords.processedAt), asc(consumptionRecords.retryCount))
  const stream = (p = 0) => deps.keys.partition(tenant, 'orders', p, 'stream')
  return {
    app,
    tenant,
    publish,
    subscribe,
    pull,
    settle,
    getMessage,
    rows,
    attempts,
    stream,
    queue,
  }
}

const groupsOf = async (deps: Deps, stream: string) =>
  ((await deps.redis.xinfo('GROUPS', stream).catch(() => [])) as string[][]).map((g) => g[1])

describe('ledger: messages', () => {
  test('500 published messages are recorded once, across a crashed reader, two writers and a restart', async () => {
    const deps = await sharedDeps()
    const t = await setup(deps, { partitionCount: 4 })
    const ids = await t.publish(Array.from({ length: 500 }, (_, i) => ({ payload: { i } })))
    // A writer that read 40 entries of each partition and died before storing them.
    const crashed = openLedgerStreams(deps, 'crashed')
    const streams = [0, 1, 2, 3].map((p) => t.stream(p))
    await crashed.ensureGroup(streams)
    // One stream a read: on a cluster the partitions hash to different slots.
    const taken = await Promise.all(streams.map((s) => crashed.read([s], 40)))
    expect(taken.flatMap((t) => [...t.values()].flat())).toHaveLength(160)
    crashed.close()

    const fast = { claimIdleMs: 200, sweepMs: 300, forgetAfterMs: 200 }
    const first = startWriter(deps, [t.tenant], fast)
    startWriter(deps, [t.tenant], fast)
    await until(t.rows, (r) => r.length >= 340)
    await first.stop()
    const more = await t.publish(Array.from({ length: 100 }, (_, i) => ({ payload: { more: i } })))
    startWriter(deps, [t.tenant], fast)
    const rows = await until(t.rows, (r) => r.length >= 600, 8000)

    expect(rows).toHaveLength(600)
    expect(new Set(rows.map((r) => r.messageId))).toEqual(new Set([...ids, ...more]))
    expect(rows.every((r) => r.payloadSize !== null)).toBe(true)
    // Everything acknowledged, and the dead reader's consumer forgotten.
    await until(
      async () =>
        Promise.all(streams.map((s) => deps.redis.xpending(s, LEDGER_GROUP))) as Promise<
          unknown[][]
        >,
      (summaries) => summaries.every((s) => Number(s[0]) === 0)
    )
    const consumers = await until(
      async () =>
        (
          await Promise.all(
            streams.map(
              (s) => deps.redis.xinfo('CONSUMERS', s, LEDGER_GROUP) as Promise<string[][]>
            )
          )
        )
          .flat()
          .map((c) => c[1]),
      (names) => !names.includes('crashed')
    )
    expect(consumers).not.toContain('crashed')
  })

  test('fields and payloads are kept; an encrypted payload stays sealed; GET answers from the ledger after a purge', async () => {
    const deps = await sharedDeps()
    const t = await setup(deps, { encrypted: true })
    const [id] = await t.publish([
      {
        payload: { order: 42, items: ['a', 'b'] },
        headers: { type: 'order.created' },
        key: 'customer-7',
        correlationId: 'corr-1',
        traceId: 'trace-1',
        ttlMs: 3_600_000,
      },
    ])
    startWriter(deps, [t.tenant])
    const [row] = await until(t.rows, (r) => r.length === 1)
    expect(row).toMatchObject({
      messageId: id,
      headers: { type: 'order.created' },
      messageKey: 'customer-7',
      correlationId: 'corr-1',
      traceId: 'trace-1',
      partitionId: 0,
    })
    expect(row!.payload).toStartWith('v1.')
    expect(row!.payload).not.toContain('order')

    expect(
      (await call(t.app, 'POST', `${B}/queues/orders/purge`, { tenant: t.tenant })).status
    ).toBe(200)
    const res = await t.getMessage(id!)
    expect(res.status).toBe(200)
    const body = MessageRecordSchema.parse(res.body)
    expect(body).toMatchObject({
      messageId: id,
      status: 'published',
      payload: { order: 42, items: ['a', 'b'] },
      headers: { type: 'order.created' },
      key: 'customer-7',
      consumerGroups: [],
      attempts: [],
    })
  })

  test('queue stats leave the ledger group out; alone it lets nothing be trimmed as consumed', async () => {
    const deps = await sharedDeps()
    const t = await setup(deps)
    await t.publish([{ payload: 1 }, { payload: 2 }])
    startWriter(deps, [t.tenant])
    await until(t.rows, (r) => r.length === 2)
    expect(await groupsOf(deps, t.stream())).toEqual([LEDGER_GROUP])
    const stats = (await call(t.app, 'GET', `${B}/queues/orders`, { tenant: t.tenant })).body.stats
    expect(stats).toMatchObject({ consumerGroups: 0, pending: 0, length: 2 })
    expect(await deps.messages.trimPartition(await t.queue(), 0, HOUR_AGO(), 1000, 1)).toBe(0)
  })

  test('the trimmer leaves acknowledged entries to the ledger for a grace, never longer; then they are its gap', async () => {
    const deps = await sharedDeps()
    const t = await setup(deps)
    const sub = await t.subscribe()
    await openLedgerStreams(deps).ensureGroup([t.stream()])
    await t.publish([{ payload: 1 }, { payload: 2 }, { payload: 3 }])
    const got = await t.pull(sub)
    await t.settle(
      sub,
      'ack',
      got.map((d) => d.receipt)
    )
    const trim = (ledgerFloorMs: number) =>
      t.queue().then((q) => deps.messages.trimPartition(q, 0, HOUR_AGO(), 1000, 1, ledgerFloorMs))
    // Acknowledged, unread by the ledger, published within the grace: kept.
    expect(await trim(Date.now() - LEDGER_TRIM_GRACE_MS)).toBe(0)
    // The grace over: trimmed all the same, and counted as the ledger's gap.
    expect(await trim(Date.now() + 1)).toBe(3)
    const stats = await call(t.app, 'GET', `${B}/queues/orders`, { tenant: t.tenant })
    expect(stats.body.stats).toMatchObject({ length: 0, ledgerGap: 3 })
  })

  test('the trimmer gives a queue the ledger writer has not reached yet the same grace', async () => {
    const deps = await sharedDeps()
    const t = await setup(deps)
    const sub = await t.subscribe()
    await t.publish([{ payload: 1 }])
    const got = await t.pull(sub)
    await t.settle(
      sub,
      'ack',
      got.map((d) => d.receipt)
    )
    const queue = await t.queue()
    const floor = Date.now() - LEDGER_TRIM_GRACE_MS
    expect(await deps.messages.trimPartition(queue, 0, HOUR_AGO(), 1000, 1, floor)).toBe(0)
    startWriter(deps, [t.tenant])
    await until(t.rows, (r) => r.length === 1)
    await until(
      async () => (await deps.redis.xpending(t.stream(), LEDGER_GROUP)) as unknown[],
      (s) => Number(s[0]) === 0
    )
    expect(await deps.messages.trimPartition(queue, 0, HOUR_AGO(), 1000, 1, floor)).toBe(1)
  })

  test('a stalled ledger holds nothing back: acknowledged entries go, maxLength is not hit, the gap is counted and warned once', async () => {
    const deps = await sharedDeps()
    const t = await setup(deps, { maxLength: 9 })
    const sub = await t.subscribe()
    // The ledger's group exists from the first publish, as the writer would have made it, and
    // no writer reads it: a ledger stalled (PostgreSQL down, worker stopped).
    await openLedgerStreams(deps).ensureGroup([t.stream()])
    const early = await t.publish(Array.from({ length: 9 }, (_, i) => ({ payload: { i } })))
    const got = await t.pull(sub)
    await t.settle(
      sub,
      'ack',
      got.map((d) => d.receipt)
    )
    // Full, all acknowledged: the next publish trims them rather than answering 429.
    const later = await t.publish(Array.from({ length: 9 }, (_, i) => ({ payload: { later: i } })))
    const stats = async () =>
      (await call(t.app, 'GET', `${B}/queues/orders`, { tenant: t.tenant })).body.stats
    expect(await stats()).toMatchObject({ length: 9, ledgerGap: 9 })
    const status = await call(t.app, 'GET', `${B}/status`, { tenant: t.tenant })
    expect(status.body.queues.find((q: { name: string }) => q.name === 'orders')).toMatchObject({
      ledgerGap: 9,
    })
    const scraped = createMetrics({
      redis: deps.redis,
      keys: deps.keys,
      logger: createLogger('silent'),
      listQueues: async () => [await t.queue()],
      queues: deps.queueDeps.queues,
      subscriptions: deps.subscriptionDeps.subscriptions,
      messages: deps.messages,
    })
    expect((await scraped.metrics.exposition()).body).toContain(
      `mq_ledger_gap_messages_total{tenant="${t.tenant}",queue="orders"} 9`
    )
    await scraped.close()

    const lines: string[] = []
    const logger = createLogger('warn', { write: (line: string) => lines.push(line) })
    startWriter({ ...deps, logger } as Deps, [t.tenant])
    startWriter({ ...deps, logger } as Deps, [t.tenant])
    const rows = await until(t.rows, (r) => r.length === 9)
    expect(new Set(rows.map((r) => r.messageId))).toEqual(new Set(later))
    await Bun.sleep(300)
    const gaps = lines.map((l) => JSON.parse(l)).filter((l) => /ledger gap/.test(l.msg))
    expect(gaps).toEqual([expect.objectContaining({ queue: 'orders', partition: 0, messages: 9 })])
    // A message the ledger missed is still known from its attempts, without its body.
    const missed = await until(
      () => t.getMessage(early[0]!),
      (r) => r.status === 200
    )
    expect(missed.body).toMatchObject({ status: 'acked', payload: null })
    expect(await deps.messages.trimPartition(await t.queue(), 0, HOUR_AGO(), 1000, 1)).toBe(0)
  })
})

describe('ledger: attempts', () => {
  test('ack, nack then ack, nack until dead-lettered: every attempt and each final status', async () => {
    const deps = await sharedDeps()
    const t = await setup(deps)
    const sub = await t.subscribe({ maxRetryAttempts: 2 })
    startWriter(deps, [t.tenant])
    const [m1, m2, m3] = await t.publish([{ payload: 1 }, { payload: 2 }, { payload: 3 }])
    const first = await t.pull(sub)
    const receipt = (list: typeof first, id: string) =>
      list.find((d) => d.messageId === id)!.receipt
    await Bun.sleep(30)
    await t.settle(sub, 'ack', [receipt(first, m1!)])
    await t.settle(sub, 'nack', [receipt(first, m2!)], { delayMs: 0, reason: 'bad input' })
    await t.settle(sub, 'nack', [receipt(first, m3!)], { delayMs: 0, reason: 'boom' })
    const second = await t.pull(sub)
    expect(second.map((d) => d.deliveryCount)).toEqual([2, 2])
    await t.settle(sub, 'ack', [receipt(second, m2!)])
    expect(
      await t.settle(sub, 'nack', [receipt(second, m3!)], { delayMs: 0, reason: 'boom' })
    ).toEqual({ requeued: 0, deadLettered: 1 })

    const attempts = await until(t.attempts, (a) => a.length === 5)
    const of = (id: string) =>
      attempts
        .filter((a) => a.messageId === id)
        .map((a) => ({ status: a.status, retry: a.retryCount, error: a.errorMessage }))
    expect(of(m1!)).toEqual([{ status: 'success', retry: 0, error: null }])
    // The redelivery's inferred timeout does not replace the nack that came first.
    expect(of(m2!)).toEqual([
      { status: 'retrying', retry: 0, error: 'bad input' },
      { status: 'success', retry: 1, error: null },
    ])
    expect(of(m3!)).toEqual([
      { status: 'retrying', retry: 0, error: 'boom' },
      { status: 'dead_letter', retry: 1, error: 'boom' },
    ])
    const acked = attempts.find((a) => a.messageId === m1 && a.status === 'success')!
    expect(acked.processingTimeMs).toBeGreaterThanOrEqual(25)
    expect(acked.consumerInstance).toBe('c')
    expect(attempts.find((a) => a.status === 'retrying')!.nextRetryAt).not.toBeNull()

    await until(t.rows, (r) => r.length === 3)
    const ledger = new LedgerRepository(deps.database.db, deps.logger)
    const queueId = (await t.queue()).id
    const status = async (id: string) => (await ledger.find(t.tenant, queueId, id))?.status
    expect([await status(m1!), await status(m2!), await status(m3!)]).toEqual([
      'acked',
      'acked',
      'dead_letter',
    ])

    // Still in its stream, acknowledged by the group: the ledger says it was dead-lettered.
    const live = MessageRecordSchema.parse((await t.getMessage(m3!)).body)
    expect(live.status).toBe('dead_letter')
    expect(live.consumerGroups).toEqual([{ consumerGroup: 'g', state: 'acked', deliveryCount: 0 }])
    expect(live.attempts.map((a) => [a.status, a.deliveryCount, a.error])).toEqual([
      ['retrying', 1, 'boom'],
      ['dead_letter', 2, 'boom'],
    ])
    // The dead letter is a message of the dead-letter queue, recorded there too.
    await until(
      async () =>
        (await call(t.app, 'GET', `${B}/messages/${m3}?queue=orders.dlq`, { tenant: t.tenant }))
          .status,
      (s) => s === 200
    )
  })

  test('a receipt made before receipts carried the message id still acks, and its attempt is recorded', async () => {
    const deps = await sharedDeps()
    const t = await setup(deps)
    const sub = await t.subscribe()
    startWriter(deps, [t.tenant])
    const ids = await t.publish([{ payload: 1 }, { payload: 2 }])
    const delivered = await t.pull(sub)
    const { receipts } = deps.consumeDeps
    const { messageId, ...old } = receipts.decode(t.tenant, delivered[0]!.receipt)!
    expect(messageId).toBe(delivered[0]!.messageId)
    const oldReceipt = receipts.encode(t.tenant, old)
    expect(await t.settle(sub, 'ack', [oldReceipt, delivered[1]!.receipt])).toEqual({ acked: 2 })
    const attempts = await until(t.attempts, (a) => a.length === 2)
    expect(attempts.map((a) => a.messageId).toSorted()).toEqual(ids.toSorted())
    expect(attempts.map((a) => a.status)).toEqual(['success', 'success'])
  })

  test('a delivery not acknowledged in time is recorded as failed', async () => {
    const deps = await sharedDeps()
    const t = await setup(deps)
    const sub = await t.subscribe()
    startWriter(deps, [t.tenant])
    const [id] = await t.publish([{ payload: 'slow' }])
    expect(await t.pull(sub, { visibilityTimeoutMs: 1000 })).toHaveLength(1)
    await Bun.sleep(1100)
    const again = await t.pull(sub)
    expect(again[0]!.deliveryCount).toBe(2)
    await t.settle(sub, 'ack', [again[0]!.receipt])
    const attempts = await until(t.attempts, (a) => a.length === 2)
    expect(attempts.map((a) => [a.messageId, a.status, a.retryCount, a.errorMessage])).toEqual([
      [id!, 'failed', 0, TIMED_OUT],
      [id!, 'success', 1, null],
    ])
  })

  test("another tenant's message id is 404 from Redis and from the ledger alike", async () => {
    const deps = await sharedDeps()
    const a = await setup(deps)
    const b = await setup(deps)
    const [id] = await a.publish([{ payload: 'secret' }])
    startWriter(deps, [a.tenant, b.tenant])
    await until(a.rows, (r) => r.length === 1)
    expect((await b.getMessage(id!)).status).toBe(404)
    await call(a.app, 'POST', `${B}/queues/orders/purge`, { tenant: a.tenant })
    expect((await a.getMessage(id!)).status).toBe(200)
    const foreign = await a.getMessage(id!, b.tenant)
    expect(foreign.status).toBe(404)
    expect(foreign.body.code).toBe('MQ_MESSAGE_NOT_FOUND')
    expect(JSON.stringify(foreign.body)).not.toContain('secret')
  })
})

describe('ledger: modes', () => {
  test('failures: only failed attempts, with their messages, and no group on the streams', async () => {
    const deps = await depsInMode('failures')
    const t = await setup(deps)
    const sub = await t.subscribe({ maxRetryAttempts: 1 })
    startWriter(deps, [t.tenant])
    const [ok, bad] = await t.publish([{ payload: 'fine' }, { payload: { broken: true } }])
    const got = await t.pull(sub)
    await t.settle(sub, 'ack', [got.find((d) => d.messageId === ok)!.receipt])
    await t.settle(sub, 'nack', [got.find((d) => d.messageId === bad)!.receipt], {
      reason: 'cannot parse',
    })
    await until(t.attempts, (a) => a.length === 1)
    // Long enough for the writer to have stored anything else it was going to.
    await Bun.sleep(200)
    expect((await t.attempts()).map((a) => [a.messageId, a.status, a.errorMessage])).toEqual([
      [bad!, 'dead_letter', 'cannot parse'],
    ])
    const rows = await t.rows()
    expect(rows.map((r) => [r.messageId, JSON.parse(r.payload!)])).toEqual([
      [bad, { broken: true }],
    ])
    await call(t.app, 'POST', `${B}/queues/orders/purge`, { tenant: t.tenant })
    expect((await t.getMessage(bad!)).body.status).toBe('dead_letter')
    expect(await groupsOf(deps, t.stream())).toEqual(['g'])
  })

  test('off: nothing is written, no group is made, and one left from another mode goes', async () => {
    const deps = await depsInMode('off')
    const t = await setup(deps)
    const sub = await t.subscribe({ maxRetryAttempts: 1 })
    await openLedgerStreams(deps).ensureGroup([t.stream()])
    const ids = await t.publish([{ payload: 1 }, { payload: 2 }])
    const got = await t.pull(sub)
    await t.settle(sub, 'ack', [got[0]!.receipt])
    await t.settle(sub, 'nack', [got[1]!.receipt], { reason: 'no' })
    startWriter(deps, [t.tenant])
    expect(
      await until(
        () => groupsOf(deps, t.stream()),
        (g) => g.length === 1
      )
    ).toEqual(['g'])
    await Bun.sleep(200)
    expect(await t.rows()).toEqual([])
    expect(await t.attempts()).toEqual([])
    for (let shard = 0; shard < LEDGER_SHARDS; shard++) {
      expect(await deps.redis.exists(deps.keys.ledgerEvents(shard))).toBe(0)
    }
    expect((await t.getMessage(ids[0]!)).status).toBe(200)
  })
})

describe('ledger: the publish path', () => {
  test('publishing sends one script call and nothing else: the ledger adds no command', async () => {
    // MONITOR watches one server; a cluster run (TEST_REDIS_CLUSTER=1) has three.
    if (process.env.TEST_REDIS_CLUSTER === '1') return
    const deps = await sharedDeps()
    const t = await setup(deps)
    const ctx = { tenantId: t.tenant, principal: { kind: 'service', name: 'test' }, requestId: 'r' }
    // Without the metrics hook, whose flow counters are not the ledger's business.
    const quiet = () => {}
    const publishDeps = {
      ...deps.publishDeps,
      metrics: {
        published: quiet,
        delivered: quiet,
        acked: quiet,
        nacked: quiet,
        deadLettered: quiet,
      },
    }
    // Warms the queue cache and the script cache.
    await publishBatch(publishDeps, ctx as never, 'orders', [{ payload: 0 }])
    const observer = new Redis(currentInfra().redisUrl)
    const monitor = await observer.monitor()
    const sent: string[] = []
    let ended = false
    monitor.on('monitor', (_time: string, args: string[], source: string) => {
      if (args[0] === 'echo' && args[1] === 'publish-done') ended = true
      // Commands a script runs are reported too, from 'lua'; only the client's count here.
      else if (!ended && source !== 'lua') sent.push(args[0]!.toLowerCase())
    })
    await publishBatch(publishDeps, ctx as never, 'orders', [{ payload: 1 }, { payload: 2 }])
    await deps.redis.echo('publish-done')
    await until(
      async () => ended,
      (done) => done
    )
    monitor.disconnect()
    observer.disconnect()
    expect(sent).toEqual(['evalsha'])
  })
})

describe('ledger: the repository', () => {
  test('an attempt before its message: its status is read from the attempts; the message row comes later; replays and late reports change nothing', async () => {
    const deps = await sharedDeps()
    const t = await setup(deps)
    const subscriptionId = await t.subscribe()
    const queue = await t.queue()
    const ledger = new LedgerRepository(deps.database.db, deps.logger)
    const now = Date.now()
    const streamId = `${now}-0`
    const batch = (
      status: AttemptStatus,
      deliveryCount: number,
      at: number,
      error: string | null = null
    ): AttemptBatch => ({
      tenantId: t.tenant,
      queueId: queue.id,
      subscriptionId,
      consumer: 'c',
      attempts: [
        {
          messageId: 'm-1',
          partition: 0,
          streamId,
          deliveryCount,
          status,
          at,
          processingMs: null,
          error,
          nextRetryAt: null,
          message: null,
        },
      ],
    })
    const stored = streamMessage(queue, 'm-1', '{"a":1}', now)
    stored.message.headers = { h: 'v' }

    const status = async () => (await ledger.find(t.tenant, queue.id, 'm-1'))?.status
    await ledger.recordAttempts([batch('success', 2, now + 20)])
    // Append-only: no placeholder row; the message is known from its attempts meanwhile.
    expect(await t.rows()).toEqual([])
    expect(await ledger.find(t.tenant, queue.id, 'm-1')).toMatchObject({
      status: 'acked',
      message: { messageId: 'm-1', payloadText: 'null' },
      attempts: [{ status: 'success', deliveryCount: 2 }],
    })
    // Reported late and together: the nack wins over the timeout inferred for the same attempt,
    // and neither is newer than the success.
    await ledger.recordAttempts([
      batch('failed', 1, now + 10, TIMED_OUT),
      batch('retrying', 1, now + 5, 'bad'),
    ])
    await ledger.recordMessages([stored])
    await ledger.recordMessages([stored])
    await ledger.recordAttempts([batch('success', 2, now + 20), batch('failed', 1, now + 10)])

    expect(await t.rows()).toMatchObject([
      { messageId: 'm-1', payload: '{"a":1}', headers: { h: 'v' }, payloadSize: 7 },
    ])
    expect(await status()).toBe('acked')
    expect((await t.attempts()).map((a) => [a.status, a.retryCount, a.errorMessage])).toEqual([
      ['retrying', 0, 'bad'],
      ['success', 1, null],
    ])
  })

  test('rows of a deleted queue are left out, without a warning, and the others stored', async () => {
    const deps = await sharedDeps()
    const t = await setup(deps)
    const queue = await t.queue()
    const gone = { ...queue, id: crypto.randomUUID() }
    const lines: string[] = []
    const ledger = new LedgerRepository(
      deps.database.db,
      createLogger('warn', { write: (line: string) => lines.push(line) })
    )
    await ledger.recordMessages([
      streamMessage(queue, 'kept', '{"ok":true}', 1),
      ...Array.from({ length: 50 }, (_, i) => streamMessage(gone, `gone-${i}`, '{}', 2 + i)),
    ])
    expect((await t.rows()).map((r) => r.messageId)).toEqual(['kept'])
    const orphans = await deps.database.db
      .select()
      .from(messageRecords)
      .where(eq(messageRecords.topicId, gone.id))
    expect(orphans).toEqual([])
    expect(lines).toEqual([])
  })

  test('deleting a subscription or a queue deletes its ledger rows, also those of a batch in flight', async () => {
    const deps = await sharedDeps()
    const t = await setup(deps)
    const kept = await t.subscribe({ consumerGroup: 'kept' })
    const dropped = await t.subscribe({ consumerGroup: 'dropped' })
    const queue = await t.queue()
    const now = Date.now()
    const attempt = (subscriptionId: string, messageId: string, ms: number): AttemptBatch => ({
      tenantId: t.tenant,
      queueId: queue.id,
      subscriptionId,
      consumer: 'c',
      attempts: [
        {
          messageId,
          partition: 0,
          streamId: `${ms}-0`,
          deliveryCount: 1,
          status: 'success',
          at: ms,
          processingMs: 1,
          error: null,
          nextRetryAt: null,
          message: null,
        },
      ],
    })
    const ledger = new LedgerRepository(deps.database.db, deps.logger)
    await ledger.recordMessages([streamMessage(queue, 'm-1', '{}', now)])
    await ledger.recordAttempts([attempt(kept, 'm-1', now + 1), attempt(dropped, 'm-1', now + 2)])

    const removed = await call(t.app, 'DELETE', `${B}/subscriptions/${dropped}`, {
      tenant: t.tenant,
    })
    expect(removed.status).toBe(204)
    expect((await t.attempts()).map((a) => a.subscriptionId)).toEqual([kept])
    expect((await t.rows()).map((r) => r.messageId)).toEqual(['m-1'])

    // A writer's batch holds its queue and subscription until it commits: the delete waits
    // for it and then removes what it wrote.
    let commit = () => {}
    const held = new Promise<void>((resolve) => {
      commit = resolve
    })
    let written = () => {}
    const inFlight = new Promise<void>((resolve) => {
      written = resolve
    })
    const batch = asSystem(deps.database.db, async (tx) => {
      const inTx = new LedgerRepository(tx, deps.logger)
      await inTx.recordMessages([streamMessage(queue, 'm-2', '{}', now + 3)])
      await inTx.recordAttempts([attempt(kept, 'm-2', now + 4)])
      written()
      await held
    })
    await inFlight
    let deleted = false
    const deleting = call(t.app, 'DELETE', `${B}/queues/orders`, { tenant: t.tenant }).then((r) => {
      deleted = true
      return r
    })
    await Bun.sleep(300)
    expect(deleted).toBe(false)
    commit()
    await batch
    expect((await deleting).status).toBe(204)

    const left = async (table: typeof messageRecords | typeof consumptionRecords) =>
      deps.database.db.select().from(table).where(eq(table.tenantId, t.tenant))
    expect(await left(messageRecords)).toEqual([])
    expect(await left(consumptionRecords)).toEqual([])
  })

  test('a payload is stored as its stream holds it, even one jsonb could not hold', async () => {
    const deps = await sharedDeps()
    const t = await setup(deps)
    const queue = await t.queue()
    const ledger = new LedgerRepository(deps.database.db, deps.logger)
    await ledger.recordMessages([
      streamMessage(queue, 'good', '{"ok": true}', 1),
      streamMessage(queue, 'nul', '{"s":"\\u0000"}', 2),
    ])
    const rows = await t.rows()
    expect(Object.fromEntries(rows.map((r) => [r.messageId, r.payload]))).toEqual({
      good: '{"ok": true}',
      nul: '{"s":"\\u0000"}',
    })
    expect((await t.getMessage('nul')).body).toMatchObject({ payload: { s: '\u0000' } })
  })
})

describe('ledger: a refused row never stops the writer', () => {
  test('one message id published with keys k1 and k2 to an 8-partition queue, read together: one row, and later messages get theirs', async () => {
    const deps = await sharedDeps()
    const t = await setup(deps, { partitionCount: 8 })
    // k1 and k2 route to different partitions, so the second is no duplicate of the first there.
    expect(hashKey('k1') % 8).not.toBe(hashKey('k2') % 8)
    await t.publish([
      { messageId: 'same', key: 'k1', payload: 1 },
      { messageId: 'same', key: 'k2', payload: 2 },
    ])
    const writer = startWriter(deps, [t.tenant])
    await until(t.rows, (r) => r.length === 1)
    const later = await t.publish(Array.from({ length: 20 }, (_, i) => ({ payload: { i } })))
    const rows = await until(t.rows, (r) => r.length === 21)
    expect(rows.map((r) => r.messageId).sort()).toEqual(['same', ...later].sort())
    expect(writer.refusedRows).toBe(0)
  })

  test('a dead letter redriven while its first copy is unrecorded, both in one batch: one row, and later messages get theirs', async () => {
    const deps = await sharedDeps()
    const t = await setup(deps)
    const sub = await t.subscribe({ maxRetryAttempts: 1 })
    const [id] = await t.publish([{ payload: { first: true } }])
    const [got] = await t.pull(sub)
    await t.settle(sub, 'nack', [got!.receipt], { reason: 'poison' })
    const redriven = await call(t.app, 'POST', `${B}/queues/orders.dlq/redrive`, {
      tenant: t.tenant,
      body: {},
    })
    expect(redriven.body).toEqual({ redriven: 1 })
    // Both copies of the message are in the stream, unread by the ledger, before it starts.
    expect(await deps.redis.xlen(t.stream())).toBe(2)
    const writer = startWriter(deps, [t.tenant])
    await until(t.rows, (r) => r.length === 1)
    const later = await t.publish(Array.from({ length: 5 }, (_, i) => ({ payload: { i } })))
    const rows = await until(t.rows, (r) => r.length === 6)
    expect(rows.map((r) => r.messageId).sort()).toEqual([id!, ...later].sort())
    expect(writer.refusedRows).toBe(0)
  })

  test('a refused row is logged by SQLSTATE and ids, without a byte of its payload or of the statement', async () => {
    const deps = await sharedDeps()
    const t = await setup(deps)
    const queue = await t.queue()
    const lines: string[] = []
    const logger = createLogger('info', { write: (line: string) => lines.push(line) })
    const secret = 'PAYLOAD-SECRET-7f3a'
    // Headers jsonb cannot hold (\u0000): refused with or without the payload.
    const bad = streamMessage(queue, 'bad-1', JSON.stringify({ secret }), 5)
    bad.message.headers = { h: `\u0000${secret}` }
    const states: string[] = []
    const refused = await systemLedgerRecords(deps.database.db, logger, (s) =>
      states.push(s)
    ).recordMessages([
      streamMessage(queue, 'good-1', '{"ok":1}', 1),
      bad,
      streamMessage(queue, 'good-2', '{"ok":2}', 9),
    ])
    expect(refused).toBe(1)
    expect(states).toEqual(['22P05'])
    expect((await t.rows()).map((r) => r.messageId).sort()).toEqual(['good-1', 'good-2'])
    // A statement drizzle reports failed, logged as a careless call site would.
    const failed = await deps.database.db
      .execute(sql`select ${secret}::int`)
      .then(() => null)
      .catch((err: unknown) => err)
    expect(failed).toBeInstanceOf(Error)
    logger.warn({ err: failed }, 'as an Error')
    logger.warn({ err: (failed as Error).message }, 'as its message')
    logger.flush()

    const logged = lines.map((l) => JSON.parse(l))
    expect(logged.find((l) => l.msg === 'ledger row refused')).toMatchObject({
      sqlState: '22P05',
      tenantId: t.tenant,
      queueId: queue.id,
      messageId: 'bad-1',
    })
    expect(logged.find((l) => l.msg === 'as an Error')?.err).toMatchObject({ sqlState: '22P02' })
    expect(lines).toHaveLength(3)
    for (const line of lines) {
      expect(line).not.toContain(secret)
      expect(line).not.toContain('\\u0000')
      expect(line).not.toMatch(/select|insert|json_to_recordset/i)
    }
  })

  test('property: random batches (duplicate ids, attempts before messages, deleted queues, oversize rows) never stop the writer, and every valid row is recorded once', async () => {
    const deps = await sharedDeps()
    const records = systemLedgerRecords(deps.database.db, createLogger('silent'))
    const item = fc.record({
      kind: fc.constantFrom('message', 'attempt'),
      live: fc.boolean(),
      id: fc.integer({ min: 0, max: 5 }),
      oversize: fc.boolean(),
      delivery: fc.integer({ min: 1, max: 2 }),
    })
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.array(item, { maxLength: 12 }), { maxLength: 6 }),
        async (batches) => {
          const t = await setup(deps)
          const subscriptionId = await t.subscribe()
          const queue = await t.queue()
          const gone = { ...queue, id: crypto.randomUUID() }
          const goneSubscription = crypto.randomUUID()
          const messageId = (i: { id: number; oversize: boolean }) =>
            i.oversize ? `m-${i.id}-${'x'.repeat(200)}` : `m-${i.id}`
          let refused = 0
          for (const batch of batches) {
            const messages = batch
              .filter((i) => i.kind === 'message')
              .map((i) =>
                streamMessage(i.live ? queue : gone, messageId(i), `{"id":${i.id}}`, 1000 + i.id)
              )
            const attempts: AttemptBatch[] = batch
              .filter((i) => i.kind === 'attempt' && !i.oversize)
              .map((i) => ({
                tenantId: t.tenant,
                queueId: i.live ? queue.id : gone.id,
                subscriptionId: i.live ? subscriptionId : goneSubscription,
                consumer: 'c',
                attempts: [
                  {
                    messageId: messageId(i),
                    partition: 0,
                    streamId: `${1000 + i.id}-0`,
                    deliveryCount: i.delivery,
                    status: 'success',
                    at: 2000 + i.id,
                    processingMs: 1,
                    error: null,
                    nextRetryAt: null,
                    message: null,
                  },
                ],
              }))
            // Attempts of a message may be stored before it: its row comes later.
            refused += await records.recordAttempts(attempts)
            refused += await records.recordMessages(messages)
          }
          const all = batches.flat()
          const valid = all.filter((i) => i.kind === 'message' && i.live && !i.oversize)
          const rows = await t.rows()
          expect(rows.map((r) => r.messageId).sort()).toEqual(
            [...new Set(valid.map(messageId))].sort()
          )
          expect(refused).toBe(
            all.filter((i) => i.kind === 'message' && i.live && i.oversize).length
          )
          const wantedAttempts = new Set(
            all
              .filter((i) => i.kind === 'attempt' && i.live && !i.oversize)
              .map((i) => `${messageId(i)}|${i.delivery}`)
          )
          const stored = await t.attempts()
          expect(stored.map((a) => `${a.messageId}|${a.retryCount + 1}`).sort()).toEqual(
            [...wantedAttempts].sort()
          )
        }
      ),
      { numRuns: 12 }
    )
  })
})
