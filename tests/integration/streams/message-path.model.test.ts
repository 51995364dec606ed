/**
 * Model-based tests (fast-check commands against an in-memory model, on the real Redis) for
 * the delayed registry with two tickers, and for the trimming bound over two consumer groups.
 */
import { describe, expect, test } from 'bun:test'
import fc from 'fast-check'
import type { Deps } from '../../../src/deps'
import type { Queue } from '../../../src/domain/queues'
import { call, newTenant, readyDeps, testApp } from '../../helpers/harness'
import { storedMessage } from '../../helpers/ledger'

const PARTITIONS = 2
let runs = 0

/** A fresh queue (own keys) for each run: the model starts empty. */
async function freshQueue(): Promise<{ deps: Deps; queue: Queue }> {
  const app = await testApp()
  const deps = await readyDeps()
  const tenant = newTenant()
  const name = `m${++runs}`
  const res = await call(app, 'POST', '/api/v1/mq/queues', {
    tenant,
    body: { name, partitionCount: PARTITIONS, maxLength: 100_000 },
  })
  expect(res.status).toBe(201)
  return { deps, queue: (await deps.queueDeps.queues.get(tenant, name))! }
}

// --- delayed registry, two tickers, promotion ----------------------------------------------

interface Ticker {
  phase: 'idle' | 'read' | 'promoted'
  now: number
  seen: Array<{ member: string; generation: string }>
  next: Map<string, number>
}

interface DelayedModel {
  now: number
  /** Message id -> due time, for every message published and not yet promoted. */
  waiting: Map<string, { partition: number; due: number }>
  promoted: Set<string>
  tickers: [Ticker, Ticker]
  seq: number
  /** Messages stored by a publish that died before registering them, until a repair. */
  lost: Set<string>
}

interface DelayedReal {
  deps: Deps
  queue: Queue
}

const member = (q: Queue, p: number) => `${q.tenantId}|${q.name}|${p}`
const partKey = (
  r: DelayedReal,
  p: number,
  part: 'stream' | 'delayed' | 'delayedBodies' | 'index'
) => r.deps.keys.partition(r.queue.tenantId, r.queue.name, p, part)

async function streamIds(r: DelayedReal): Promise<string[]> {
  const out: string[] = []
  for (let p = 0; p < PARTITIONS; p++) {
    for (const [, f] of await r.deps.redis.xrange(partKey(r, p, 'stream'), '-', '+')) {
      out.push(f[f.indexOf('i') + 1]!)
    }
  }
  return out
}

/** Every partition with a waiting message has a registry entry no later than its earliest. */
async function registryCovers(m: DelayedModel, r: DelayedReal): Promise<void> {
  const { registry } = r.deps.keys.delayedRegistry
  for (let p = 0; p < PARTITIONS; p++) {
    const dues = [...m.waiting]
      .filter(([id, w]) => w.partition === p && !m.lost.has(id))
      .map(([, w]) => w.due)
    if (dues.length === 0) continue
    const score = await r.deps.redis.zscore(registry, member(r.queue, p))
    expect({ p, score: score === null ? null : Number(score) <= Math.min(...dues) }).toEqual({
      p,
      score: true,
    })
  }
}

class Publish implements fc.AsyncCommand<DelayedModel, DelayedReal> {
  /** `lost`: the publish dies between storing the message and registering it. */
  constructor(
    readonly partition: number,
    readonly delay: number,
    readonly lost = false
  ) {}
  check = () => true
  async run(m: DelayedModel, r: DelayedReal) {
    const id = `d${++m.seq}`
    const due = m.now + this.delay
    const [result] = await r.deps.messages.write(
      r.queue,
      this.partition,
      [{ dedupId: null, deliverAt: due, message: storedMessage(id, '"x"', m.now) }],
      { now: m.now, maxLength: 100_000, dedupWindowMs: 60_000 }
    )
    expect(result!.status).toBe('scheduled')
    if (this.lost) m.lost.add(id)
    else await r.deps.messages.registerDelayed(r.queue, this.partition, due)
    m.waiting.set(id, { partition: this.partition, due })
  }
  toString = () => `publish${this.lost ? 'Lost' : ''}(p${this.partition}, +${this.delay})`
}

