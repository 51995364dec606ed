import { afterEach, describe, expect, test } from 'bun:test'
import { eq } from 'drizzle-orm'
import { messageSchedules } from '../../../src/db/schema'
import { fireDueSchedules } from '../../../src/domain/schedules'
import { DelayedTicker } from '../../../src/worker/delayed-ticker'
import type { Loop } from '../../../src/worker/loop'
import { ScheduleTicker } from '../../../src/worker/schedule-ticker'
import { call, newTenant, sharedDeps, testApp } from '../../helpers/harness'
import { storedMessage } from '../../helpers/ledger'

const B = '/api/v1/mq'
const running: Loop[] = []

afterEach(async () => {
  await Promise.all(running.splice(0).map((l) => l.stop()))
})

async function startTickers(n = 1, onPromoted: (lateness: number[]) => void = () => {}) {
  const deps = await sharedDeps()
  for (let i = 0; i < n; i++) {
    const ticker = new DelayedTicker({
      store: deps.messages,
      redisTarget: deps.redisTarget,
      wakeupChannel: deps.keys.delayedWakeupChannel,
      logger: deps.logger,
      onPromoted,
    })
    ticker.start()
    running.push(ticker)
  }
}

async function setup(queue: Record<string, unknown> = {}) {
  const app = await testApp()
  const deps = await sharedDeps()
  const tenant = newTenant()
  expect(
    (await call(app, 'POST', `${B}/queues`, { tenant, body: { name: 'q', ...queue } })).status
  ).toBe(201)
  const streamEntries = async (partitions = 1) => {
    const all = await Promise.all(
      Array.from({ length: partitions }, (_, p) =>
        deps.redis.xrange(deps.keys.partition(tenant, 'q', p, 'stream'), '-', '+')
      )
    )
    return all.flat().map(([id, f]) => ({
      id,
      messageId: f[f.indexOf('i') + 1]!,
      payload: f[f.indexOf('p') + 1]!,
    }))
  }
  return { app, deps, tenant, streamEntries }
}

