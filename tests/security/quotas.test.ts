import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { createApp } from '../../src/app'
import { buildDeps, type Deps } from '../../src/deps'
import { createLogger } from '../../src/observability/logger'
import { call, newTenant, sharedDeps, testApp, testConfig, testResolver } from '../helpers/harness'

/*
 * Issue 20 items 5 and 6: TENANT_MAX_QUEUES holds under concurrent creates, and a tenant at
 * its limit can still dead-letter.
 */

const BASE = '/api/v1/mq'
const Q = `${BASE}/queues`

async function cappedApp(maxQueuesPerTenant: number) {
  const deps = await sharedDeps()
  return createApp({ ...deps, queueDeps: { ...deps.queueDeps, maxQueuesPerTenant } })
}

describe('TENANT_MAX_QUEUES under concurrency', () => {
  test('regression: twice the limit created at once makes exactly the limit', async () => {
    const LIMIT = 20
    const app = await cappedApp(LIMIT)
    const tenant = newTenant()
    const other = newTenant()
    const answers = await Promise.all(
      Array.from({ length: 2 * LIMIT }, (_, i) =>
        call(app, 'POST', Q, { tenant, body: { name: `q${i}` } })
      ).concat(
        // Another tenant's creates at the same time are not counted against this one.
        Array.from({ length: 5 }, (_, i) =>
          call(app, 'POST', Q, { tenant: other, body: { name: `o${i}` } })
        )
      )
    )
    const mine = answers.slice(0, 2 * LIMIT)
    expect(mine.filter((a) => a.status === 201)).toHaveLength(LIMIT)
    const refused = mine.filter((a) => a.status !== 201)
    expect(refused).toHaveLength(LIMIT)
    for (const r of refused) {
      expect(r.status).toBe(429)
      expect(r.body).toMatchObject({ code: 'MQ_RATE_LIMITED', retryAfter: 60 })
    }
    expect(answers.slice(2 * LIMIT).every((a) => a.status === 201)).toBe(true)
    const listed = await call(app, 'GET', `${Q}?limit=100`, { tenant })
    expect(listed.body.items).toHaveLength(LIMIT)
    // Room again after a delete, and only for one.
    // Which 20 got in is the race's choice.
    const made = mine.find((a) => a.status === 201)!.body.name as string
    expect((await call(app, 'DELETE', `${Q}/${made}`, { tenant })).status).toBe(204)
    const again = await Promise.all(
      ['x', 'y', 'z'].map((name) => call(app, 'POST', Q, { tenant, body: { name } }))
    )
    expect(again.map((a) => a.status).sort()).toEqual([201, 429, 429])
  })
})

type App = ReturnType<typeof createApp>

const subscribe = (app: App, tenant: string, body: Record<string, unknown>) =>
  call(app, 'POST', `${BASE}/subscriptions`, {
    tenant,
    body: {
      subscriptionType: 'redis_consumer',
      offsetResetPolicy: 'earliest',
      consumerName: 'c1',
      ...body,
    },
  })

const publish = (app: App, tenant: string, queue: string, payload: unknown) =>
  call(app, 'POST', `${BASE}/publish`, { tenant, body: { queue, payload } })

const pull = (app: App, tenant: string, sub: string, body: Record<string, unknown>) =>
  call(app, 'POST', `${BASE}/subscriptions/${sub}/pull`, { tenant, body })

