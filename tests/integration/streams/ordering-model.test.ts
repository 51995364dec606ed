/**
 * Model-based test of ordered delivery per key (issue 25): random sequences of keyed and
 * unkeyed publishes, pulls by several consumers (one at a time and side by side), acks and
 * nacks of any receipt ever handed out (with and without a delay), waits past the visibility
 * timeout (a consumer that stops processing), trims, and members leaving and joining, against
 * the real service (domain verbs over real Redis and PostgreSQL), checked after every command
 * against an in-memory model of what the ordered group holds.
 *
 * Checked throughout: a message of key K is delivered only once every earlier message of K is
 * acknowledged or dead-lettered, so no two messages of K are ever out together (even a
 * timed-out one holds K until it is delivered again and settled); a redelivery counts one up,
 * never within its visibility window or nack delay; only the current receipt settles; a dead
 * letter only after the last attempt. At the end every message is acknowledged or
 * dead-lettered, and for every key the first successful acks follow the publish order.
 */
import { describe, test } from 'bun:test'
import fc from 'fast-check'
import type { Deps } from '../../../src/deps'
import { ackMessages, pullMessages, seekSubscription } from '../../../src/domain/consume'
import type { Delivery } from '../../../src/domain/consume-pull'
import type { DomainContext } from '../../../src/domain/context'
import { publishBatch } from '../../../src/domain/publish'
import { createSubscription, deleteSubscription } from '../../../src/domain/subscription-admin'
import {
  assertModel,
  check,
  modelRunner,
  modelService,
  SettleCommand,
  Wait,
} from '../../helpers/model'

const VISIBILITY_MS = 250
const MAX_RETRY = 2
const PARTITIONS = 2
const MEMBERS = ['a', 'b', 'c'] as const
const KEYS = ['k1', 'k2', 'k3', null] as const
type Key = (typeof KEYS)[number]

interface Seen {
  key: Key
  /** Publish order. */
  index: number
  state: 'unread' | 'out' | 'acked' | 'dead'
  count: number
  member: string | null
  notBefore: number
  /** Acknowledged once already (a seek may replay it). */
  acked?: boolean
}

interface Receipt {
  receipt: string
  subscriptionId: string
  messageId: string
  count: number
}

interface Model {
  seen: Map<string, Seen>
  members: Map<string, string>
  receipts: Receipt[]
  deadLetters: Set<string>
  /** Per key, the publish index of each message as it was first acknowledged. */
  acks: Map<string, number[]>
  /** Message ids trimmed from the stream. */
  trimmed: Set<string>
}

interface Real {
  deps: Deps
  ctx: DomainContext
}

async function learnDeadLetters(m: Model, r: Real): Promise<void> {
  const dlq = await r.deps.subscriptionDeps.queues.get(r.ctx.tenantId, 'orders.dlq')
  if (!dlq) return
  for (let p = 0; p < dlq.partitionCount; p++) {
    for (const e of await r.deps.messages.readEntries(dlq, p, '0-0', 10_000)) {
      const id = e.message.messageId
      if (m.deadLetters.has(id)) continue
      m.deadLetters.add(id)
      const seen = m.seen.get(id)
      check(seen?.state === 'out', `${id} dead-lettered while ${seen?.state}`)
      check(seen.count >= MAX_RETRY, `${id} dead-lettered after ${seen.count} deliveries`)
      seen.state = 'dead'
    }
  }
}

/** Takes in what one pull returned: each must be the oldest open message of its key. */
function takeIn(m: Model, member: string, got: Delivery[], started: number, ended: number) {
  for (const d of got) {
    const seen = m.seen.get(d.messageId)
    const what = `${member} got ${d.messageId} (${seen?.key}#${seen?.index}) #${d.deliveryCount}`
    check(seen, `${what}: never published`)
    check(seen.state === 'unread' || seen.state === 'out', `${what} while ${seen.state}`)
    if (seen.state === 'out') {
      check(ended >= seen.notBefore, `${what} within its visibility window`)
      check(d.deliveryCount === seen.count + 1, `${what} after #${seen.count}`)
    } else {
      check(d.deliveryCount === 1, `${what}: a first delivery`)
    }
    if (seen.key !== null) {
      for (const [id, other] of m.seen) {
        if (id === d.messageId || other.key !== seen.key) continue
        check(other.state !== 'out', `${what} while ${id} (#${other.index}) of its key is out`)
        if (other.index < seen.index && !m.trimmed.has(id)) {
          check(
            other.state === 'acked' || other.state === 'dead',
            `${what} before ${id} (#${other.index}, ${other.state})`
          )
        }
      }
    }
    Object.assign(seen, {
      state: 'out',
      count: d.deliveryCount,
      member,
      notBefore: started + VISIBILITY_MS,
    })
    m.receipts.push({
      receipt: d.receipt,
      subscriptionId: m.members.get(member)!,
      messageId: d.messageId,
      count: d.deliveryCount,
    })
  }
}

