/**
 * The "bare" peer: the least an HTTP publish over Redis Streams can do in Bun + Hono, with
 * no auth, validation, metadata or dedup. It is the ceiling the service is measured against.
 * Routes mirror the service's shapes so the same load scripts and clients drive both:
 * - POST /publish {queue, payload}: one XADD;
 * - POST /publish/batch {queue, messages}: one pipelined round trip of XADDs;
 * - POST /streams/:queue/consumers/:consumer/pull {max, waitMs}: XREADGROUP (BLOCK on a
 *   connection of its own, as a long poll must not stall the shared one);
 * - POST /streams/:queue/consumers/:consumer/ack {receipts}: XACK.
 * `bare-auth.ts` is the same behind the checks of `auth.ts` on both publish routes.
 * Env: REDIS_URL, PORT.
 */
import { Redis } from 'ioredis'
import type { PublishAuth } from './auth'
import { type Peer, peerApp, requiredEnv, servePeer } from './serve'

const GROUP = 'bench'
const streamKey = (queue: string) => `bench:bare:${queue}`

type Fields = string[]
type StreamReply = Array<[string, Array<[string, Fields]>]> | null

async function ensureGroup(redis: Redis, made: Set<string>, key: string): Promise<void> {
  if (made.has(key)) return
  try {
    await redis.xgroup('CREATE', key, GROUP, '0', 'MKSTREAM')
  } catch (err) {
    if (!(err as Error).message.includes('BUSYGROUP')) throw err
  }
  made.add(key)
}

export function barePeer(redisUrl: string, auth?: PublishAuth): Peer {
  const redis = new Redis(redisUrl)
  /** Idle blocking connections, reused so a long poll does not pay for a connect. */
  const blockingPool: Redis[] = []
  const groupsMade = new Set<string>()

  const app = peerApp(auth)

  app.post('/publish', async (c) => {
    const { queue, payload } = await c.req.json<{ queue: string; payload: unknown }>()
    const id = await redis.xadd(streamKey(queue), '*', 'payload', JSON.stringify(payload))
    return c.json({ id }, 201)
  })

  app.post('/publish/batch', async (c) => {
    const { queue, messages } = await c.req.json<{
      queue: string
      messages: { payload: unknown }[]
    }>()
    const pipeline = redis.pipeline()
    for (const m of messages)
      pipeline.xadd(streamKey(queue), '*', 'payload', JSON.stringify(m.payload))
    const results = (await pipeline.exec()) ?? []
    return c.json({ published: results.length, results: results.map(([, id]) => ({ id })) }, 201)
  })

  app.post('/streams/:queue/consumers/:consumer/pull', async (c) => {
    const { queue, consumer } = c.req.param()
    const { max = 10, waitMs = 0 } = await c.req.json<{ max?: number; waitMs?: number }>()
    const key = streamKey(queue)
    await ensureGroup(redis, groupsMade, key)
    const args = ['GROUP', GROUP, consumer, 'COUNT', max] as const
    let reply: StreamReply
    if (waitMs > 0) {
      const conn = blockingPool.pop() ?? new Redis(redisUrl)
      try {
        reply = (await conn.xreadgroup(
          ...args,
          'BLOCK',
          waitMs,
          'STREAMS',
          key,
          '>'
        )) as StreamReply
      } finally {
        blockingPool.push(conn)
      }
    } else {
      reply = (await redis.xreadgroup(...args, 'STREAMS', key, '>')) as StreamReply
    }
    const entries = reply?.[0]?.[1] ?? []
    return c.json({
      messages: entries.map(([id, fields]) => ({ receipt: id, payload: JSON.parse(fields[1]!) })),
    })
  })

  app.post('/streams/:queue/consumers/:consumer/ack', async (c) => {
    const { receipts } = await c.req.json<{ receipts: string[] }>()
    const acked = await redis.xack(streamKey(c.req.param('queue')), GROUP, ...receipts)
    return c.json({ acked })
  })

  return {
    app,
    close: () => {
      redis.disconnect()
      for (const conn of blockingPool) conn.disconnect()
    },
  }
}

if (import.meta.main) servePeer(barePeer(requiredEnv('REDIS_URL')))