/** The trimmer's registry repair over the queue's partitions. */
class Repair implements fc.AsyncCommand<DelayedModel, DelayedReal> {
  check = () => true
  async run(m: DelayedModel, r: DelayedReal) {
    for (let p = 0; p < PARTITIONS; p++) await r.deps.messages.repairDelayed(r.queue, p)
    m.lost.clear()
    if (m.tickers.every((x) => x.phase === 'idle')) await registryCovers(m, r)
  }
  toString = () => 'repair'
}

class Advance implements fc.AsyncCommand<DelayedModel, DelayedReal> {
  constructor(readonly ms: number) {}
  check = () => true
  async run(m: DelayedModel) {
    m.now += this.ms
  }
  toString = () => `advance(${this.ms})`
}

/** One ticker's next step: read the due entries, promote them, or settle them. */
class Step implements fc.AsyncCommand<DelayedModel, DelayedReal> {
  constructor(readonly t: 0 | 1) {}
  check = () => true
  async run(m: DelayedModel, r: DelayedReal) {
    const ticker = m.tickers[this.t]
    const { registry, generations } = r.deps.keys.delayedRegistry
    if (ticker.phase === 'idle') {
      const mine = new Set(Array.from({ length: PARTITIONS }, (_, p) => member(r.queue, p)))
      ticker.now = m.now
      ticker.seen = (await r.deps.messages.duePartitions(m.now, 100_000)).filter((d) =>
        mine.has(d.member)
      )
      ticker.phase = 'read'
    } else if (ticker.phase === 'read') {
      for (const { member: mem } of ticker.seen) {
        const p = Number(mem.split('|')[2])
        const [, next] = (await r.deps.redis.promoteDue(
          partKey(r, p, 'stream'),
          partKey(r, p, 'delayed'),
          partKey(r, p, 'delayedBodies'),
          partKey(r, p, 'index'),
          ticker.now,
          1000
        )) as number[]
        ticker.next.set(mem, Number(next))
      }
      for (const [id, w] of m.waiting) {
        if (
          w.due <= ticker.now &&
          ticker.seen.some((s) => s.member === member(r.queue, w.partition))
        ) {
          m.waiting.delete(id)
          m.promoted.add(id)
        }
      }
      ticker.phase = 'promoted'
    } else {
      for (const { member: mem, generation } of ticker.seen) {
        await r.deps.redis.settleDelayed(
          registry,
          generations,
          mem,
          generation,
          ticker.next.get(mem)!
        )
      }
      ticker.seen = []
      ticker.next.clear()
      ticker.phase = 'idle'
    }
    const inStream = await streamIds(r)
    expect(inStream.toSorted()).toEqual([...m.promoted].toSorted())
    if (m.tickers.every((x) => x.phase === 'idle')) await registryCovers(m, r)
  }
  toString = () => `ticker${this.t}.step`
}

