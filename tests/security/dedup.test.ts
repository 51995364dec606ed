import { describe, expect, test } from 'bun:test'
import fc from 'fast-check'
import { hashKey } from '../../src/domain/publish'
import { BASE, call } from '../helpers/api'
import { newTenant, sharedDeps, testApp } from '../helpers/harness'

/**
 * A `messageId` deduplicates per queue (API.md "Publishing"), whatever `key` each copy carries:
 * a key picks a partition, and the id must not be stored once per partition. Runs on a single
 * Redis and, in `bun run test:cluster`, on a cluster where the partitions sit on different nodes.
 */

async function setup(partitionCount = 8) {
  const app = await testApp()
  const deps = await sharedDeps()
  const tenant = newTenant()
  const name = `q${crypto.randomUUID().slice(0, 8)}`
  const created = await call(app, 'POST', `${BASE}/queues`, {
    tenant,
    body: { name, partitionCount, maxLength: 100_000 },
  })
  expect(created.status).toBe(201)
  /** Every message stored, in the streams and the delayed sets, with its partition. */
  const stored = async (count = partitionCount) => {
    const out: Array<{ partition: number; messageId: string }> = []
    for (let p = 0; p < count; p++) {
      for (const [, fields] of await deps.redis.xrange(
        deps.keys.partition(tenant, name, p, 'stream'),
        '-',
        '+'
      )) {
        out.push({ partition: p, messageId: fields[fields.indexOf('i') + 1]! })
      }
      for (const id of await deps.redis.zrange(
        deps.keys.partition(tenant, name, p, 'delayed'),
        '0',
        '-1'
      )) {
        out.push({ partition: p, messageId: id })
      }
    }
    return out
  }
  const publish = (body: Record<string, unknown>, headers: Record<string, string> = {}) =>
    call(app, 'POST', `${BASE}/publish`, { tenant, body: { queue: name, ...body }, headers })
  return { app, deps, tenant, name, stored, publish }
}

describe('messageId dedup is per queue, not per partition', () => {
  test('one messageId with keys k1..k4 on 8 partitions stores one message', async () => {
    const { publish, stored } = await setup()
    const answers = []
    for (const key of ['k1', 'k2', 'k3', 'k4']) {
      answers.push(await publish({ payload: key, key, messageId: 'order-1' }))
    }
    expect(answers.map((a) => a.status)).toEqual([201, 200, 200, 200])
    const first = answers[0]!.body
    for (const a of answers.slice(1)) {
      expect(a.body).toMatchObject({
        duplicate: true,
        messageId: 'order-1',
        partition: first.partition,
        publishedAt: first.publishedAt,
      })
    }
    expect(await stored()).toEqual([{ partition: first.partition, messageId: 'order-1' }])
  })

  test('concurrent copies with 16 different keys store one message', async () => {
    const { publish, stored } = await setup()
    const answers = await Promise.all(
      Array.from({ length: 16 }, (_, i) => publish({ payload: i, key: `key-${i}`, messageId: 'm' }))
    )
    expect(answers.filter((a) => a.status === 201)).toHaveLength(1)
    expect(answers.filter((a) => a.status === 200 && a.body.duplicate)).toHaveLength(15)
    expect(await stored()).toHaveLength(1)
  })

  test('an Idempotency-Key deduplicates across keys too', async () => {
    const { publish, stored } = await setup()
    const a = await publish({ payload: 1, key: 'a' }, { 'idempotency-key': 'req-1' })
    const b = await publish({ payload: 1, key: 'b' }, { 'idempotency-key': 'req-1' })
    expect([a.status, b.status]).toEqual([201, 200])
    expect(b.body.duplicate).toBe(true)
    expect(await stored()).toHaveLength(1)
  })

  test('a delayed message and its copy under another key: one scheduled message', async () => {
    const { publish, stored } = await setup()
    const a = await publish({ payload: 1, key: 'a', messageId: 'later', delayMs: 60_000 })
    const b = await publish({ payload: 1, key: 'b', messageId: 'later', delayMs: 60_000 })
    expect([a.status, b.status]).toEqual([201, 200])
    expect(b.body).toMatchObject({ duplicate: true, status: 'scheduled' })
    expect(await stored()).toEqual([{ partition: a.body.partition, messageId: 'later' }])
  })

  test('one batch holding one id under several keys stores it once', async () => {
    const { app, tenant, name, stored } = await setup()
    const res = await call(app, 'POST', `${BASE}/publish/batch`, {
      tenant,
      body: {
        queue: name,
        messages: ['a', 'b', 'c', 'd'].map((key) => ({ payload: key, key, messageId: 'same' })),
      },
    })
    expect(res.status).toBe(201)
    expect(res.body).toMatchObject({ published: 1, duplicates: 3 })
    expect(new Set(res.body.results.map((r: { partition: number }) => r.partition)).size).toBe(1)
    expect(await stored()).toHaveLength(1)
  })

  test('a deleted queue takes its routes along: its successor routes by key', async () => {
    const { app, tenant, name, publish, stored } = await setup()
    const first = await publish({ payload: 1, key: 'k7', messageId: 'x' })
    expect(first.status).toBe(201)
    expect((await call(app, 'DELETE', `${BASE}/queues/${name}`, { tenant })).status).toBe(204)
    const again = await call(app, 'POST', `${BASE}/queues`, {
      tenant,
      body: { name, partitionCount: 2 },
    })
    expect(again.status).toBe(201)
    const res = await publish({ payload: 1, key: 'k7', messageId: 'x' })
    expect(res.status).toBe(201)
    expect(res.body.partition).toBe(hashKey('k7') % 2)
    expect(await stored(2)).toHaveLength(1)
  })

  test('model: any sequence of publishes stores each id once, and answers as the model says', async () => {
    type Model = { first: Map<string, number> }
    type Real = Awaited<ReturnType<typeof setup>>
    class Publish implements fc.AsyncCommand<Model, Real> {
      constructor(
        readonly messageId: string,
        readonly key: string | null
      ) {}
      check = () => true
      async run(model: Model, real: Real) {
        const res = await real.publish({
          payload: 1,
          messageId: this.messageId,
          ...(this.key === null ? {} : { key: this.key }),
        })
        const seen = model.first.get(this.messageId)
        if (seen === undefined) {
          expect(res.status).toBe(201)
          model.first.set(this.messageId, res.body.partition)
        } else {
          expect(res.status).toBe(200)
          expect(res.body).toMatchObject({ duplicate: true, partition: seen })
        }
        const stored = await real.stored()
        expect(stored).toHaveLength(model.first.size)
        for (const s of stored) expect(model.first.get(s.messageId)).toBe(s.partition)
      }
      toString = () => `publish(${this.messageId}, ${this.key})`
    }
    await fc.assert(
      fc.asyncProperty(
        fc.commands(
          [
            fc
              .tuple(
                fc.constantFrom('a', 'b', 'c'),
                fc.option(fc.constantFrom('k1', 'k2', 'k3', 'k4', 'k5'))
              )
              .map(([id, key]) => new Publish(id, key)),
          ],
          { maxCommands: 12 }
        ),
        async (commands) => {
          const real = await setup(4)
          await fc.asyncModelRun(() => ({ model: { first: new Map() }, real }), commands)
        }
      ),
      { numRuns: 15 }
    )
  })
})
