import { describe, expect, test } from 'bun:test'
import { ErrorSchema } from '../../src/http/schemas/common'
import { BASE, call } from '../helpers/api'
import { newTenant, testApp } from '../helpers/harness'

/**
 * Every list answers a cursor it did not hand out with 400 MQ_VALIDATION_FAILED. Before, a
 * garbage cursor gave an empty page on /queues, the first page on /schedules and 400 only on
 * /subscriptions: a client with a broken cursor stopped early or looped over page one.
 */

const GARBAGE: Record<string, string> = {
  'not base64url': '%%%not-a-cursor',
  'random text': 'garbage',
  'base64url of NULs': 'AAAA',
  'padding the service never writes': 'b3JkZXJz==',
  'a time without an id': Buffer.from('2026-01-01T00:00:00.000Z').toString('base64url'),
  'an id with a loose time': Buffer.from(`2026-01-01|${crypto.randomUUID()}`).toString('base64url'),
  'an extra field': Buffer.from(`2026-01-01T00:00:00.000Z|${crypto.randomUUID()}|x`).toString(
    'base64url'
  ),
  'a name the service refuses': Buffer.from('../etc').toString('base64url'),
}

async function setup() {
  const app = await testApp()
  const tenant = newTenant()
  for (const name of ['a', 'b', 'c']) {
    expect((await call(app, 'POST', `${BASE}/queues`, { tenant, body: { name } })).status).toBe(201)
    const sub = await call(app, 'POST', `${BASE}/subscriptions`, {
      tenant,
      body: {
        queue: name,
        consumerGroup: 'g',
        consumerName: 'c',
        subscriptionType: 'redis_consumer',
      },
    })
    expect(sub.status).toBe(201)
    const schedule = await call(app, 'POST', `${BASE}/publish/scheduled`, {
      tenant,
      body: { queue: name, payload: 1, cron: '0 8 * * *' },
    })
    expect(schedule.status).toBe(201)
  }
  return { app, tenant }
}

const LISTS = ['/queues', '/subscriptions', '/schedules']

describe('list cursors', () => {
  test('a cursor the service did not hand out is 400 on every list', async () => {
    const { app, tenant } = await setup()
    for (const list of LISTS) {
      for (const [what, cursor] of Object.entries(GARBAGE)) {
        const res = await call(app, 'GET', `${BASE}${list}?cursor=${encodeURIComponent(cursor)}`, {
          tenant,
        })
        expect({ list, what, status: res.status }).toEqual({ list, what, status: 400 })
        expect(ErrorSchema.parse(res.body).code).toBe('MQ_VALIDATION_FAILED')
      }
    }
  })

  test('one list’s cursor is not another’s: a name cursor on a time-ordered list is 400', async () => {
    const { app, tenant } = await setup()
    const page = await call(app, 'GET', `${BASE}/queues?limit=1`, { tenant })
    expect(page.body.nextCursor).toBeString()
    for (const list of ['/subscriptions', '/schedules']) {
      const res = await call(app, 'GET', `${BASE}${list}?cursor=${page.body.nextCursor}`, {
        tenant,
      })
      expect({ list, status: res.status }).toEqual({ list, status: 400 })
    }
  })

  test('the cursors each list hands out walk it whole, one item a page', async () => {
    const { app, tenant } = await setup()
    for (const list of LISTS) {
      const seen: string[] = []
      let cursor: string | null = null
      do {
        const query: string = cursor ? `&cursor=${cursor}` : ''
        const res = await call(app, 'GET', `${BASE}${list}?limit=1${query}`, { tenant })
        expect(res.status).toBe(200)
        seen.push(...res.body.items.map((i: { id: string }) => i.id))
        cursor = res.body.nextCursor
      } while (cursor !== null)
      expect({ list, n: new Set(seen).size }).toEqual({ list, n: 3 })
    }
  })
})
