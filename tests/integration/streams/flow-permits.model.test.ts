/**
 * Model-based test of webhook flow control's scripts (takePermits.lua, givePermits.lua; issue
 * 25): random sequences of takes by live holders and by holders that crash (short leases never
 * given back), gives, pauses and waits, against real Redis and real time, checked after every
 * command against an in-memory model.
 *
 * Parallelism: a take grants exactly what the model says is free (a range only while a crashed
 * holder's leases may or may not have run out), the unexpired leases never exceed the limit,
 * and a crashed holder's leases stop counting once their deadline passes. Rate: over any run,
 * the tokens spent never exceed the burst plus the rate times the time elapsed plus what was
 * given back unused, and an idle bucket grants exactly its burst. Pause: a take surely inside a
 * pause gets nothing, one surely after it is not refused for it.
 */
import { describe, expect, test } from 'bun:test'
import fc from 'fast-check'
import type { Deps } from '../../../src/deps'
import { burstOf, type FlowLimits } from '../../../src/domain/flow'
import type { PermitGrant } from '../../../src/domain/ports'
import type { Subscription } from '../../../src/domain/subscriptions'
import { newTenant, sharedDeps } from '../../helpers/harness'

const LONG_LEASE_MS = 60_000
/** A crashed holder's lease: long enough to be seen held, short enough to wait out. */
const SHORT_LEASE_MS = 150
const HOLDERS = ['a', 'b', 'c'] as const
type Holder = (typeof HOLDERS)[number]

interface Model {
  limits: FlowLimits
  /** Lease ids each live holder holds: they last the whole run. */
  held: Record<Holder, string[]>
  /** Leases of crashed holders that may or may not have run out yet. */
  uncertain: number
  /** Pauses asked for: [asked no earlier than, ended no later than]. */
  pause: { start: number; end: number; ms: number } | null
  /** Rate: tokens taken, tokens given back unused, and when the first take began. */
  spent: number
  refunded: number
  firstTakeAt: number | null
  /** When tokens were last taken: the bucket is untouched since. */
  idleSince: number
}

interface Real {
  deps: Deps
  sub: Subscription
  next: number
}

const held = (m: Model) => HOLDERS.reduce((n, h) => n + m.held[h].length, 0)

async function take(
  m: Model,
  r: Real,
  want: number,
  leaseMs: number
): Promise<{ grant: PermitGrant; ids: string[]; startedAt: number; endedAt: number }> {
  const startedAt = Date.now()
  const grant = await r.deps.messages.takePermits(r.sub, {
    want,
    limits: m.limits,
    leaseMs,
    leasePrefix: 'model',
    firstLease: r.next,
    countWait: true,
  })
  const endedAt = Date.now()
  const ids = Array.from({ length: grant.granted }, (_, i) => `model:${r.next + i}`)
  r.next += grant.granted
  return { grant, ids, startedAt, endedAt }
}

/** Checks a take's grant against what the model allows. */
function expectGrant(
  m: Model,
  want: number,
  grant: PermitGrant,
  startedAt: number,
  endedAt: number
) {
  const pause = m.pause
  if (pause && endedAt < pause.start + pause.ms) {
    expect(grant).toMatchObject({ granted: 0, reason: 'paused' })
    expect(grant.waitMs).toBeLessThanOrEqual(pause.ms)
    return
  }
  const mayBePaused = pause !== null && startedAt <= pause.end + pause.ms
  if (mayBePaused && grant.reason === 'paused') return
  expect(grant.reason === 'paused').toBe(false)
  const { parallelism, rateLimitPerSecond: rate } = m.limits
  let upper = want
  let lower = want
  if (parallelism !== null) {
    upper = Math.min(upper, parallelism - held(m))
    lower = Math.min(lower, Math.max(0, parallelism - held(m) - m.uncertain))
  }
  if (rate !== null) {
    // Untouched for as long as it takes to fill, the bucket holds exactly its burst.
    const burst = burstOf(rate)
    const full = m.firstTakeAt === null || startedAt - m.idleSince >= (1000 * burst) / rate
    upper = Math.min(upper, burst)
    lower = full ? Math.min(lower, burst) : 0
  }
  expect(grant.granted).toBeGreaterThanOrEqual(Math.max(0, lower))
  expect(grant.granted).toBeLessThanOrEqual(Math.max(0, upper))
  if (grant.granted === 0) {
    expect(grant.waitMs).toBeGreaterThan(0)
    expect(grant.reason === 'parallelism' || grant.reason === 'rate').toBe(true)
  }
}

function spend(m: Model, granted: number, startedAt: number, endedAt: number) {
  if (m.limits.rateLimitPerSecond === null) return
  m.firstTakeAt ??= startedAt
  m.spent += granted
  if (granted > 0) m.idleSince = endedAt
}

/** After every command: the unexpired leases, by Redis's clock, are what the model allows. */
async function checkLeases(m: Model, r: Real) {
  const { leases } = r.deps.keys.subscriptionFlow(r.sub.tenantId, r.sub.id)
  const [seconds, micros] = await r.deps.redis.time()
  const now = Number(seconds) * 1000 + Math.floor(Number(micros) / 1000)
  const live = await r.deps.redis.zcount(leases, `(${now}`, '+inf')
  expect(live).toBeGreaterThanOrEqual(held(m))
  expect(live).toBeLessThanOrEqual(held(m) + m.uncertain)
  if (m.limits.parallelism !== null) expect(live).toBeLessThanOrEqual(m.limits.parallelism)
  const rate = m.limits.rateLimitPerSecond
  if (rate !== null && m.firstTakeAt !== null) {
    const elapsed = (Date.now() - m.firstTakeAt) / 1000
    expect(m.spent - m.refunded).toBeLessThanOrEqual(burstOf(rate) + rate * elapsed + 1e-9)
  }
}

