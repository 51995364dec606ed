import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createApp } from '../../../src/app'
import { createClient, MqClientError } from '../../../src/client'
import { newTenant, SERVICE_TOKEN, sharedDeps, token } from '../../helpers/harness'

let server: ReturnType<typeof Bun.serve>
let baseUrl: string

beforeAll(async () => {
  server = Bun.serve({ hostname: '127.0.0.1', port: 0, fetch: createApp(await sharedDeps()).fetch })
  baseUrl = `http://127.0.0.1:${server.port}`
})

afterAll(() => server.stop(true))

/** A tenant's client, its queue `orders` and a pull subscription on it. */
async function setup() {
  const client = createClient(baseUrl, { auth: { token: await token(newTenant()) } })
  const mq = client.api.api.v1.mq
  const queue = await mq.queues.$post({ json: { name: 'orders', partitionCount: 2 } })
  expect(queue.status).toBe(201)
  const created = await mq.subscriptions.$post({
    json: {
      queue: 'orders',
      consumerGroup: 'billing',
      consumerName: 'b1',
      subscriptionType: 'redis_consumer',
      offsetResetPolicy: 'earliest',
      retryDelayMs: 20,
      retryBackoff: 'fixed',
    },
  })
  if (created.status !== 201) throw new Error(`subscribe answered ${created.status}`)
  return { client, subscriptionId: (await created.json()).id }
}

describe('client against a running server', () => {
  test('publish, publishBatch and a consume loop that acks, and nacks what throws', async () => {
    const { client, subscriptionId } = await setup()
    const one = await client.publish('orders', { payload: { n: 0 }, key: 'k' })
    expect(one).toMatchObject({ queue: 'orders', status: 'published' })
    const batch = await client.publishBatch(
      'orders',
      [1, 2, 3, 4].map((n) => ({ payload: { n } }))
    )
    expect(batch).toMatchObject({ queue: 'orders', published: 4, duplicates: 0 })

    const handled: number[] = []
    const errors: unknown[] = []
    let failed = false
    const controller = new AbortController()
    await client.consume(
      subscriptionId,
      async (message) => {
        const { n } = message.payload as { n: number }
        if (n === 2 && !failed) {
          failed = true
          throw new Error('transient')
        }
        handled.push(n)
        if (handled.length === 5) controller.abort()
      },
      { signal: controller.signal, waitMs: 2000, onError: (err) => errors.push(err) }
    )
    expect(handled.toSorted()).toEqual([0, 1, 2, 3, 4])
    expect(errors).toEqual([new Error('transient')])

    const stats = await client.api.api.v1.mq.subscriptions[':id'].$get({
      param: { id: subscriptionId },
    })
    if (stats.status !== 200) throw new Error(`get answered ${stats.status}`)
    expect((await stats.json()).stats).toMatchObject({
      lag: 0,
      pending: 0,
      delivered: 6,
      acked: 5,
      failed: 1,
    })
  })

  test('aborting ends a long poll at once', async () => {
    const { client, subscriptionId } = await setup()
    const controller = new AbortController()
    const start = performance.now()
    setTimeout(() => controller.abort(), 100)
    await client.consume(subscriptionId, () => undefined, {
      signal: controller.signal,
      waitMs: 20_000,
    })
    expect(performance.now() - start).toBeLessThan(2000)
  })

  test('errors are MqClientError with the contract’s code; consume rejects on a 404', async () => {
    const { client } = await setup()
    const missing = crypto.randomUUID()
    const err = await client.pull(missing).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(MqClientError)
    expect(err).toMatchObject({ status: 404, code: 'MQ_SUBSCRIPTION_NOT_FOUND' })
    expect((err as MqClientError).requestId).toBeTruthy()
    await expect(client.consume(missing, () => undefined)).rejects.toMatchObject({ status: 404 })
    const full = await client.publish('no-such-queue', { payload: 1 }).catch((e: unknown) => e)
    expect(full).toMatchObject({ status: 404, code: 'MQ_QUEUE_NOT_FOUND' })
  })

  test('a service token with a tenant works the same', async () => {
    const tenant = newTenant()
    const client = createClient(baseUrl, {
      auth: { serviceToken: SERVICE_TOKEN, tenantId: tenant },
    })
    await client.api.api.v1.mq.queues.$post({ json: { name: 'events' } })
    expect(await client.publish('events', { payload: 1 })).toMatchObject({ status: 'published' })
  })
})

