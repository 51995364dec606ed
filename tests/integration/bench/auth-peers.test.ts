import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { Redis } from 'ioredis'
import { publishAuth } from '../../../bench/peers/auth'
import { barePeer } from '../../../bench/peers/bare'
import { bullmqPeer } from '../../../bench/peers/bullmq'
import type { Peer } from '../../../bench/peers/serve'
import { currentInfra, JWT_SECRET, newTenant, token } from '../../helpers/harness'

// The +auth peers are the bench's fair peers for single publish (issue 23): they must do the
// checks they are credited with, or the service is compared against less work than it does.
const clusterRun = process.env.TEST_REDIS_CLUSTER === '1'

describe.skipIf(clusterRun)('bench +auth peers', () => {
  let bare: Peer
  let plain: Peer
  let bullmq: Peer
  let redis: Redis
  beforeAll(() => {
    const { redisUrl } = currentInfra()
    const auth = publishAuth(JWT_SECRET)
    bare = barePeer(redisUrl, auth)
    plain = barePeer(redisUrl)
    bullmq = bullmqPeer(redisUrl, auth)
    redis = new Redis(redisUrl)
  })
  afterAll(() => {
    for (const peer of [bare, plain, bullmq]) peer.close()
    redis.disconnect()
  })

  const post = async (peer: Peer, path: string, body: unknown, bearer?: string) => {
    const res = await peer.app.request(path, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        ...(bearer ? { authorization: `Bearer ${bearer}` } : {}),
      },
      body: JSON.stringify(body),
    })
    return res.status
  }
  const queue = () => `q-${crypto.randomUUID().slice(0, 8)}`
  const stored = (q: string) => redis.xlen(`bench:bare:${q}`)

  test('bare+auth stores a valid publish and a valid batch, one XADD a message', async () => {
    const q = queue()
    const bearer = await token(newTenant())
    expect(await post(bare, '/publish', { queue: q, payload: { a: 1 }, key: 'k' }, bearer)).toBe(
      201
    )
    const messages = [{ payload: 1 }, { payload: 2, messageId: 'm-2' }]
    expect(await post(bare, '/publish/batch', { queue: q, messages }, bearer)).toBe(201)
    expect(await stored(q)).toBe(3)
  })

  test('bare+auth refuses what a team route refuses, and stores none of it', async () => {
    const q = queue()
    const tenant = newTenant()
    const good = await token(tenant)
    const body = { queue: q, payload: { a: 1 } }
    expect(await post(bare, '/publish', body)).toBe(401)
    expect(
      await post(
        bare,
        '/publish',
        body,
        await token(tenant, 'mq:admin', { secret: 'x'.repeat(48) })
      )
    ).toBe(401)
    expect(
      await post(bare, '/publish', body, await token(tenant, 'mq:admin', { expiresIn: -60 }))
    ).toBe(401)
    expect(
      await post(
        bare,
        '/publish',
        body,
        await token(tenant, 'mq:admin', { claims: { tid: undefined } })
      )
    ).toBe(403)
    expect(await post(bare, '/publish', { ...body, queue: 'a/b' }, good)).toBe(400)
    expect(await post(bare, '/publish', { ...body, queue: 'x'.repeat(129) }, good)).toBe(400)
    expect(await post(bare, '/publish', { ...body, key: 'k'.repeat(257) }, good)).toBe(400)
    expect(await post(bare, '/publish', { ...body, messageId: 'm'.repeat(129) }, good)).toBe(400)
    const tooMany = Array.from({ length: 1001 }, () => ({ payload: 1 }))
    expect(await post(bare, '/publish/batch', { queue: q, messages: tooMany }, good)).toBe(400)
    expect(await post(bare, '/publish/batch', { queue: q, messages: [] }, good)).toBe(400)
    expect(await stored(q)).toBe(0)
  })

  test('the plain bare peer checks nothing (the ceiling)', async () => {
    const q = queue()
    expect(await post(plain, '/publish', { queue: q, payload: 1 })).toBe(201)
    expect(await stored(q)).toBe(1)
  })

  test('bullmq+auth adds a job for a valid publish and refuses a missing token', async () => {
    const q = queue()
    const bearer = await token(newTenant())
    expect(await post(bullmq, '/publish', { queue: q, payload: { a: 1 } })).toBe(401)
    expect(await post(bullmq, '/publish', { queue: q, payload: { a: 1 } }, bearer)).toBe(201)
    expect(
      await post(bullmq, '/publish/batch', { queue: q, messages: [{ payload: 2 }] }, bearer)
    ).toBe(201)
    expect(await redis.xlen(`bench:bull:${q}:events`)).toBeGreaterThan(0)
    expect(await redis.llen(`bench:bull:${q}:wait`)).toBe(2)
  })
})