describe('model: delayed registry with two tickers', () => {
  test('every delayed message is promoted once, never early, and never left unregistered', async () => {
    const commands = [
      fc
        // Mostly partition 0: races need several steps on one registry entry.
        .tuple(
          fc.constantFrom(0, 0, 0, 1),
          fc.integer({ min: 1, max: 30 }),
          fc.integer({ min: 0, max: 7 })
        )
        // One publish in eight dies before it registers its message.
        .map(([p, d, n]) => new Publish(p, d, n === 0)),
      fc.constant(new Repair()),
      fc.integer({ min: 20, max: 40 }).map((ms) => new Advance(ms)),
      // Ticker steps twice as often as the rest: the races are between their steps.
      fc.constantFrom<0 | 1>(0, 1).map((t) => new Step(t)),
      fc.constantFrom<0 | 1>(0, 1).map((t) => new Step(t)),
    ]
    await fc.assert(
      fc.asyncProperty(fc.commands(commands, { maxCommands: 25 }), async (cmds) => {
        const { deps, queue } = await freshQueue()
        const idle = (): Ticker => ({ phase: 'idle', now: 0, seen: [], next: new Map() })
        const model: DelayedModel = {
          now: Date.now(),
          waiting: new Map(),
          promoted: new Set(),
          tickers: [idle(), idle()],
          seq: 0,
          lost: new Set(),
        }
        const real = { deps, queue }
        await fc.asyncModelRun(() => ({ model, real }), cmds)
        // Tickers finish what they started, a repair runs, then time passes: everything gets
        // promoted.
        for (const t of [0, 1] as const) {
          while (model.tickers[t].phase !== 'idle') await new Step(t).run(model, real)
        }
        await new Repair().run(model, real)
        model.now += 1000
        for (let i = 0; i < 3; i++) await new Step(0).run(model, real)
        expect(model.waiting.size).toBe(0)
        const ids = await streamIds(real)
        expect(new Set(ids).size).toBe(ids.length)
        await deps.queueDeps.queues.remove(queue.tenantId, queue.name)
        await deps.messages.removeQueue({ ...queue, subscriptionIds: [] })
      }),
      {
        numRuns: 40,
        // Kept: the sequence of issue 21 item 5 (a settle matching a generation that had been
        // reset and counted up again), too long for random runs to meet often.
        examples: [
          [
            [
              new Publish(0, 10),
              new Advance(20),
              new Step(1),
              new Step(0),
              new Step(0),
              new Step(0),
              new Step(1),
              new Publish(0, 10),
              new Step(1),
            ] as unknown as Iterable<fc.AsyncCommand<DelayedModel, DelayedReal>>,
          ],
        ],
      }
    )
  })
})

// --- trimming bound over two groups --------------------------------------------------------

interface TrimModel {
  /** Stream ids in the stream, oldest first (what the model says must still be there or may go). */
  entries: string[]
  groups: Record<'a' | 'b', { lastDelivered: string; pending: Set<string> }>
}

const GROUPS = ['a', 'b'] as const
const cmpId = (x: string, y: string) => {
  const [xm, xs] = x.split('-').map(BigInt) as [bigint, bigint]
  const [ym, ys] = y.split('-').map(BigInt) as [bigint, bigint]
  return xm === ym ? (xs < ys ? -1 : xs > ys ? 1 : 0) : xm < ym ? -1 : 1
}

interface TrimReal {
  deps: Deps
  queue: Queue
  stream: string
}

class TPublish implements fc.AsyncCommand<TrimModel, TrimReal> {
  constructor(readonly n: number) {}
  check = () => true
  async run(m: TrimModel, r: TrimReal) {
    const now = Date.now()
    const results = await r.deps.messages.write(
      r.queue,
      0,
      Array.from({ length: this.n }, (_, i) => ({
        dedupId: null,
        deliverAt: 0,
        message: storedMessage(`t${now}-${i}-${Math.random()}`, '1', now),
      })),
      { now, maxLength: 100_000, dedupWindowMs: 60_000 }
    )
    for (const res of results) m.entries.push(res.streamId!)
  }
  toString = () => `publish(${this.n})`
}

class TPull implements fc.AsyncCommand<TrimModel, TrimReal> {
  constructor(
    readonly g: 'a' | 'b',
    readonly n: number
  ) {}
  check = () => true
  async run(m: TrimModel, r: TrimReal) {
    const reply = (await r.deps.redis.xreadgroup(
      'GROUP',
      this.g,
      'c',
      'COUNT',
      this.n,
      'STREAMS',
      r.stream,
      '>'
    )) as [string, Array<[string, string[]]>][] | null
    const got = reply?.[0]?.[1].map(([id]) => id) ?? []
    const group = m.groups[this.g]
    const expected = m.entries.filter((id) => cmpId(id, group.lastDelivered) > 0).slice(0, this.n)
    expect(got).toEqual(expected)
    for (const id of got) group.pending.add(id)
    if (got.length > 0) group.lastDelivered = got.at(-1)!
  }
  toString = () => `pull(${this.g}, ${this.n})`
}

