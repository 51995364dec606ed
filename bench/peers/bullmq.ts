/**
 * The "bullmq" peer: what a Node team would pick instead of the service. The same Bun + Hono
 * routes as the bare peer, publishing with BullMQ's `Queue.add` (and `addBulk` for batches)
 * with its defaults; consumption is a BullMQ Worker, run by the bench's clients.
 * - POST /publish {queue, payload, delayMs?}
 * - POST /publish/batch {queue, messages: [{payload, delayMs?}]}
 * `bullmq-auth.ts` is the same behind the checks of `auth.ts` on both publish routes.
 * Env: REDIS_URL, PORT.
 */
import { Queue } from 'bullmq'
import { Redis } from 'ioredis'
import type { PublishAuth } from './auth'
import { type Peer, peerApp, requiredEnv, servePeer } from './serve'

interface Message {
  payload: unknown
  delayMs?: number
}

export function bullmqPeer(redisUrl: string, auth?: PublishAuth): Peer {
  // One connection for every Queue, as a web process would share it.
  const connection = new Redis(redisUrl, { maxRetriesPerRequest: null })
  const queues = new Map<string, Queue>()
  const queueFor = (name: string): Queue => {
    let queue = queues.get(name)
    if (!queue) {
      queue = new Queue(name, { connection, prefix: 'bench:bull' })
      queues.set(name, queue)
    }
    return queue
  }

  const app = peerApp(auth)

  app.post('/publish', async (c) => {
    const { queue, payload, delayMs } = await c.req.json<Message & { queue: string }>()
    const job = await queueFor(queue).add('message', payload, delayMs ? { delay: delayMs } : {})
    return c.json({ id: job.id }, 201)
  })

  app.post('/publish/batch', async (c) => {
    const { queue, messages } = await c.req.json<{ queue: string; messages: Message[] }>()
    const jobs = await queueFor(queue).addBulk(
      messages.map((m) => ({
        name: 'message',
        data: m.payload,
        ...(m.delayMs ? { opts: { delay: m.delayMs } } : {}),
      }))
    )
    return c.json({ published: jobs.length, results: jobs.map((j) => ({ id: j.id })) }, 201)
  })

  return { app, close: () => connection.disconnect() }
}

if (import.meta.main) servePeer(bullmqPeer(requiredEnv('REDIS_URL')))
