import { describe, expect, test } from 'bun:test'
import fc from 'fast-check'
import { LastConsumed, type LastConsumedStore } from '../../../src/db/last-consumed'
import { SubscriptionRepository } from '../../../src/db/subscription-repository'
import { createLogger } from '../../../src/observability/logger'
import { subscribe } from '../../helpers/consuming'
import { call, newTenant, sharedDeps, testApp } from '../../helpers/harness'

/**
 * `lastConsumedAt` (issue 20): written in batches by each process, off the hot path, and shown
 * on GET /subscriptions/{id}. Before, it stayed null after every pull and ack.
 */

const B = '/api/v1/mq'
const logger = createLogger('silent')

async function setup() {
  const app = await testApp()
  const deps = await sharedDeps()
  const tenant = newTenant()
  expect(
    (await call(app, 'POST', `${B}/queues`, { tenant, body: { name: 'orders' } })).status
  ).toBe(201)
  const id = await subscribe(app, tenant, { consumerGroup: 'g', consumerName: 'c' })
  const repository = new SubscriptionRepository(deps.database.db)
  return { app, tenant, id, repository }
}

describe('lastConsumedAt', () => {
  test('regression: GET /subscriptions/{id} shows the latest pull, then the latest ack', async () => {
    const { app, tenant, id } = await setup()
    const get = async () =>
      (await call(app, 'GET', `${B}/subscriptions/${id}`, { tenant })).body.lastConsumedAt
    expect(await get()).toBeNull()
    await call(app, 'POST', `${B}/publish`, { tenant, body: { queue: 'orders', payload: 1 } })
    const before = Date.now()
    const pulled = await call(app, 'POST', `${B}/subscriptions/${id}/pull`, { tenant, body: {} })
    expect(pulled.body.messages).toHaveLength(1)
    const afterPull = await get()
    expect(afterPull).not.toBeNull()
    expect(Date.parse(afterPull)).toBeGreaterThanOrEqual(before)
    await Bun.sleep(5)
    const acked = await call(app, 'POST', `${B}/subscriptions/${id}/ack`, {
      tenant,
      body: { receipts: [pulled.body.messages[0].receipt] },
    })
    expect(acked.body.acked).toBe(1)
    expect(Date.parse(await get())).toBeGreaterThan(Date.parse(afterPull))
  })

  test('a flush writes one statement for many subscriptions; another process reads it', async () => {
    const a = await setup()
    const b = await setup()
    const writer = new LastConsumed({ store: a.repository, logger })
    writer.seen({ id: a.id, tenantId: a.tenant }, Date.parse('2026-12-01T10:00:00.000Z'))
    writer.seen({ id: b.id, tenantId: b.tenant }, Date.parse('2026-12-01T11:00:00.000Z'))
    await writer.flush()
    const reader = new LastConsumed({ store: a.repository, logger })
    expect((await reader.read(a.tenant, a.id))?.toISOString()).toBe('2026-12-01T10:00:00.000Z')
    expect((await reader.read(b.tenant, b.id))?.toISOString()).toBe('2026-12-01T11:00:00.000Z')
  })

  test('a time never moves back, whichever process writes last', async () => {
    const { tenant, id, repository } = await setup()
    const late = new LastConsumed({ store: repository, logger })
    const early = new LastConsumed({ store: repository, logger })
    late.seen({ id, tenantId: tenant }, Date.parse('2026-12-01T12:00:00.000Z'))
    early.seen({ id, tenantId: tenant }, Date.parse('2026-12-01T09:00:00.000Z'))
    await late.flush()
    await early.flush()
    expect((await repository.lastConsumedAt(tenant, id))?.toISOString()).toBe(
      '2026-12-01T12:00:00.000Z'
    )
  })

  test('model: any run of notes, flushes (some failing) and reads agrees with a map of maxima', async () => {
    type Model = { stored: Map<number, number>; pending: Map<number, number> }
    type Real = {
      last: LastConsumed
      subs: Array<{ id: string; tenantId: string }>
      fail: { now: boolean }
      repository: SubscriptionRepository
    }
    const T0 = Date.parse('2026-12-01T00:00:00.000Z')
    const maxInto = (m: Map<number, number>, k: number, v: number) =>
      m.set(k, Math.max(m.get(k) ?? v, v))
    class Seen implements fc.AsyncCommand<Model, Real> {
      constructor(
        readonly sub: number,
        readonly at: number
      ) {}
      check = () => true
      async run(model: Model, real: Real) {
        real.last.seen(real.subs[this.sub]!, T0 + this.at)
        maxInto(model.pending, this.sub, T0 + this.at)
      }
      toString = () => `seen(${this.sub}, ${this.at})`
    }
    class Flush implements fc.AsyncCommand<Model, Real> {
      constructor(readonly fails: boolean) {}
      check = () => true
      async run(model: Model, real: Real) {
        real.fail.now = this.fails
        await real.last.flush()
        if (!this.fails) {
          for (const [k, v] of model.pending) maxInto(model.stored, k, v)
          model.pending.clear()
        }
      }
      toString = () => `flush(${this.fails ? 'fails' : 'ok'})`
    }
    class Read implements fc.AsyncCommand<Model, Real> {
      constructor(readonly sub: number) {}
      check = () => true
      async run(model: Model, real: Real) {
        const { id, tenantId } = real.subs[this.sub]!
        const stored = model.stored.get(this.sub)
        const local = model.pending.get(this.sub)
        const expected = Math.max(stored ?? 0, local ?? 0) || null
        expect((await real.last.read(tenantId, id))?.getTime() ?? null).toBe(expected)
        expect((await real.repository.lastConsumedAt(tenantId, id))?.getTime() ?? null).toBe(
          stored ?? null
        )
      }
      toString = () => `read(${this.sub})`
    }
    const sub = fc.integer({ min: 0, max: 1 })
    await fc.assert(
      fc.asyncProperty(
        fc.commands(
          [
            fc.tuple(sub, fc.integer({ min: 0, max: 1000 })).map(([s, at]) => new Seen(s, at)),
            fc.boolean().map((fails) => new Flush(fails)),
            sub.map((s) => new Read(s)),
          ],
          { maxCommands: 15 }
        ),
        async (commands) => {
          const a = await setup()
          const b = await setup()
          const fail = { now: false }
          const store: LastConsumedStore = {
            recordConsumed: (seen) =>
              fail.now ? Promise.reject(new Error('down')) : a.repository.recordConsumed(seen),
            lastConsumedAt: (t, i) => a.repository.lastConsumedAt(t, i),
          }
          const real: Real = {
            last: new LastConsumed({ store, logger }),
            subs: [
              { id: a.id, tenantId: a.tenant },
              { id: b.id, tenantId: b.tenant },
            ],
            fail,
            repository: a.repository,
          }
          await fc.asyncModelRun(
            () => ({ model: { stored: new Map(), pending: new Map() }, real }),
            commands
          )
        }
      ),
      { numRuns: 10 }
    )
  })

  test('noting is synchronous whatever the store does; a failed write is retried at the next flush', async () => {
    const { tenant, id, repository } = await setup()
    let fail = true
    let hung = 0
    const flaky: LastConsumedStore = {
      recordConsumed: (seen) => {
        if (fail) return Promise.reject(Object.assign(new Error('down'), { code: '57P01' }))
        return repository.recordConsumed(seen)
      },
      lastConsumedAt: (t, i) => repository.lastConsumedAt(t, i),
    }
    const last = new LastConsumed({ store: flaky, logger })
    last.seen({ id, tenantId: tenant }, Date.parse('2026-12-01T08:00:00.000Z'))
    await last.flush()
    expect(await repository.lastConsumedAt(tenant, id)).toBeNull()
    // Still this process's own: read shows it meanwhile.
    expect((await last.read(tenant, id))?.toISOString()).toBe('2026-12-01T08:00:00.000Z')
    fail = false
    await last.flush()
    expect((await repository.lastConsumedAt(tenant, id))?.toISOString()).toBe(
      '2026-12-01T08:00:00.000Z'
    )

    const hanging = new LastConsumed({
      store: { recordConsumed: () => new Promise(() => hung++), lastConsumedAt: async () => null },
      logger,
    })
    hanging.seen({ id, tenantId: tenant })
    void hanging.flush()
    const started = performance.now()
    for (let i = 0; i < 10_000; i++) hanging.seen({ id, tenantId: tenant })
    expect(performance.now() - started).toBeLessThan(100)
    expect(hung).toBe(1)
  })
})
