/**
 * deleteMessage.lua (removing one message, `DELETE /queues/{name}/messages/{messageId}`) on the
 * real Redis: a fast-check commands model of publishes (now or scheduled), pulls and acks of
 * two consumer groups, and deletes of any message ever published; and a race of deletes
 * against concurrent pulls. Checked: a delete is refused exactly while some group has the
 * message out, removes it otherwise (cancels it while scheduled), and a removed message is
 * never delivered; nothing else is lost.
 */
import { describe, expect, test } from 'bun:test'
import fc from 'fast-check'
import type { Removal } from '../../../src/domain/ports'
import type { Queue } from '../../../src/domain/queues'
import { queueOf, storesOf, WRITE_OPTS, writeOf } from '../../helpers/stores'

type Stores = Awaited<ReturnType<typeof storesOf>>
type Group = 'g' | 'h'
const GROUPS: Group[] = ['g', 'h']
const HOUR = 3_600_000

const pullOpts = (group: Group, max: number) => ({
  group,
  consumer: 'c',
  max,
  now: Date.now(),
  visibilityMs: HOUR,
  maxDeliveries: 100,
  deadHoldMs: 1000,
})

/** One message as the model knows it. */
interface Known {
  id: string
  scheduled: boolean
  removed: boolean
  /** Per group: not yet read, out (with its stream id), or acknowledged. */
  groups: Record<Group, 'unread' | 'out' | 'acked'>
  streamId: string | null
}

interface Model {
  seq: number
  /** In publish order, which is stream order (one partition, published at once). */
  messages: Known[]
}

interface Real {
  stores: Stores
  queue: Queue
}

class Publish implements fc.AsyncCommand<Model, Real> {
  constructor(readonly scheduled: boolean) {}
  check = () => true
  async run(m: Model, r: Real) {
    const id = `m${++m.seq}`
    const due = this.scheduled ? Date.now() + HOUR : 0
    const [result] = await r.stores.messages.write(r.queue, 0, [writeOf(id, due)], WRITE_OPTS())
    expect(result!.status).toBe(this.scheduled ? 'scheduled' : 'published')
    m.messages.push({
      id,
      scheduled: this.scheduled,
      removed: false,
      groups: { g: 'unread', h: 'unread' },
      streamId: result!.streamId,
    })
  }
  toString = () => `publish(${this.scheduled ? 'scheduled' : 'now'})`
}

class Pull implements fc.AsyncCommand<Model, Real> {
  constructor(
    readonly group: Group,
    readonly max: number
  ) {}
  check = () => true
  async run(m: Model, r: Real) {
    const got = await r.stores.messages.pull(r.queue, 0, pullOpts(this.group, this.max))
    const expected = m.messages
      .filter((k) => !k.scheduled && !k.removed && k.groups[this.group] === 'unread')
      .slice(0, this.max)
    expect(got.delivered.map((d) => d.message.messageId)).toEqual(expected.map((k) => k.id))
    for (const k of expected) k.groups[this.group] = 'out'
  }
  toString = () => `pull(${this.group}, ${this.max})`
}

class Ack implements fc.AsyncCommand<Model, Real> {
  constructor(
    readonly group: Group,
    readonly pick: number
  ) {}
  check = (m: Readonly<Model>) => m.messages.some((k) => k.groups[this.group] === 'out')
  async run(m: Model, r: Real) {
    const out = m.messages.filter((k) => k.groups[this.group] === 'out')
    const k = out[this.pick % out.length]!
    const reply = await r.stores.messages.settle(
      r.queue,
      0,
      this.group,
      'ack',
      [{ streamId: k.streamId!, deliveryCount: 1, delayMs: 0 }],
      { now: Date.now(), maxDeliveries: 100, deadHoldMs: 1000 }
    )
    expect(reply.settled).toBe(1)
    k.groups[this.group] = 'acked'
  }
  toString = () => `ack(${this.group}, #${this.pick})`
}