/** Marks a message acknowledged, noting its first ack (not a replayed one's) in `acks`. */
function firstAck(m: Model, seen: Seen) {
  seen.state = 'acked'
  if (seen.key === null || seen.acked) return
  seen.acked = true
  m.acks.set(seen.key, [...(m.acks.get(seen.key) ?? []), seen.index])
}

function pull(r: Real, m: Model, member: string, max: number) {
  return pullMessages(r.deps.consumeDeps, r.ctx, m.members.get(member)!, {
    max,
    visibilityTimeoutMs: VISIBILITY_MS,
  })
}

class Publish implements fc.AsyncCommand<Model, Real> {
  constructor(readonly keys: Key[]) {}
  check = () => true
  async run(m: Model, r: Real) {
    const { results } = await publishBatch(
      r.deps.publishDeps,
      r.ctx,
      'orders',
      this.keys.map((key) => ({ payload: { key }, ...(key !== null && { key }) }))
    )
    results.forEach((res, i) => {
      m.seen.set(res.messageId, {
        key: this.keys[i]!,
        index: m.seen.size,
        state: 'unread',
        count: 0,
        member: null,
        notBefore: 0,
      })
    })
  }
  toString = () => `Publish(${this.keys.join(',')})`
}

class Pull implements fc.AsyncCommand<Model, Real> {
  constructor(
    readonly members: string[],
    readonly max: number
  ) {}
  check = (m: Readonly<Model>) => this.members.every((x) => m.members.has(x))
  async run(m: Model, r: Real) {
    const started = Date.now()
    // Side by side: a key must not go to two consumers pulling at once either.
    const got = await Promise.all(this.members.map((x) => pull(r, m, x, this.max)))
    const ended = Date.now()
    await learnDeadLetters(m, r)
    for (const [i, x] of this.members.entries()) takeIn(m, x, got[i]!, started, ended)
  }
  toString = () => `Pull(${this.members.join('+')}, ${this.max})`
}

class Settle extends SettleCommand<Model, Real> {
  async run(m: Model, r: Real) {
    const rc = m.receipts[this.pick % m.receipts.length]!
    const seen = m.seen.get(rc.messageId)!
    const alive = [...m.members.values()].includes(rc.subscriptionId)
    const current = alive && seen.state === 'out' && seen.count === rc.count
    const started = Date.now()
    const outcome = await this.settleAs(r, rc, { alive, current })
    if (outcome === null) return
    const what = `${this.mode} of ${rc.messageId} #${rc.count}`
    if (this.mode === 'ack') {
      check(outcome === 1, `${what}: the current receipt did not ack`)
      firstAck(m, seen)
    } else if (rc.count >= MAX_RETRY) {
      check(outcome === 2, `${what}: out of attempts but not dead-lettered (${outcome})`)
      await learnDeadLetters(m, r)
      check(seen.state === 'dead', `${what}: no dead letter`)
    } else {
      check(outcome === 1, `${what}: the current receipt did not requeue (${outcome})`)
      seen.notBefore = started + this.delayMs
    }
  }
}

/**
 * Seeks the group back to the start once everything is settled: the replay must keep each
 * key's order again. (A seek while a key's head is out lets that head keep its place ahead of
 * the replayed earlier messages: DECISIONS.md.)
 */
class Seek implements fc.AsyncCommand<Model, Real> {
  check = (m: Readonly<Model>) =>
    m.members.size > 0 &&
    [...m.seen.values()].every((s) => s.state === 'acked' || s.state === 'dead')
  async run(m: Model, r: Real) {
    const [subscriptionId] = m.members.values()
    await seekSubscription(r.deps.consumeDeps, r.ctx, subscriptionId!, 'earliest')
    for (const [id, seen] of m.seen) {
      if (!m.trimmed.has(id)) Object.assign(seen, { state: 'unread', count: 0, notBefore: 0 })
    }
  }
  toString = () => 'Seek(earliest)'
}

class Trim implements fc.AsyncCommand<Model, Real> {
  check = () => true
  async run(m: Model, r: Real) {
    const queue = (await r.deps.subscriptionDeps.queues.get(r.ctx.tenantId, 'orders'))!
    const left = new Set<string>()
    for (let p = 0; p < PARTITIONS; p++) {
      await r.deps.messages.trimPartition(queue, p, 0, 100, 10)
      for (const e of await r.deps.messages.readEntries(queue, p, '0-0', 10_000))
        left.add(e.message.messageId)
    }
    for (const [id, seen] of m.seen) {
      if (left.has(id)) continue
      check(seen.state === 'acked' || seen.state === 'dead', `${id} trimmed while ${seen.state}`)
      m.trimmed.add(id)
    }
  }
  toString = () => 'Trim'
}

async function join(m: Model, r: Real, member: string) {
  const { subscription } = await createSubscription(r.deps.subscriptionDeps, r.ctx, {
    queue: 'orders',
    consumerGroup: 'ordered',
    consumerName: member,
    subscriptionType: 'redis_consumer',
    offsetResetPolicy: 'earliest',
    maxRetryAttempts: MAX_RETRY,
    ordering: 'key',
  })
  m.members.set(member, subscription.id)
}

