/**
 * The "bullmq" peer: what a Node team would pick instead of the service. The same Bun + Hono
 * routes as the bare peer, publishing with BullMQ's `Queue.add` (and `addBulk` for batches)
 * with its defaults; consumption is a BullMQ Worker, run by the bench's clients.
 * - POST /publish {queue, payload, delayMs?}
 * - POST /publish/batch {queue, messages: [{payload, delayMs?}]}
 * Env: REDIS_URL, PORT.
 */
import { Queue } from 'bullmq'
import { Hono } from 'hono'
import { Redis } from 'ioredis'

const redisUrl = process.env.REDIS_URL
if (!redisUrl) throw new Error('REDIS_URL is required')
// One connection for every Queue, as a web process would share it.
const connection = new Redis(redisUrl, { maxRetriesPerRequest: null })
const queues = new Map<string, Queue>()

function queueFor(name: string): Queue {
  let queue = queues.get(name)
  if (!queue) {
    queue = new Queue(name, { connection, prefix: 'bench:bull' })
    queues.set(name, queue)
  }
  return queue
}

interface Message {
  payload: unknown
  delayMs?: number
}

const app = new Hono()

app.get('/health', (c) => c.text('ok'))

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

const server = Bun.serve({
  hostname: '127.0.0.1',
  port: Number(process.env.PORT ?? 0),
  fetch: app.fetch,
})

process.on('SIGTERM', () => {
  void server.stop(true)
  connection.disconnect()
  process.exit(0)
})
