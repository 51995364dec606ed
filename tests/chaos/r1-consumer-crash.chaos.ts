import { afterAll, expect, test } from 'bun:test'
import { newTenant, token } from '../helpers/harness'
import { drain, produce } from './client'
import { expectValid, History, report } from './oracle'
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

// RELIABILITY R1 asks for 10 000 messages over 10 tenants and 5 kills 3 s apart; scaled to
// 2 000 over 4 tenants so the chaos suite fits CI on two cores. The kills are as many.
const TENANTS = 4
const MESSAGES = 2000
const KILLS = 5
const KILL_EVERY_MS = 3000
const VISIBILITY_MS = 4000

test('R1 consumer kill -9 mid-processing: lost 0, duplicates only from what the killed held', async () => {
  const { service, client } = await startSingleService()
  const history = new History()
  const tenants = Array.from({ length: TENANTS }, newTenant)
  const targets = await subscribedQueues(client, tenants, {
    name: 'orders',
    partitionCount: 2,
    maxLength: MESSAGES,
  })
  const tokens = Object.fromEntries(
    await Promise.all(tenants.map(async (t) => [t, await token(t, 'mq:admin')]))
  )
  const consumers = consumerProcesses(['c1', 'c2', 'c3'], service, history, {
    tokens,
    subscriptions: targets,
    processingMs: [0, 50],
    max: 10,
    waitMs: 2000,
    visibilityTimeoutMs: VISIBILITY_MS,
  })
  for (const c of consumers) c.start()

  const producing = produce(client, history, outgoing('r1', targets, { count: MESSAGES }), {
    concurrency: 8,
    pauseMs: 25,
  })

  const kills = await killInTurn(consumers, KILLS, KILL_EVERY_MS)
  await producing
  await Promise.all(consumers.map((c) => c.terminate()))
  const drainMs = await drain(client, history, targets)

  const figures = history.check()
  const byMessage = history.byMessage()
  const inFlightAtKills = kills.reduce((n, k) => n + k.held.length, 0)
  // Every duplicate is a redelivery of a message a killed consumer held: each delivery after
  // a message's first has a higher count.
  const held = new Set(kills.flatMap((k) => k.held))
  const badDuplicates = [...byMessage.entries()].filter(([id, list]) => {
    if (list.length === 1) return false
    const inOrder = list.toSorted((a, b) => a.ts - b.ts)
    return (
      !held.has(id) || inOrder.slice(1).some((d, i) => d.deliveryCount <= inOrder[i]!.deliveryCount)
    )
  }).length
  const redeliveryMs = redeliveredAfter(kills, history)
  const maxRedeliveryMs = Math.max(0, ...redeliveryMs)
  report('R1 consumer kill -9', {
    ...figures,
    kills: kills.length,
    inFlightAtKills,
    redelivered: redeliveryMs.length,
    badDuplicates,
    maxRedeliveryMs,
    drainMs,
  })

  expectValid(figures)
  expect(figures.ok).toBe(MESSAGES)
  expect(inFlightAtKills).toBeGreaterThan(0)
  expect(figures.duplicated).toBeLessThanOrEqual(inFlightAtKills)
  expect(badDuplicates).toBe(0)
  // Visibility timeout plus 2 s (RELIABILITY: min-idle + reaper interval + 2 s).
  expect(maxRedeliveryMs).toBeLessThanOrEqual(VISIBILITY_MS + 2000)
  expect(service.logs()).not.toMatch(/unhandled|uncaught/i)
}, 120_000)
