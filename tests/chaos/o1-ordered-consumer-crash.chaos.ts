import { afterAll, expect, test } from 'bun:test'
import { newTenant, token } from '../helpers/harness'
import { drain, produce } from './client'
import { type DeliveryRecord, expectValid, History, report } from './oracle'
import { reaper } from './processes'
import {
  consumerProcesses,
  killInTurn,
  outgoing,
  redeliveredAfter,
  startSingleService,
  subscribedQueues,
} from './stack'

afterAll(() => reaper.cleanup())

// Issue 25: a consumer of an ordered subscription killed while it holds keys. 600 messages
// over 12 keys, published one at a time (so each key's publish order is known), two consumer
// processes, three kills.
const MESSAGES = 600
const KEYS = 12
const KILLS = 3
const KILL_EVERY_MS = 2500
const VISIBILITY_MS = 3000

const keyOf = (messageId: string) => `k${Number(messageId.split('-')[1]) % KEYS}`
const seqOf = (messageId: string) => Number(messageId.split('-')[1])

/**
 * Per key, its deliveries in time order must never step back to an earlier message: a
 * message of K is delivered (again) only while no later one of K has been.
 * @returns the keys where one did, with the step.
 */
function orderBreaks(deliveries: DeliveryRecord[]): string[] {
  const byKey = new Map<string, DeliveryRecord[]>()
  for (const d of deliveries) {
    const key = keyOf(d.messageId)
    byKey.set(key, [...(byKey.get(key) ?? []), d])
  }
  return [...byKey].flatMap(([key, list]) => {
    const inTime = list.toSorted((a, b) => a.ts - b.ts || seqOf(a.messageId) - seqOf(b.messageId))
    return inTime.flatMap((d, i) => {
      const before = inTime[i - 1]
      return before && seqOf(d.messageId) < seqOf(before.messageId)
        ? [`${key}: ${before.messageId} then ${d.messageId}`]
        : []
    })
  })
}

test('O1 ordered consumer kill -9 while holding keys: they resume after the visibility timeout, in order, lost 0', async () => {
  const { service, client } = await startSingleService()
  const history = new History()
  const tenant = newTenant()
  const targets = await subscribedQueues(
    client,
    [tenant],
    { name: 'orders', partitionCount: 2, maxLength: MESSAGES },
    { ordering: 'key', maxRetryAttempts: 10 }
  )
  const tokens = { [tenant]: await token(tenant, 'mq:admin') }
  const consumers = consumerProcesses(['c1', 'c2'], service, history, {
    tokens,
    subscriptions: targets,
    processingMs: [20, 100],
    max: 10,
    waitMs: 1000,
    visibilityTimeoutMs: VISIBILITY_MS,
  })
  for (const c of consumers) c.start()
  const producing = produce(
    client,
    history,
    outgoing('o1', targets, { count: MESSAGES, extra: (i) => ({ key: `k${i % KEYS}` }) }),
    { concurrency: 1, pauseMs: 15 }
  )

  const kills = await killInTurn(consumers, KILLS, KILL_EVERY_MS)
  await producing
  await Promise.all(consumers.map((c) => c.terminate()))
  const drainMs = await drain(client, history, targets)

  const figures = history.check()
  // Each key a killed consumer held comes back: its held message again, no sooner than the
  // visibility timeout allows (nothing else of the key meanwhile, which orderBreaks checks).
  const resumedMs = redeliveredAfter(kills, history)
  const breaks = orderBreaks(history.deliveries)
  report('O1 ordered consumer kill -9', {
    ...figures,
    kills: kills.length,
    heldAtKills: kills.reduce((n, k) => n + k.held.length, 0),
    resumed: resumedMs.length,
    maxResumeMs: Math.max(0, ...resumedMs),
    orderBreaks: breaks.length,
    drainMs,
  })

  expectValid(figures)
  expect(figures.ok).toBe(MESSAGES)
  expect(breaks).toEqual([])
  expect(resumedMs.length).toBeGreaterThan(0)
  expect(Math.max(...resumedMs)).toBeLessThanOrEqual(VISIBILITY_MS + 2000)
  expect(service.logs()).not.toMatch(/unhandled|uncaught/i)
}, 120_000)
