import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createApp } from '../../../src/app'
import { createClient, MqClientError } from '../../../src/client'
import { newTenant, sharedDeps, token } from '../../helpers/harness'

const ROOT = join(import.meta.dir, '..', '..', '..')

let server: ReturnType<typeof Bun.serve>
let baseUrl: string

beforeAll(async () => {
  server = Bun.serve({ hostname: '127.0.0.1', port: 0, fetch: createApp(await sharedDeps()).fetch })
  baseUrl = `http://127.0.0.1:${server.port}`
})

afterAll(() => server.stop(true))

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
