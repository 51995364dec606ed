import { afterAll, expect, test } from 'bun:test'
import { newTenant } from '../helpers/harness'
import { type Answer, drain } from './client'
import { expectValid, History, report } from './oracle'
import { reaper } from './processes'
import { startSingleService, steadyTraffic, subscribedQueues } from './stack'

afterAll(() => reaper.cleanup())

// RELIABILITY R5 freezes Redis for 10 s; 8 s here, once with SIGSTOP and once with CLIENT PAUSE.
const FREEZE_MS = 8000
const WAIT_MS = 3000

test('R5 redis frozen (SIGSTOP, CLIENT PAUSE): publish answers 503 within 2 s, nothing hangs, lost 0', async () => {
  const { redis, service, client } = await startSingleService()
  const history = new History()
  const targets = await subscribedQueues(client, [newTenant(), newTenant()], {
    name: 'jobs',
    partitionCount: 2,
    maxLength: 100_000,
  })
  const answers: Array<{ started: number; answer: Answer }> = []
  const traffic = steadyTraffic(client, history, targets, {
    prefix: 'r5',
    // A pull that timed out while Redis was frozen still runs when it thaws; what it handed
    // out comes back after the visibility timeout.
    consumer: { waitMs: WAIT_MS, visibilityTimeoutMs: 10_000 },
    producers: {
      timeoutMs: 10_000,
      onAnswer: (answer, started) => answers.push({ started, answer }),
    },
  })
  const { consumers } = traffic

  /** Runs one fault; @returns its window and how fast the consumers delivered again. */
  async function fault(name: string, begin: () => Promise<void> | void, end: () => void) {
    await Bun.sleep(2000)
    const from = Date.now()
    await begin()
    await Bun.sleep(FREEZE_MS)
    end()
    const resumedAt = Date.now()
    await Bun.sleep(3000)
    // Each consumer's first delivery after the fault, measured from its end.
    const again = consumers.map((c) => {
      const first = history.deliveries.find((d) => d.consumer === c.name && d.ts >= resumedAt)
      return first ? first.ts - resumedAt : Number.POSITIVE_INFINITY
    })
    const during = answers.filter((a) => a.started >= from && a.started < resumedAt)
    return {
      name,
      publishes: during.length,
      unavailable: during.filter((a) => a.answer.status === 503).length,
      maxPublishMs: Math.round(Math.max(0, ...during.map((a) => a.answer.ms))),
      noAnswer: during.filter((a) => a.answer.status === 0).length,
      otherStatus: during.filter((a) => ![0, 200, 201, 503].includes(a.answer.status)).length,
      maxPullMs: Math.round(
        Math.max(
          0,
          ...consumers.flatMap((c) =>
            c.pulls.filter((p) => p.at >= from - WAIT_MS && p.at < resumedAt).map((p) => p.ms)
          )
        )
      ),
      deliveringAgainMs: Math.max(...again),
    }
  }
  const sigstop = await fault(
    'SIGSTOP',
    () => redis.freeze(),
    () => redis.thaw()
  )
  const paused = await fault(
    'CLIENT PAUSE',
    async () => {
      await redis.cli('CLIENT', 'PAUSE', String(FREEZE_MS), 'ALL')
    },
    () => {}
  )
  await traffic.stop()
  const drainMs = await drain(client, history, targets)

  const figures = history.check()
  report('R5 redis hang', { ...figures, drainMs, sigstop, paused })
  expectValid(figures)
  for (const f of [sigstop, paused]) {
    expect(f.unavailable).toBeGreaterThan(0)
    expect(f.maxPublishMs).toBeLessThanOrEqual(2000)
    expect(f.noAnswer).toBe(0)
    expect(f.otherStatus).toBe(0)
    // A long poll answers within its wait, the waiter's 1 s watchdog margin and one command
    // timeout (1.5 s), with 0.5 s to spare.
    expect(f.maxPullMs).toBeLessThanOrEqual(WAIT_MS + 3000)
    // Delivering again within BLOCK (5 s) + 5 s of the end of the fault.
    expect(f.deliveringAgainMs).toBeLessThanOrEqual(10_000)
  }
  expect(service.running).toBe(true)
  expect(service.logs()).not.toMatch(/unhandled|uncaught/i)
}, 120_000)