describe('delayed messages', () => {
  test('are held until due, never early, and promoted within milliseconds of it', async () => {
    const { app, tenant, streamEntries } = await setup()
    const lateness: number[] = []
    await startTickers(1, (l) => lateness.push(...l))
    // The ticker serves every tenant of the shared Redis: overdue messages that earlier test
    // files left are promoted by its first pass and are not this test's.
    await Bun.sleep(100)
    lateness.length = 0
    const sent = Date.now()
    const res = await call(app, 'POST', `${B}/publish/delayed`, {
      tenant,
      body: { queue: 'q', payload: 'later', delayMs: 400 },
    })
    expect(res.status).toBe(201)
    expect(res.body).toMatchObject({ status: 'scheduled' })
    const due = Date.parse(res.body.deliverAt)
    expect(due - sent).toBeGreaterThanOrEqual(400)
    expect((await call(app, 'GET', `${B}/queues/q`, { tenant })).body.stats).toMatchObject({
      length: 0,
      scheduled: 1,
    })

    let arrived = 0
    while (Date.now() < due + 2000) {
      if ((await streamEntries()).length > 0) {
        arrived = Date.now()
        break
      }
      await Bun.sleep(5)
    }
    expect(arrived).toBeGreaterThanOrEqual(due)
    expect(arrived - due).toBeLessThan(250)
    // The ticker reports after its script returned, a moment after the entry is visible. It
    // also reports what other files' tenants had due meanwhile (seen on the cluster run), so
    // this message is one of the reports, and no report is early.
    while (lateness.length === 0 && Date.now() < due + 2000) await Bun.sleep(5)
    expect(lateness.length).toBeGreaterThanOrEqual(1)
    for (const late of lateness) expect(late).toBeGreaterThanOrEqual(0)
    expect((await call(app, 'GET', `${B}/queues/q`, { tenant })).body.stats).toMatchObject({
      length: 1,
      scheduled: 0,
    })
  })

  test('three tickers promote each message exactly once, equal due times in publish order', async () => {
    const { app, tenant, streamEntries } = await setup({ partitionCount: 4 })
    const deliverAt = new Date(Date.now() + 700).toISOString()
    const res = await call(app, 'POST', `${B}/publish/batch`, {
      tenant,
      body: {
        queue: 'q',
        messages: Array.from({ length: 400 }, (_, i) => ({
          payload: i,
          key: `k${i % 4}`,
          deliverAt,
        })),
      },
    })
    expect(res.status).toBe(201)
    await startTickers(3)
    await Bun.sleep(1500)
    const entries = await streamEntries(4)
    expect(entries).toHaveLength(400)
    expect(new Set(entries.map((e) => e.messageId)).size).toBe(400)
    // Within one key (one partition), messages due together keep their publish order.
    const byPartition = new Map<string, number[]>()
    const order = (id: string) => id.split('-').map(Number) as [number, number]
    const byId = (a: { id: string }, b: { id: string }) => {
      const [am, as] = order(a.id)
      const [bm, bs] = order(b.id)
      return am - bm || as - bs
    }
    for (const e of entries.sort(byId)) {
      const i = Number(e.payload)
      const list = byPartition.get(`k${i % 4}`) ?? []
      list.push(i)
      byPartition.set(`k${i % 4}`, list)
    }
    for (const list of byPartition.values()) expect(list).toEqual(list.toSorted((a, b) => a - b))
  })

  test('overdue messages are promoted at once when a ticker starts after downtime, in due order', async () => {
    const { app, tenant, streamEntries } = await setup()
    for (const delayMs of [300, 100, 200]) {
      await call(app, 'POST', `${B}/publish`, {
        tenant,
        body: { queue: 'q', payload: delayMs, delayMs },
      })
    }
    await Bun.sleep(500)
    expect(await streamEntries()).toHaveLength(0)
    const started = Date.now()
    await startTickers(1)
    while ((await streamEntries()).length < 3 && Date.now() - started < 3000) await Bun.sleep(10)
    expect(Date.now() - started).toBeLessThan(1000)
    expect((await streamEntries()).map((e) => e.payload)).toEqual(['100', '200', '300'])
  })

  test('a delayed message whose registration a crash lost is registered by the retry', async () => {
    const { app, deps, tenant, streamEntries } = await setup()
    await startTickers(1)
    // What a publish that died between storing the message and registering its due time
    // leaves behind: the message in the partition's delayed set, unknown to the tickers.
    const queue = (await deps.publishDeps.queues.get(tenant, 'q'))!
    const now = Date.now()
    await deps.messages.write(
      queue,
      0,
      [
        {
          dedupId: 'crashed',
          deliverAt: now + 200,
          message: storedMessage('crashed', '"late"', now),
        },
      ],
      { now, maxLength: 100, dedupWindowMs: 60_000 }
    )
    const retry = await call(app, 'POST', `${B}/publish/delayed`, {
      tenant,
      body: { queue: 'q', payload: 'late', messageId: 'crashed', delayMs: 200 },
    })
    expect(retry.body).toMatchObject({ duplicate: true, status: 'scheduled' })
    const started = Date.now()
    while ((await streamEntries()).length === 0 && Date.now() - started < 3000) await Bun.sleep(10)
    expect((await streamEntries()).map((e) => e.messageId)).toEqual(['crashed'])
    expect(Date.now()).toBeGreaterThanOrEqual(now + 200)
  })

  test('a cancelled delayed message is never delivered', async () => {
    const { app, tenant, streamEntries } = await setup()
    await startTickers(1)
    const res = await call(app, 'POST', `${B}/publish/delayed`, {
      tenant,
      body: { queue: 'q', payload: 1, delayMs: 300 },
    })
    expect(
      (await call(app, 'DELETE', `${B}/messages/${res.body.messageId}?queue=q`, { tenant })).status
    ).toBe(204)
    await Bun.sleep(600)
    expect(await streamEntries()).toHaveLength(0)
  })

  test('/publish/scheduled with deliverAt is a one-time delayed message', async () => {
    const { app, tenant, streamEntries } = await setup()
    await startTickers(1)
    const deliverAt = new Date(Date.now() + 300).toISOString()
    const res = await call(app, 'POST', `${B}/publish/scheduled`, {
      tenant,
      body: { queue: 'q', payload: 'x', deliverAt },
    })
    expect(res).toMatchObject({ status: 201, body: { status: 'scheduled', deliverAt } })
    // Polled rather than slept on: a busy machine (or a cluster) may take longer, never less.
    while ((await streamEntries()).length === 0 && Date.now() < Date.parse(deliverAt) + 3000) {
      await Bun.sleep(20)
    }
    const [entry] = await streamEntries()
    expect(entry).toBeDefined()
    expect(Number(entry!.id.split('-')[0])).toBeGreaterThanOrEqual(Date.parse(deliverAt))
  })
})