class TAck implements fc.AsyncCommand<TrimModel, TrimReal> {
  constructor(
    readonly g: 'a' | 'b',
    readonly pick: number
  ) {}
  check = (m: Readonly<TrimModel>) => m.groups[this.g].pending.size > 0
  async run(m: TrimModel, r: TrimReal) {
    const pending = [...m.groups[this.g].pending].sort(cmpId)
    const ids = pending.filter((_, i) => (this.pick >> (i % 8)) & 1 || i === 0)
    await r.deps.redis.xack(r.stream, this.g, ...ids)
    for (const id of ids) m.groups[this.g].pending.delete(id)
  }
  toString = () => `ack(${this.g}, ${this.pick})`
}

class TSeekBack implements fc.AsyncCommand<TrimModel, TrimReal> {
  constructor(
    readonly g: 'a' | 'b',
    readonly back: number
  ) {}
  check = () => true
  async run(m: TrimModel, r: TrimReal) {
    const group = m.groups[this.g]
    const before = m.entries.filter((id) => cmpId(id, group.lastDelivered) < 0)
    const to = before.length > this.back ? before[before.length - 1 - this.back]! : '0-0'
    await r.deps.redis.xgroup('SETID', r.stream, this.g, to)
    group.lastDelivered = to
  }
  toString = () => `seekBack(${this.g}, ${this.back})`
}

class TTrim implements fc.AsyncCommand<TrimModel, TrimReal> {
  check = () => true
  async run(m: TrimModel, r: TrimReal) {
    await r.deps.messages.trimPartition(r.queue, 0, 0, 1000, 20)
    // An entry may go only once every group has read it and settled it.
    const needed = (id: string) =>
      GROUPS.some((g) => cmpId(id, m.groups[g].lastDelivered) > 0 || m.groups[g].pending.has(id))
    const firstNeeded = m.entries.findIndex(needed)
    m.entries = firstNeeded < 0 ? [] : m.entries.slice(firstNeeded)
    const left = (await r.deps.redis.xrange(r.stream, '-', '+')).map(([id]) => id)
    expect(left).toEqual(m.entries)
  }
  toString = () => 'trim'
}

describe('model: trimming bound over two groups', () => {
  test('nothing is trimmed before every group has settled it; what every group settled goes', async () => {
    const group = fc.constantFrom<'a' | 'b'>('a', 'b')
    const commands = [
      fc.integer({ min: 1, max: 4 }).map((n) => new TPublish(n)),
      fc.tuple(group, fc.integer({ min: 1, max: 3 })).map(([g, n]) => new TPull(g, n)),
      fc.tuple(group, fc.integer({ min: 0, max: 255 })).map(([g, p]) => new TAck(g, p)),
      fc.tuple(group, fc.integer({ min: 0, max: 3 })).map(([g, b]) => new TSeekBack(g, b)),
      fc.constant(new TTrim()),
    ]
    await fc.assert(
      fc.asyncProperty(fc.commands(commands, { maxCommands: 40 }), async (cmds) => {
        const { deps, queue } = await freshQueue()
        const stream = deps.keys.partition(queue.tenantId, queue.name, 0, 'stream')
        for (const g of GROUPS) await deps.redis.xgroup('CREATE', stream, g, '0', 'MKSTREAM')
        const model: TrimModel = {
          entries: [],
          groups: {
            a: { lastDelivered: '0-0', pending: new Set() },
            b: { lastDelivered: '0-0', pending: new Set() },
          },
        }
        await fc.asyncModelRun(() => ({ model, real: { deps, queue, stream } }), cmds)
        await deps.queueDeps.queues.remove(queue.tenantId, queue.name)
        await deps.messages.removeQueue({ ...queue, subscriptionIds: [] })
      }),
      {
        numRuns: 50,
        // Kept: issue 21 item 7 (a group moved back while entries are still pending in it).
        examples: [
          [
            [
              new TPublish(3),
              new TPull('a', 3),
              new TAck('a', 0),
              new TSeekBack('a', 5),
              new TPull('b', 3),
              new TAck('b', 255),
              new TTrim(),
            ] as unknown as Iterable<fc.AsyncCommand<TrimModel, TrimReal>>,
          ],
        ],
      }
    )
  })
})
