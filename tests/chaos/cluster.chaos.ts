import { afterAll, expect, test } from 'bun:test'
import { Cluster } from 'ioredis'
import { Keys } from '../../src/streams/keys'
import { startRedisCluster } from '../helpers/cluster'
import { newTenant } from '../helpers/harness'
import { Consumer, drain, produce, queueWithSubscription, until } from './client'
import { expectValid, History, report } from './oracle'
import { chaosDatabase, reaper, ServiceProcess, serviceEnv } from './processes'
import { adminClient, outgoing } from './stack'

afterAll(() => reaper.cleanup())

const PARTITIONS = 12
const MESSAGES = 600
const keys = new Keys('mq')

/** Which master (by port) serves each key, from CLUSTER KEYSLOT and CLUSTER SLOTS. */
async function ownerPorts(cluster: Cluster, names: string[]): Promise<number[]> {
  const ranges = await cluster.cluster('SLOTS')
  return Promise.all(
    names.map(async (name) => {
      const slot = Number(await cluster.cluster('KEYSLOT', name))
      return ranges.find(([from, to]) => slot >= from && slot <= to)![2]![1]
    })
  )
}

test('Redis Cluster of three masters: publish, consume, delayed, dead letters and webhooks, partitions spread, no CROSSSLOT', async () => {
  const database = await chaosDatabase()
  if (!database.shared) {
    console.log('cluster case skipped: an api and a worker process need PostgreSQL (TEST_PG_URL)')
    return
  }
  const redis = await startRedisCluster(reaper.tempDir('cluster'))
  for (const server of redis.servers) reaper.track(server.pid)
  const env = serviceEnv(redis, database, { WEBHOOK_ALLOWED_HOSTS: '127.0.0.1' })
  const api = new ServiceProcess('api', 'api', env)
  const worker = new ServiceProcess('worker', 'worker', env)
  await Promise.all([api.start(), worker.start()])
  const client = adminClient(() => api.url)
  const inspector = new Cluster(redis.nodes)
  inspector.on('error', () => {})
  reaper.onCleanup(async () => inspector.disconnect())

  // A loopback webhook receiver that records what it is sent and acknowledges it.
  const history = new History()
  const receiver = Bun.serve({
    hostname: '127.0.0.1',
    port: 0,
    async fetch(req) {
      const body = (await req.json()) as { id?: string }
      const messageId = req.headers.get('webhook-id') ?? ''
      history.deliver({
        messageId,
        deliveryCount: Number(req.headers.get('x-mq-delivery-count')),
        consumer: 'webhook',
        ts: Date.now(),
        intact: body.id === messageId,
      })
      return new Response(null, { status: 204 })
    },
  })
  reaper.onCleanup(async () => receiver.stop(true))

  const tenant = newTenant()
  const pulled = {
    tenant,
    queue: 'spread',
    subscriptionId: await queueWithSubscription(
      client,
      tenant,
      { name: 'spread', partitionCount: PARTITIONS, maxLength: 100_000 },
      { maxRetryAttempts: 2, retryDelayMs: 100, retryBackoff: 'fixed' }
    ),
  }
  const pushed = {
    tenant,
    queue: 'hooks',
    subscriptionId: await queueWithSubscription(
      client,
      tenant,
      { name: 'hooks', partitionCount: 3, maxLength: 100_000 },
      {
        consumerGroup: 'hooks',
        subscriptionType: 'webhook',
        handlerConfig: { url: `http://127.0.0.1:${receiver.port}/hook` },
      }
    ),
  }
  const owners = await ownerPorts(
    inspector,
    Array.from({ length: PARTITIONS }, (_, p) => keys.partition(tenant, 'spread', p, 'stream'))
  )
  const masters = new Set(owners).size

  // One in five delayed, one in fifty always refused by the consumer (to the dead letters).
  const isPoison = (id: string) => Number(id.split('-')[1]) % 50 === 3
  const consumers = [1, 2].map((n) =>
    new Consumer({
      client,
      ...pulled,
      name: `c${n}`,
      max: 50,
      handle: (m) => (isPoison(m.messageId) ? 'nack' : 'ack'),
      onDelivery: (record) => history.deliver(record),
    }).start()
  )
  const delayed = (i: number) => (i % 5 === 0 ? { delayMs: 200 + (i % 9) * 200 } : undefined)
  await Promise.all([
    produce(client, history, outgoing('pull', [pulled], { count: MESSAGES, extra: delayed }), {
      concurrency: 6,
    }),
    produce(client, history, outgoing('push', [pushed], { count: MESSAGES / 3, extra: delayed }), {
      concurrency: 3,
    }),
  ])
  await Promise.all(consumers.map((c) => c.stop()))
  await drain(client, history, [pulled], {
    handle: (m) => (isPoison(m.messageId) ? 'nack' : 'ack'),
  })
  const pushedIds = [...history.ids('ok')].filter((id) => id.startsWith('push-'))
  await until(
    () => {
      const delivered = history.byMessage()
      return pushedIds.every((id) => delivered.has(id))
    },
    'every webhook delivery',
    30_000,
    100
  )

  // Reads that touch every partition at once: stats, a message by id, a peek.
  const stats = await client.must(tenant, 'GET', '/queues/spread', undefined, 200)
  const found = await client.call(tenant, 'GET', '/messages/pull-1?queue=spread')
  const peek = await client.call(tenant, 'GET', '/queues/spread.dlq/messages?limit=10')
  const figures = history.check()
  const poison = [...history.publishes.keys()].filter(
    (id) => id.startsWith('pull-') && isPoison(id)
  )

  // Deleting the queue removes its keys from every master.
  await client.must(tenant, 'DELETE', '/queues/spread', undefined, 204)
  let left = 0
  for (const node of inspector.nodes('master')) {
    left += (await node.keys(`mq:{${tenant}:spread:*`)).length
  }
  const crossSlot = (api.logs() + worker.logs()).match(/CROSSSLOT/g)?.length ?? 0
  report('Cluster (3 masters)', {
    ...figures,
    partitions: PARTITIONS,
    masters,
    webhook: history.deliveries.filter((d) => d.consumer === 'webhook').length,
    deadLettered: figures.deadLettered,
    keysLeftAfterDelete: left,
    crossSlot,
  })
  expectValid(figures)
  expect(masters).toBeGreaterThanOrEqual(2)
  expect(stats.stats).toMatchObject({ pending: 0, scheduled: 0 })
  expect(found.status).toBe(200)
  expect(peek.status).toBe(200)
  expect(figures.deadLettered).toBe(poison.length)
  expect(left).toBe(0)
  expect(crossSlot).toBe(0)
}, 150_000)