describe('recurring schedules', () => {
  test('every second with maxRuns 2: two messages, however many tickers run', async () => {
    const { app, deps, tenant, streamEntries } = await setup()
    const created = await call(app, 'POST', `${B}/publish/scheduled`, {
      tenant,
      body: {
        queue: 'q',
        payload: { report: true },
        headers: { kind: 'report' },
        cron: '* * * * * *',
        maxRuns: 2,
      },
    })
    expect(created.status).toBe(201)
    expect(created.body).toMatchObject({
      queue: 'q',
      cron: '* * * * * *',
      timezone: 'UTC',
      status: 'active',
      runs: 0,
    })
    for (let i = 0; i < 3; i++) {
      const ticker = new ScheduleTicker(deps.scheduleDeps, deps.logger)
      ticker.start()
      running.push(ticker)
    }
    await Bun.sleep(3300)
    const entries = await streamEntries()
    expect(entries).toHaveLength(2)
    expect(entries.map((e) => e.payload)).toEqual(['{"report":true}', '{"report":true}'])
    const after = await call(app, 'GET', `${B}/schedules/${created.body.id}`, { tenant })
    expect(after.body).toMatchObject({ status: 'completed', runs: 2, nextRunAt: null })
    expect(after.body.lastRunAt).toBeString()
  })

  test('after downtime only the latest missed occurrence fires', async () => {
    const { app, deps, tenant, streamEntries } = await setup()
    const created = await call(app, 'POST', `${B}/publish/scheduled`, {
      tenant,
      body: { queue: 'q', payload: 1, cron: '*/2 * * * * *' },
    })
    const missedSince = new Date(Math.floor(Date.now() / 2000) * 2000 - 20_000)
    await deps.database.db
      .update(messageSchedules)
      .set({ nextRunAt: missedSince })
      .where(eq(messageSchedules.id, created.body.id))
    const now = new Date()
    expect(await fireDueSchedules(deps.scheduleDeps, now)).toBe(1)
    expect(await fireDueSchedules(deps.scheduleDeps, now)).toBe(0)
    expect(await streamEntries()).toHaveLength(1)
    const after = (await call(app, 'GET', `${B}/schedules/${created.body.id}`, { tenant })).body
    const latest = Math.floor(now.getTime() / 2000) * 2000
    expect(Date.parse(after.lastRunAt)).toBe(latest)
    expect(Date.parse(after.nextRunAt)).toBeGreaterThan(now.getTime())
    expect(after.runs).toBe(1)
  })

  test('CRUD, pause and resume; errors; another tenant sees nothing', async () => {
    const { app, tenant } = await setup({ encrypted: true })
    const created = await call(app, 'POST', `${B}/publish/scheduled`, {
      tenant,
      body: {
        queue: 'q',
        payload: { secret: 's3cr3t' },
        cron: '0 8 * * 1-5',
        timezone: 'Asia/Shanghai',
      },
    })
    expect(created.status).toBe(201)
    const id = created.body.id
    const next = new Date(created.body.nextRunAt)
    expect(next.getUTCHours()).toBe(0)
    expect(created.body.payload).toEqual({ secret: 's3cr3t' })
    const deps = await sharedDeps()
    const [row] = await deps.database.db
      .select()
      .from(messageSchedules)
      .where(eq(messageSchedules.id, id))
    expect(JSON.stringify(row)).not.toContain('s3cr3t')

    const listed = await call(app, 'GET', `${B}/schedules?queue=q`, { tenant, scope: 'mq:read' })
    expect(listed.body.items.map((s: { id: string }) => s.id)).toEqual([id])
    const updated = await call(app, 'PUT', `${B}/schedules/${id}`, {
      tenant,
      body: { cron: '30 9 * * *', timezone: 'UTC' },
    })
    expect(updated.body).toMatchObject({ cron: '30 9 * * *', timezone: 'UTC' })
    expect(new Date(updated.body.nextRunAt).getUTCHours()).toBe(9)
    expect((await call(app, 'POST', `${B}/schedules/${id}/pause`, { tenant })).body.status).toBe(
      'paused'
    )
    expect((await call(app, 'POST', `${B}/schedules/${id}/resume`, { tenant })).body.status).toBe(
      'active'
    )

    const other = newTenant()
    for (const [method, path] of [
      ['GET', `${B}/schedules/${id}`],
      ['PUT', `${B}/schedules/${id}`],
      ['DELETE', `${B}/schedules/${id}`],
      ['POST', `${B}/schedules/${id}/pause`],
    ] as const) {
      const res = await call(app, method, path, {
        tenant: other,
        body: method === 'PUT' ? { maxRuns: 1 } : undefined,
      })
      expect(res.status).toBe(404)
      expect(res.body.code).toBe('MQ_SCHEDULE_NOT_FOUND')
    }
    expect((await call(app, 'GET', `${B}/schedules`, { tenant: other })).body.items).toEqual([])

    for (const body of [
      { queue: 'q', payload: 1, cron: 'not a cron at all' },
      { queue: 'q', payload: 1, cron: '* * * * *', timezone: 'Mars/Olympus' },
      { queue: 'q', payload: 1, cron: '* * * * *', messageId: 'x' },
      { queue: 'q', payload: 1 },
    ]) {
      const res = await call(app, 'POST', `${B}/publish/scheduled`, { tenant, body })
      expect(res.status).toBe(400)
      expect(res.body.code).toBe('MQ_VALIDATION_FAILED')
    }
    expect((await call(app, 'DELETE', `${B}/schedules/${id}`, { tenant })).status).toBe(204)
    expect((await call(app, 'GET', `${B}/schedules/${id}`, { tenant })).status).toBe(404)
  })
})