class Join implements fc.AsyncCommand<Model, Real> {
  constructor(readonly member: string) {}
  check = (m: Readonly<Model>) => !m.members.has(this.member)
  async run(m: Model, r: Real) {
    await join(m, r, this.member)
  }
  toString = () => `Join(${this.member})`
}

/** A member leaves; what it held (parked entries too) passes to a group mate (never `a`). */
class Leave implements fc.AsyncCommand<Model, Real> {
  constructor(readonly member: string) {}
  check = (m: Readonly<Model>) => m.members.has(this.member)
  async run(m: Model, r: Real) {
    await deleteSubscription(r.deps.subscriptionDeps, r.ctx, m.members.get(this.member)!)
    m.members.delete(this.member)
    for (const seen of m.seen.values()) {
      if (seen.state === 'out' && seen.member === this.member) seen.notBefore = 0
    }
  }
  toString = () => `Leave(${this.member})`
}

/** Pulls and acks with `a` until every message is settled, then checks the ack order. */
async function drain(m: Model, r: Real) {
  const until = Date.now() + 10_000
  const open = () => [...m.seen].filter(([, s]) => s.state === 'unread' || s.state === 'out')
  while (open().length > 0 && Date.now() < until) {
    const started = Date.now()
    const got = await pull(r, m, 'a', 100)
    await learnDeadLetters(m, r)
    takeIn(m, 'a', got, started, Date.now())
    if (got.length === 0) {
      await Bun.sleep(VISIBILITY_MS / 2)
      continue
    }
    await ackMessages(
      r.deps.consumeDeps,
      r.ctx,
      m.members.get('a')!,
      got.map((d) => d.receipt)
    )
    for (const d of got) {
      const seen = m.seen.get(d.messageId)!
      firstAck(m, seen)
    }
  }
  check(open().length === 0, `never settled: ${open().map(([id]) => id)}`)
  for (const [key, order] of m.acks) {
    const sorted = [...order].sort((x, y) => x - y)
    check(Bun.deepEquals(order, sorted), `${key} acknowledged out of order: ${order}`)
  }
}

async function setup(): Promise<{ model: Model; real: Real }> {
  const { deps, ctx } = await modelService(PARTITIONS, 'ordering-model')
  const model: Model = {
    seen: new Map(),
    members: new Map(),
    receipts: [],
    deadLetters: new Set(),
    acks: new Map(),
    trimmed: new Set(),
  }
  const real: Real = { deps, ctx }
  for (const member of MEMBERS) await join(model, real, member)
  return { model, real }
}

const commands = [
  fc.array(fc.constantFrom(...KEYS), { minLength: 1, maxLength: 6 }).map((k) => new Publish(k)),
  fc
    .tuple(fc.subarray([...MEMBERS], { minLength: 1 }), fc.integer({ min: 1, max: 5 }))
    .map(([members, max]) => new Pull(members, max)),
  fc
    .tuple(
      fc.constantFrom<'ack' | 'nack'>('ack', 'ack', 'ack', 'nack'),
      fc.nat(),
      fc.constantFrom(0, 100)
    )
    .map(([mode, pick, delay]) => new Settle(mode, pick, delay)),
  fc.constantFrom(60, VISIBILITY_MS + 20).map((ms) => new Wait<Model, Real>(ms)),
  fc.constant(new Trim()),
  fc.constant(new Seek()),
  fc.constantFrom('b', 'c').map((member) => new Join(member)),
  fc.constantFrom('b', 'c').map((member) => new Leave(member)),
]

const runModel = modelRunner(setup, drain)

describe('ordered delivery per key against a model (issue 25)', () => {
  test('a nacked head comes back before the later message of its key', async () => {
    await runModel([
      new Publish(['k1', 'k1', 'k2']),
      new Pull(['a', 'b'], 5),
      new Settle('nack', 0, 0),
      new Pull(['b', 'c'], 5),
      new Settle('ack', 2, 0),
      new Pull(['a'], 5),
    ])
  })

  test('a head that times out holds its key until it is delivered again', async () => {
    await runModel([
      new Publish(['k1', 'k1']),
      new Pull(['a'], 5),
      new Wait(VISIBILITY_MS + 20),
      new Pull(['b', 'c'], 5),
      new Wait(VISIBILITY_MS + 20),
      new Pull(['c'], 5),
      new Leave('b'),
      new Pull(['a', 'c'], 5),
    ])
  })

  test('a seek back once all is settled replays each key in order', async () => {
    await runModel([
      new Publish(['k1', 'k2', 'k1', null, 'k1']),
      new Pull(['a', 'b', 'c'], 5),
      new Settle('ack', 0, 0),
      new Settle('ack', 1, 0),
      new Settle('ack', 2, 0),
      new Pull(['a', 'b', 'c'], 5),
      new Settle('ack', 3, 0),
      new Pull(['c'], 5),
      new Settle('ack', 4, 0),
      new Seek(),
      new Pull(['a', 'b'], 5),
    ])
  })

  test(
    'random sequences keep every invariant',
    async () => {
      await assertModel(commands, runModel, { maxCommands: 30, runs: 12 })
    },
    { timeout: 180_000 }
  )
})