/** A take by a live holder, or by one that is killed (`crashed`): it never gives back. */
class Take implements fc.AsyncCommand<Model, Real> {
  constructor(readonly by: { holder: Holder | 'crashed'; want: number }) {}
  check = () => true
  async run(m: Model, r: Real) {
    const { holder, want } = this.by
    const leaseMs = holder === 'crashed' ? SHORT_LEASE_MS : LONG_LEASE_MS
    const { grant, ids, startedAt, endedAt } = await take(m, r, want, leaseMs)
    expectGrant(m, want, grant, startedAt, endedAt)
    if (holder === 'crashed') m.uncertain += ids.length
    else m.held[holder].push(...ids)
    spend(m, grant.granted, startedAt, endedAt)
    await checkLeases(m, r)
  }
  toString = () => `Take(${this.by.holder}, ${this.by.want})`
}

class Give implements fc.AsyncCommand<Model, Real> {
  constructor(
    readonly holder: Holder,
    readonly n: number,
    readonly unused: boolean
  ) {}
  check = (m: Readonly<Model>) => m.held[this.holder].length > 0
  async run(m: Model, r: Real) {
    const ids = m.held[this.holder].splice(0, this.n)
    const unused = this.unused ? ids.length : 0
    await r.deps.messages.givePermits(r.sub, m.limits, { leaseIds: ids, unused, pauseMs: 0 })
    m.refunded += m.limits.rateLimitPerSecond === null ? 0 : unused
    await checkLeases(m, r)
  }
  toString = () => `Give(${this.holder}, ${this.n}${this.unused ? ', unused' : ''})`
}

class Pause implements fc.AsyncCommand<Model, Real> {
  constructor(readonly ms: number) {}
  check = (m: Readonly<Model>) => m.pause === null || Date.now() > m.pause.end + m.pause.ms
  async run(m: Model, r: Real) {
    const start = Date.now()
    await r.deps.messages.givePermits(r.sub, m.limits, {
      leaseIds: [],
      unused: 0,
      pauseMs: this.ms,
    })
    m.pause = { start, end: Date.now(), ms: this.ms }
    const figures = await r.deps.messages.flowFigures(r.sub)
    if (Date.now() < start + this.ms) expect(figures.pausedUntil).not.toBeNull()
  }
  toString = () => `Pause(${this.ms})`
}

/** Waits out every short lease (and perhaps a pause); the model forgets the crashed holders. */
class Wait implements fc.AsyncCommand<Model, Real> {
  constructor(readonly ms: number) {}
  check = () => true
  async run(m: Model, r: Real) {
    await Bun.sleep(this.ms)
    if (this.ms > SHORT_LEASE_MS + 20) m.uncertain = 0
    await checkLeases(m, r)
  }
  toString = () => `Wait(${this.ms})`
}

const commands = [
  fc
    .tuple(fc.constantFrom(...HOLDERS), fc.integer({ min: 1, max: 6 }))
    .map(([holder, want]) => new Take({ holder, want })),
  fc.integer({ min: 1, max: 4 }).map((want) => new Take({ holder: 'crashed', want })),
  fc
    .tuple(fc.constantFrom(...HOLDERS), fc.integer({ min: 1, max: 4 }), fc.boolean())
    .map(([h, n, unused]) => new Give(h, n, unused)),
  fc.constantFrom(100, 300).map((ms) => new Pause(ms)),
  fc.constantFrom(30, SHORT_LEASE_MS + 50).map((ms) => new Wait(ms)),
]

async function runModel(limits: FlowLimits, cmds: Iterable<fc.AsyncCommand<Model, Real>>) {
  const deps = await sharedDeps()
  const sub = { id: crypto.randomUUID(), tenantId: newTenant(), handlerConfig: {} } as Subscription
  const model: Model = {
    limits,
    held: { a: [], b: [], c: [] },
    uncertain: 0,
    pause: null,
    spent: 0,
    refunded: 0,
    firstTakeAt: null,
    idleSince: 0,
  }
  await fc.asyncModelRun(() => ({ model, real: { deps, sub, next: 0 } }), cmds)
}

const RUNS = Number(process.env.MODEL_RUNS ?? 15)

describe('webhook permits against a model (issue 25)', () => {
  test('a crashed holder’s leases stop counting at their deadline, and only then', async () => {
    await runModel({ parallelism: 3, rateLimitPerSecond: null }, [
      new Take({ holder: 'crashed', want: 3 }),
      new Take({ holder: 'a', want: 1 }),
      new Wait(30),
      new Take({ holder: 'a', want: 2 }),
      new Wait(SHORT_LEASE_MS + 50),
      new Take({ holder: 'a', want: 5 }),
    ])
  })

  test(
    'parallelism: leases never exceed the limit, whatever the sequence',
    async () => {
      await fc.assert(
        fc.asyncProperty(
          fc.integer({ min: 1, max: 5 }),
          fc.commands(commands, { maxCommands: 25 }),
          (parallelism, cmds) => runModel({ parallelism, rateLimitPerSecond: null }, cmds)
        ),
        { numRuns: RUNS, endOnFailure: true }
      )
    },
    { timeout: 120_000 }
  )

  test(
    'rate and parallelism together: tokens spent stay within burst + rate × time',
    async () => {
      await fc.assert(
        fc.asyncProperty(
          fc.integer({ min: 1, max: 6 }),
          fc.constantFrom(20, 50, 200),
          fc.commands(commands, { maxCommands: 25 }),
          (parallelism, rate, cmds) => runModel({ parallelism, rateLimitPerSecond: rate }, cmds)
        ),
        { numRuns: RUNS, endOnFailure: true }
      )
    },
    { timeout: 120_000 }
  )
})
