/**
 * Webhook flow control across real worker processes (issue 25): three workers push one
 * subscription limited to 50 requests a second and 5 at once, measured at a loopback receiver
 * that records arrival times and the requests it holds open; another subscription's drain
 * rate is measured alone and meanwhile; and a receiver answering 429 with Retry-After: 2 holds
 * its whole subscription, across the three processes, for about two seconds, after which the
 * deliveries resume by themselves.
 */
import { afterAll, expect, test } from 'bun:test'
import { burstOf } from '../../src/domain/flow'
import { newTenant } from '../helpers/harness'
import { type MqClient, until } from './client'
import { report } from './oracle'
import { ChaosRedis, chaosDatabase, reaper, ServiceProcess, serviceEnv } from './processes'
import { type Hit, receiver } from './receiver'
import { adminClient, webhook } from './stack'

afterAll(() => reaper.cleanup())

const WORKERS = 3
const RATE = 50
const PARALLELISM = 5
const LIMITED = 400

/** An api and three workers on one Redis; undefined without PostgreSQL. */
async function stack() {
  const redis = await ChaosRedis.start({ fsync: 'everysec' })
  const database = await chaosDatabase()
  if (!database.shared) return undefined
  const env = serviceEnv(redis, database, { WEBHOOK_ALLOWED_HOSTS: '127.0.0.1' })
  const api = new ServiceProcess('api', 'flow-api', env)
  const workers = Array.from(
    { length: WORKERS },
    (_, i) => new ServiceProcess('worker', `flow-worker-${i + 1}`, env)
  )
  await Promise.all([api, ...workers].map((p) => p.start()))
  return adminClient(() => api.url)
}

/** Publishes `count` messages to `queue` in batches of 100. */
async function publishMany(client: MqClient, tenant: string, queue: string, count: number) {
  for (let i = 0; i < count; i += 100) {
    const messages = Array.from({ length: Math.min(100, count - i) }, (_, j) => ({
      payload: { n: i + j },
    }))
    await client.must(tenant, 'POST', '/publish/batch', { queue, messages }, 201)
  }
}

/** The most hits that arrived within any `windowMs`. */
function busiestWindow(hits: Hit[], windowMs: number): number {
  let most = 0
  for (let i = 0, j = 0; j < hits.length; j++) {
    while (hits[j]!.at - hits[i]!.at >= windowMs) i++
    most = Math.max(most, j - i + 1)
  }
  return most
}

/** The median of three drain rates of 400 messages: one drain is a fraction of a second. */
async function medianDrainRate(client: MqClient, tenant: string, hits: Hit[]): Promise<number> {
  const rates: number[] = []
  for (let i = 0; i < 3; i++) rates.push(await drainRate(client, tenant, hits, 400))
  return rates.toSorted((a, b) => a - b)[1]!
}

/** Messages a second the `other` receiver got over a drain of `count` published at once. */
async function drainRate(
  client: MqClient,
  tenant: string,
  hits: Hit[],
  count: number
): Promise<number> {
  const before = hits.length
  const started = Date.now()
  await publishMany(client, tenant, 'other', count)
  await until(() => hits.length >= before + count, 'the other subscription drained', 20_000, 5)
  return Math.round((count * 1000) / (hits.at(-1)!.at - started))
}