class Delete implements fc.AsyncCommand<Model, Real> {
  constructor(readonly pick: number) {}
  check = (m: Readonly<Model>) => m.messages.length > 0
  async run(m: Model, r: Real) {
    const k = m.messages[this.pick % m.messages.length]!
    const expected: Removal = k.removed
      ? 'absent'
      : k.scheduled
        ? 'cancelled'
        : GROUPS.some((g) => k.groups[g] === 'out')
          ? 'in_flight'
          : 'deleted'
    const removed = await r.stores.inspection.removeMessage(r.queue, k.id)
    expect(removed.outcome).toBe(expected)
    // What was deleted from the stream is handed back, for the ledger.
    expect(removed.entry?.message.messageId ?? null).toBe(expected === 'deleted' ? k.id : null)
    if (expected === 'cancelled' || expected === 'deleted') k.removed = true
    // Nothing but the removed one left: the stream and the schedule hold exactly the rest.
    const stream = await r.stores.redis.xrange(
      r.stores.keys.partition(r.queue.tenantId, r.queue.name, 0, 'stream'),
      '-',
      '+'
    )
    const inStream = stream.map(([, f]) => f[f.indexOf('i') + 1])
    expect(inStream).toEqual(m.messages.filter((x) => !x.scheduled && !x.removed).map((x) => x.id))
    const scheduled = await r.stores.redis.zrange(
      r.stores.keys.partition(r.queue.tenantId, r.queue.name, 0, 'delayed'),
      '0',
      '-1'
    )
    expect(scheduled.toSorted()).toEqual(
      m.messages
        .filter((x) => x.scheduled && !x.removed)
        .map((x) => x.id)
        .toSorted()
    )
  }
  toString = () => `delete(#${this.pick})`
}

describe('model: deleting one message against pulls and acks of two groups', () => {
  test('a delete is refused exactly while a group has the message out; a removed one never comes', async () => {
    const stores = await storesOf()
    const commands = [
      fc.boolean().map((s) => new Publish(s)),
      fc
        .tuple(fc.constantFrom<Group>('g', 'h'), fc.integer({ min: 1, max: 3 }))
        .map(([g, n]) => new Pull(g, n)),
      fc.tuple(fc.constantFrom<Group>('g', 'h'), fc.nat()).map(([g, i]) => new Ack(g, i)),
      fc.nat().map((i) => new Delete(i)),
    ]
    await fc.assert(
      fc.asyncProperty(fc.commands(commands, { maxCommands: 40 }), async (cmds) => {
        const queue = queueOf(1)
        for (const g of GROUPS) await stores.groups.ensureGroup(queue, g, 'earliest')
        await fc.asyncModelRun(
          () => ({ model: { seq: 0, messages: [] }, real: { stores, queue } }),
          cmds
        )
      }),
      { numRuns: 100 }
    )
  })
})

describe('race: deletes against concurrent pulls', () => {
  test('never loses a delivered message nor delivers a deleted one', async () => {
    const stores = await storesOf()
    const queue = queueOf(1)
    await stores.groups.ensureGroup(queue, 'g', 'earliest')
    const ids = Array.from({ length: 300 }, (_, i) => `r${i}`)
    await stores.messages.write(
      queue,
      0,
      ids.map((id) => writeOf(id)),
      WRITE_OPTS()
    )
    const delivered = new Set<string>()
    const outcomes = new Map<string, Removal>()
    let deleting = true
    const puller = async () => {
      for (;;) {
        const got = await stores.messages.pull(queue, 0, pullOpts('g', 3))
        for (const d of got.delivered) {
          expect(delivered.has(d.message.messageId)).toBe(false)
          delivered.add(d.message.messageId)
        }
        if (got.delivered.length === 0 && !deleting) return
      }
    }
    const deleter = async (mine: string[]) => {
      for (const id of mine)
        outcomes.set(id, (await stores.inspection.removeMessage(queue, id)).outcome)
    }
    const shuffled = ids.toSorted(() => Math.random() - 0.5)
    const pullers = [puller(), puller(), puller()]
    await Promise.all([0, 1, 2].map((i) => deleter(shuffled.filter((_, j) => j % 3 === i))))
    deleting = false
    await Promise.all(pullers)

    const removed = ids.filter((id) => outcomes.get(id) === 'deleted')
    const refused = ids.filter((id) => outcomes.get(id) === 'in_flight')
    // Every message is either removed (and never delivered) or delivered (and the delete refused).
    expect(removed.length + refused.length).toBe(ids.length)
    expect(removed.filter((id) => delivered.has(id))).toEqual([])
    expect(refused.filter((id) => !delivered.has(id))).toEqual([])
    expect(delivered.size).toBe(refused.length)
    // What was delivered is still there, pending for the group: nothing delivered was lost.
    const stream = stores.keys.partition(queue.tenantId, queue.name, 0, 'stream')
    expect(await stores.redis.xlen(stream)).toBe(refused.length)
    const [pending] = (await stores.redis.xpending(stream, 'g')) as [number]
    expect(pending).toBe(refused.length)
    // Both sides had their share, or the race did not race.
    expect(Math.min(removed.length, refused.length)).toBeGreaterThan(0)
  })
})