const ROOT = join(import.meta.dir, '..', '..', '..')

async function tenantWithQueue() {
  const auth = { token: await token(newTenant()) }
  const mq = createClient(baseUrl, { auth })
  await mq.api.api.v1.mq.queues.$post({ json: { name: 'orders' } })
  return { mq, auth }
}

describe('mq.subscribe', () => {
  test('creates the subscription, then finds the same one; options apply on creation', async () => {
    const { mq } = await tenantWithQueue()
    const created = await mq.subscribe('orders', 'billing', { offsetResetPolicy: 'earliest' })
    expect(created).toMatchObject({
      consumerGroup: 'billing',
      consumerName: 'billing',
      subscriptionType: 'redis_consumer',
      offsetResetPolicy: 'earliest',
    })
    const again = await mq.subscribe('orders', 'billing')
    expect(again.id).toBe(created.id)
    const other = await mq.subscribe('orders', 'billing', { consumerName: 'billing-2' })
    expect(other.id).not.toBe(created.id)
    expect(other.consumerGroup).toBe('billing')

    await mq.publish('orders', { payload: { n: 1 } })
    const pulled = await mq.pull(created.id, { max: 10, waitMs: 2000 })
    expect(pulled.messages.map((m) => m.payload)).toEqual([{ n: 1 }])
  })

  test('finds a subscription beyond the first page of the queue’s list', async () => {
    const { mq } = await tenantWithQueue()
    const names = Array.from({ length: 105 }, (_, i) => `c${String(i).padStart(3, '0')}`)
    for (const name of names) await mq.subscribe('orders', 'wide', { consumerName: name })
    const last = await mq.subscribe('orders', 'wide', { consumerName: 'c104' })
    const again = await mq.subscribe('orders', 'wide', { consumerName: 'c104' })
    expect(again.id).toBe(last.id)
  })

  test('any other failure is thrown: a queue the tenant does not have', async () => {
    const { mq } = await tenantWithQueue()
    const err = await mq.subscribe('missing', 'billing').catch((e: unknown) => e)
    expect(err).toBeInstanceOf(MqClientError)
    expect((err as MqClientError).code).toBe('MQ_QUEUE_NOT_FOUND')
  })
})

describe('the client as a package', () => {
  test('another Node project and another Bun project import it by name and use it', async () => {
    const build = Bun.spawnSync(['bun', 'run', 'build:client'], { cwd: ROOT, stderr: 'pipe' })
    expect(build.exitCode).toBe(0)
    const project = mkdtempSync(join(tmpdir(), 'mq-client-user-'))
    try {
      mkdirSync(join(project, 'node_modules'))
      // What `npm install /path/to/src/client` makes of a local folder: a link.
      symlinkSync(
        join(ROOT, 'src', 'client'),
        join(project, 'node_modules', 'message-queue-client')
      )
      writeFileSync(join(project, 'package.json'), '{ "type": "module" }')
      writeFileSync(
        join(project, 'main.mjs'),
        `import { createClient, verifyWebhook } from 'message-queue-client'
const [base, token, who] = process.argv.slice(2)
const mq = createClient(base, { auth: { token } })
const sub = await mq.subscribe('orders', 'from-' + who, { offsetResetPolicy: 'earliest' })
await mq.publish('orders', { payload: { who } })
const pulled = await mq.pull(sub.id, { max: 10, waitMs: 2000 })
await mq.ack(sub.id, pulled.messages.map((m) => m.receipt))
console.log(JSON.stringify({ payloads: pulled.messages.map((m) => m.payload), verify: typeof verifyWebhook }))
`
      )
      const { auth } = await tenantWithQueue()
      for (const runtime of ['node', 'bun']) {
        const run = Bun.spawn([runtime, 'main.mjs', baseUrl, auth.token, runtime], {
          cwd: project,
          stdout: 'pipe',
          stderr: 'pipe',
        })
        const [out, err, code] = await Promise.all([
          new Response(run.stdout).text(),
          new Response(run.stderr).text(),
          run.exited,
        ])
        expect({ runtime, code, err }).toEqual({ runtime, code: 0, err: '' })
        const result = JSON.parse(out) as { payloads: unknown[]; verify: string }
        expect(result.verify).toBe('function')
        expect(result.payloads).toContainEqual({ who: runtime })
      }
    } finally {
      rmSync(project, { recursive: true, force: true })
    }
  })
})