test('webhook flow control (issue 25) holds across three worker processes', async () => {
  const client = await stack()
  if (!client) {
    console.log(
      'webhook flow control skipped: api and worker processes need PostgreSQL (TEST_PG_URL)'
    )
    return
  }
  const tenant = newTenant()

  // The limited receiver holds each request 20–150 ms: at times parallelism binds, at times rate.
  let open = 0
  let peakOpen = 0
  const limited = receiver(async () => {
    open++
    peakOpen = Math.max(peakOpen, open)
    await Bun.sleep(20 + Math.random() * 130)
    open--
    return new Response('ok')
  })
  const other = receiver()
  const { id: limitedId } = await webhook(client, tenant, 'limited', {
    url: limited.url,
    rateLimitPerSecond: RATE,
    parallelism: PARALLELISM,
  })
  await webhook(client, tenant, 'other', { url: other.url })

  // The other subscription alone (the first drain starts the dispatchers), then meanwhile.
  await drainRate(client, tenant, other.hits, 200)
  const alone = await medianDrainRate(client, tenant, other.hits)

  const started = Date.now()
  await publishMany(client, tenant, 'limited', LIMITED)
  await until(() => limited.hits.length >= 50, 'the limited deliveries to start', 10_000, 10)
  const meanwhile = await medianDrainRate(client, tenant, other.hits)
  const limitedStillRunning = limited.hits.length < LIMITED
  const midway = await client.must(tenant, 'GET', `/subscriptions/${limitedId}`, undefined, 200)
  await until(() => limited.hits.length >= LIMITED, 'every limited delivery', 30_000, 20)
  const limitedSeconds = (limited.hits.at(-1)!.at - started) / 1000
  const busiest = busiestWindow(limited.hits, 1000)

  // A 429 with Retry-After: 2 on the 20th delivery of a steady flow, 30 messages a second.
  let pausedAt = 0
  const paused = receiver((n, hit) => {
    if (n !== 20) return new Response('ok')
    pausedAt = hit.at
    return new Response('', { status: 429, headers: { 'retry-after': '2' } })
  })
  await webhook(client, tenant, 'paused', { url: paused.url })
  await publishMany(client, tenant, 'paused', 1)
  await until(() => paused.hits.length === 1, 'the paused subscription to start', 10_000, 10)
  for (let i = 0; i < 40; i++) {
    await publishMany(client, tenant, 'paused', 3)
    await Bun.sleep(100)
  }
  await until(() => paused.hits.length >= 122, 'every paused delivery and the retry', 15_000, 20)
  // Requests already on their way when the 429 came may still arrive, and a process looks up
  // an unlimited subscription's pause every 50 ms; nothing starts after that.
  const inFlightAt429 = paused.hits.filter((h) => h.at > pausedAt && h.at <= pausedAt + 150)
  const duringPause = paused.hits.filter((h) => h.at > pausedAt + 150 && h.at < pausedAt + 1950)
  const resumed = paused.hits.find((h) => h.at >= pausedAt + 1950)
  const resumedAfterMs = resumed ? resumed.at - pausedAt : null

  report('webhook flow control', {
    workers: WORKERS,
    limit: { rate: RATE, burst: burstOf(RATE), parallelism: PARALLELISM },
    limitedDeliveries: limited.hits.length,
    limitedSeconds: Math.round(limitedSeconds * 10) / 10,
    meanRate: Math.round((LIMITED / limitedSeconds) * 10) / 10,
    busiestSecond: busiest,
    peakOpen,
    midwayFlow: midway.stats.flow,
    otherAloneRate: alone,
    otherMeanwhileRate: meanwhile,
    pause: { inFlightAt429: inFlightAt429.length, during: duringPause.length, resumedAfterMs },
  })
  expect(peakOpen).toBeLessThanOrEqual(PARALLELISM)
  // A token bucket lets at most burst + rate × t through in any t; a request's trip to the
  // receiver may shift its arrival by a few ms, hence one more.
  expect(busiest).toBeLessThanOrEqual(RATE + burstOf(RATE) + 1)
  expect(LIMITED / limitedSeconds).toBeLessThanOrEqual(RATE * 1.05)
  expect(midway.stats.flow).toMatchObject({ rateLimitPerSecond: RATE, parallelism: PARALLELISM })
  expect(midway.stats.flow.inFlight).toBeLessThanOrEqual(PARALLELISM)
  // The other subscription drains as fast as alone, within the noise of a shared two-core
  // machine (one drain of 400 takes a fifth of a second).
  expect(limitedStillRunning).toBe(true)
  expect(meanwhile).toBeGreaterThanOrEqual(alone * 0.75)
  expect(duringPause).toHaveLength(0)
  expect(resumedAfterMs).not.toBeNull()
  expect(resumedAfterMs!).toBeLessThan(2700)
}, 90_000)