describe('a message that runs out of attempts always has somewhere to go', () => {
  test('regression: a subscription whose dead-letter queue could not exist is 400 at create and update', async () => {
    const app = await testApp()
    const tenant = newTenant()
    for (const length of [197, 200]) {
      const name = 'q'.repeat(length)
      expect((await call(app, 'POST', Q, { tenant, body: { name } })).status).toBe(201)
      const refused = await subscribe(app, tenant, { queue: name, consumerGroup: 'g' })
      expect(refused.status).toBe(400)
      expect(refused.body.code).toBe('MQ_VALIDATION_FAILED')
      expect(refused.body.details.issues[0].path).toBe('deadLetterQueue')
      const named = await subscribe(app, tenant, {
        queue: name,
        consumerGroup: 'g',
        deadLetterQueue: 'long.dead',
      })
      expect(named.status).toBe(201)
      const path = `${BASE}/subscriptions/${named.body.id}`
      const back = await call(app, 'PUT', path, { tenant, body: { deadLetterQueue: null } })
      expect(back.status).toBe(400)
      expect(back.body.details.issues[0].path).toBe('deadLetterQueue')
      expect((await call(app, 'GET', path, { tenant })).body.deadLetterQueue).toBe('long.dead')
    }
    // 196 characters leave room for `.dlq`.
    const fits = 'q'.repeat(196)
    expect((await call(app, 'POST', Q, { tenant, body: { name: fits } })).status).toBe(201)
    const sub = await subscribe(app, tenant, { queue: fits, consumerGroup: 'g' })
    expect(sub.status).toBe(201)
    expect(sub.body.deadLetterQueue).toBe(`${fits}.dlq`)
  })

  describe('at TENANT_MAX_QUEUES', () => {
    let deps: Deps
    let app: App
    beforeAll(async () => {
      // The shared deps' key prefix: the run's other tests (the all-tenant metrics) see these
      // queues in PostgreSQL and must find their streams in Redis.
      const { config } = await sharedDeps()
      deps = await buildDeps(
        testConfig({ TENANT_MAX_QUEUES: '1', REDIS_KEY_PREFIX: config.REDIS_KEY_PREFIX }),
        createLogger('silent'),
        { resolveHost: testResolver }
      )
      app = createApp(deps)
    })
    afterAll(() => deps.close())

    test('regression: a tenant at its queue limit still dead-letters', async () => {
      const tenant = newTenant()
      expect((await call(app, 'POST', Q, { tenant, body: { name: 'orders' } })).status).toBe(201)
      const sub = await subscribe(app, tenant, {
        queue: 'orders',
        consumerGroup: 'g',
        maxRetryAttempts: 1,
      })
      expect(sub.status).toBe(201)
      expect((await publish(app, tenant, 'orders', { n: 1 })).status).toBe(201)
      const pulled = await pull(app, tenant, sub.body.id, { max: 10 })
      expect(pulled.body.messages).toHaveLength(1)
      const nacked = await call(app, 'POST', `${BASE}/subscriptions/${sub.body.id}/nack`, {
        tenant,
        body: { receipts: [pulled.body.messages[0].receipt] },
      })
      expect(nacked.status).toBe(200)
      expect(nacked.body).toEqual({ requeued: 0, deadLettered: 1 })
      const dead = await call(app, 'GET', `${Q}/orders.dlq/messages`, { tenant })
      expect(dead.status).toBe(200)
      // The limit still holds for the queues the tenant creates itself.
      expect((await call(app, 'POST', Q, { tenant, body: { name: 'more' } })).status).toBe(429)
    })
  })

  test('regression: a pull that fails after reading hands back what it read', async () => {
    const deps = await sharedDeps()
    const app = await testApp()
    const tenant = newTenant()
    const name = 'q'.repeat(198)
    expect((await call(app, 'POST', Q, { tenant, body: { name } })).status).toBe(201)
    const sub = await subscribe(app, tenant, {
      queue: name,
      consumerGroup: 'g',
      maxRetryAttempts: 2,
      deadLetterQueue: 'dead',
    })
    expect(sub.status).toBe(201)
    // As a subscription stored before the rule above: its dead-letter queue cannot be made,
    // so moving a dead message fails (PostgreSQL refuses the 202-character name).
    await deps.subscriptionDeps.subscriptions.update(tenant, sub.body.id, { deadLetterQueue: null })

    expect((await publish(app, tenant, name, 'doomed')).status).toBe(201)
    for (let attempt = 1; attempt <= 2; attempt++) {
      const got = await pull(app, tenant, sub.body.id, { max: 1, visibilityTimeoutMs: 1000 })
      expect(got.body.messages.map((m: { payload: unknown }) => m.payload)).toEqual(['doomed'])
      await Bun.sleep(1100)
    }
    expect((await publish(app, tenant, name, 'innocent')).status).toBe(201)
    // Reads the doomed message (out of attempts) and the innocent one, then fails to move the
    // doomed one.
    const failed = await pull(app, tenant, sub.body.id, { max: 10, visibilityTimeoutMs: 60_000 })
    expect(failed.status).toBeGreaterThanOrEqual(400)
    expect(failed.body.code).toMatch(/^MQ_/)
    // The innocent message is not hidden for the 60 s the failed pull asked for.
    const next = await pull(app, tenant, sub.body.id, { max: 10, visibilityTimeoutMs: 60_000 })
    expect(next.status).toBe(200)
    expect(next.body.messages.map((m: { payload: unknown }) => m.payload)).toEqual(['innocent'])
  })
})
