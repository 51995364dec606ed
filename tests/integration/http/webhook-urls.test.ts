import { describe, expect, test } from 'bun:test'
import { WebhookUrlGuard } from '../../../src/egress/ssrf'
import { BASE, call } from '../../helpers/api'
import { newTenant, testAppWithGuard } from '../../helpers/harness'
import { ALL_BLOCKED_URLS, ssrfResolver } from '../../helpers/ssrf-vectors'

/** The app with a guard over the SSRF stub resolver and no allowed hosts. */
async function setup() {
  const resolver = ssrfResolver()
  const app = await testAppWithGuard(new WebhookUrlGuard([], resolver))
  const tenant = newTenant()
  expect(
    (await call(app, 'POST', `${BASE}/queues`, { tenant, body: { name: 'orders' } })).status
  ).toBe(201)
  return { app, tenant, resolver }
}

const webhook = (url: string, n = 0) => ({
  queue: 'orders',
  consumerGroup: `g${n}`,
  consumerName: 'c',
  subscriptionType: 'webhook',
  handlerConfig: { url },
})

describe('webhook URLs: SSRF at create and update', () => {
  test('every blocked vector is refused at create with 400 MQ_VALIDATION_FAILED', async () => {
    const { app, tenant } = await setup()
    for (const [i, url] of ALL_BLOCKED_URLS.entries()) {
      const res = await call(app, 'POST', `${BASE}/subscriptions`, {
        tenant,
        body: webhook(url, i),
      })
      if (res.status !== 400) throw new Error(`${url}: ${res.status} ${JSON.stringify(res.body)}`)
      expect(res.body.code).toBe('MQ_VALIDATION_FAILED')
      expect(JSON.stringify(res.body.details ?? res.body.message)).toContain('handlerConfig')
    }
    const listed = await call(app, 'GET', `${BASE}/subscriptions`, { tenant })
    expect(listed.body.items).toEqual([])
  })

  test('every blocked vector is refused at update, and the stored URL stays', async () => {
    const { app, tenant } = await setup()
    const created = await call(app, 'POST', `${BASE}/subscriptions`, {
      tenant,
      body: webhook('https://public.example.test/hook'),
    })
    expect(created.status).toBe(201)
    for (const url of ALL_BLOCKED_URLS) {
      const res = await call(app, 'PUT', `${BASE}/subscriptions/${created.body.id}`, {
        tenant,
        body: { handlerConfig: { url } },
      })
      if (res.status !== 400) throw new Error(`${url}: ${res.status} ${JSON.stringify(res.body)}`)
      expect(res.body.code).toBe('MQ_VALIDATION_FAILED')
    }
    const got = await call(app, 'GET', `${BASE}/subscriptions/${created.body.id}`, { tenant })
    expect(got.body.handlerConfig.url).toBe('https://public.example.test/hook')
  })

  test('the answer names the field and the host, never how the host resolved', async () => {
    const { app, tenant } = await setup()
    const res = await call(app, 'POST', `${BASE}/subscriptions`, {
      tenant,
      body: webhook('http://metadata.example.test/latest/meta-data/'),
    })
    expect(res.status).toBe(400)
    expect(res.body.message).toBe(
      "handlerConfig.url: host 'metadata.example.test' is not an allowed webhook target"
    )
    expect(res.body.details.issues).toEqual([
      {
        path: 'handlerConfig.url',
        code: 'custom',
        message: "host 'metadata.example.test' is not an allowed webhook target",
      },
    ])
    expect(JSON.stringify(res.body)).not.toMatch(/169\.254|linkLocal|resolve/)
  })

  test('a public URL is accepted; pull subscriptions resolve nothing', async () => {
    const { app, tenant, resolver } = await setup()
    const pull = await call(app, 'POST', `${BASE}/subscriptions`, {
      tenant,
      body: {
        queue: 'orders',
        consumerGroup: 'p',
        consumerName: 'c',
        subscriptionType: 'redis_consumer',
      },
    })
    expect(pull.status).toBe(201)
    expect(resolver.lookups).toEqual([])
    const res = await call(app, 'POST', `${BASE}/subscriptions`, {
      tenant,
      body: webhook('https://public.example.test/hook'),
    })
    expect(res.status).toBe(201)
    expect(resolver.lookups).toEqual(['public.example.test'])
  })
})
