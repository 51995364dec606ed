import { describe, expect, test } from 'bun:test'
import { ErrorSchema } from '../../src/http/schemas/common'
import { BASE, call } from '../helpers/api'
import { newTenant, SERVICE_TOKEN, sharedDeps, testApp } from '../helpers/harness'

/**
 * A `messageId` or `Idempotency-Key` is 1–200 characters of letters, digits and `._:-/`
 * (API.md "Publishing"); anything else is 400, never ignored: an ignored key would publish a
 * client's "safe" retry twice, under two ids.
 */

const BAD_KEYS: Record<string, string> = {
  'a space': 'order 1',
  'a non-ASCII character': 'café-1',
  '201 characters': 'k'.repeat(201),
  'an empty value': '',
  'a brace': 'order-{1}',
  'a glob star': 'order-*',
  'a tab': 'order\t1',
}

async function setup() {
  const app = await testApp()
  const deps = await sharedDeps()
  const tenant = newTenant()
  expect(
    (await call(app, 'POST', `${BASE}/queues`, { tenant, body: { name: 'orders' } })).status
  ).toBe(201)
  const stored = async () =>
    (await deps.redis.xlen(deps.keys.partition(tenant, 'orders', 0, 'stream'))) +
    (await deps.redis.zcard(deps.keys.partition(tenant, 'orders', 0, 'delayed')))
  return { app, tenant, stored }
}

/** Every single-message publishing route, with a body that is valid on it. */
const ROUTES: Array<[string, Record<string, unknown>]> = [
  [`${BASE}/publish`, { queue: 'orders', payload: 1 }],
  [`${BASE}/publish/delayed`, { queue: 'orders', payload: 1, delayMs: 60_000 }],
  [
    `${BASE}/publish/scheduled`,
    { queue: 'orders', payload: 1, deliverAt: new Date(Date.now() + 3_600_000).toISOString() },
  ],
  [`${BASE}/topics/orders/publish`, { payload: 1 }],
]

describe('Idempotency-Key and messageId rules', () => {
  test('an Idempotency-Key that breaks the rules is 400 on every publishing route and stores nothing', async () => {
    const { app, tenant, stored } = await setup()
    for (const [route, body] of ROUTES) {
      for (const [what, key] of Object.entries(BAD_KEYS)) {
        const res = await call(app, 'POST', route, {
          tenant,
          body,
          headers: { 'idempotency-key': key },
        })
        expect({ route, what, status: res.status }).toEqual({ route, what, status: 400 })
        const err = ErrorSchema.parse(res.body)
        expect(err.code).toBe('MQ_VALIDATION_FAILED')
        expect(err.message).toStartWith('Idempotency-Key:')
        // The key is not echoed back.
        if (key.length > 3) expect(JSON.stringify(err)).not.toContain(key)
      }
    }
    expect(await stored()).toBe(0)
  })

  test('a body messageId that breaks the rules is 400, in single, batch and internal publishes', async () => {
    const { app, tenant, stored } = await setup()
    for (const [what, messageId] of Object.entries(BAD_KEYS)) {
      const single = await call(app, 'POST', `${BASE}/publish`, {
        tenant,
        body: { queue: 'orders', payload: 1, messageId },
      })
      expect({ what, status: single.status }).toEqual({ what, status: 400 })
      expect(single.body.code).toBe('MQ_VALIDATION_FAILED')
      const batch = await call(app, 'POST', `${BASE}/publish/batch`, {
        tenant,
        body: { queue: 'orders', messages: [{ payload: 1 }, { payload: 2, messageId }] },
      })
      expect({ what, status: batch.status }).toEqual({ what, status: 400 })
      expect(batch.body.details.index).toBe(1)
      const internal = await call(app, 'POST', '/internal/mq/user-events', {
        headers: { 'x-service-token': SERVICE_TOKEN, 'x-tenant-id': tenant },
        body: { payload: 1, messageId },
      })
      expect({ what, status: internal.status }).toEqual({ what, status: 400 })
    }
    expect(await stored()).toBe(0)
  })

  test('a key at the rules’ edges deduplicates: 200 characters of every allowed class', async () => {
    const { app, tenant, stored } = await setup()
    const key = 'Az09._:-/'.repeat(23).slice(0, 200)
    expect(key).toHaveLength(200)
    const send = () =>
      call(app, 'POST', `${BASE}/publish`, {
        tenant,
        body: { queue: 'orders', payload: 1 },
        headers: { 'idempotency-key': key },
      })
    expect((await send()).status).toBe(201)
    const again = await send()
    expect(again).toMatchObject({ status: 200, body: { messageId: key, duplicate: true } })
    const one = await call(app, 'POST', `${BASE}/publish`, {
      tenant,
      body: { queue: 'orders', payload: 1 },
      headers: { 'idempotency-key': 'k' },
    })
    expect(one.status).toBe(201)
    expect(await stored()).toBe(2)
  })

  test('the body’s messageId wins over a valid Idempotency-Key', async () => {
    const { app, tenant } = await setup()
    const res = await call(app, 'POST', `${BASE}/publish`, {
      tenant,
      body: { queue: 'orders', payload: 1, messageId: 'from-body' },
      headers: { 'idempotency-key': 'from-header' },
    })
    expect(res).toMatchObject({ status: 201, body: { messageId: 'from-body' } })
  })
})
