/**
 * `bun bench/footprint.ts [--binary dist/mq] [--idle-wait 90] [--data-dir DIR]`: the memory of
 * the zero-set-up run (issue 24). Starts `bun start` (or the binary) with no environment in a
 * fresh DATA_DIR (or DIR, kept), so on PGlite and a private redis-server, walks through the
 * README's calls once as a new tenant (queues, publish, pull, ack, nack, dead letters, delayed
 * and cron messages, a webhook, the console and the docs), then stays quiet. Prints the resident memory (VmRSS) of the whole process
 * tree: after start, at its highest (sampled every 50 ms) and once idle.
 */
import { mkdirSync, readFileSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { freePort } from '../src/local/redis-server'
import { API, ROOT, rssMb, tempDir } from './lib/infra'

const { values } = parseArgs({
  options: {
    binary: { type: 'string' },
    'idle-wait': { type: 'string', default: '90' },
    /** Kept afterwards, so a second run measures a start on an existing database. */
    'data-dir': { type: 'string' },
  },
})

/** `pid` and every process below it. */
function tree(pid: number): number[] {
  const kids = (p: number) => {
    try {
      return readFileSync(`/proc/${p}/task/${p}/children`, 'utf8').split(/\s+/).filter(Boolean)
    } catch {
      return []
    }
  }
  const all = [pid]
  for (let i = 0; i < all.length; i++) all.push(...kids(all[i]!).map(Number))
  return all
}

function treeMb(pid: number): { total: number; each: Record<string, number> } {
  const each: Record<string, number> = {}
  let total = 0
  for (const p of tree(pid)) {
    const mb = rssMb(p)
    if (Number.isNaN(mb)) continue
    let name = String(p)
    try {
      name = `${readFileSync(`/proc/${p}/comm`, 'utf8').trim()}:${p}`
    } catch {}
    each[name] = Math.round(mb)
    total += mb
  }
  return { total: Math.round(total), each }
}

const dataDir = values['data-dir'] ?? tempDir('mq-footprint-')
mkdirSync(dataDir, { recursive: true })
const port = freePort()
const origin = `http://127.0.0.1:${port}`
const command = values.binary
  ? [join(ROOT, values.binary)]
  : [process.execPath, 'run', join(ROOT, 'src/index.ts')]
const env = { PATH: process.env.PATH ?? '', HOME: dataDir, DATA_DIR: dataDir, PORT: String(port) }
const started = performance.now()
const service = Bun.spawn([...command, 'all'], {
  env,
  cwd: dataDir,
  stdout: 'ignore',
  stderr: 'inherit',
})

let peak = { total: 0, each: {} as Record<string, number> }
const sampler = setInterval(() => {
  const now = treeMb(service.pid)
  if (now.total > peak.total) peak = now
}, 50)

async function call(method: string, path: string, token: string, body?: unknown) {
  const res = await fetch(`${origin}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  })
  const text = await res.text()
  if (res.status >= 500) throw new Error(`${method} ${path}: ${res.status} ${text}`)
  return text ? JSON.parse(text) : undefined
}

try {
  for (;;) {
    if (performance.now() - started > 120_000) throw new Error('not healthy within 120 s')
    const ok = await fetch(`${origin}/health`).then(
      (r) => r.ok,
      () => false
    )
    if (ok) break
    await Bun.sleep(100)
  }
  const startMs = Math.round(performance.now() - started)
  await Bun.sleep(2000)
  const atStart = treeMb(service.pid)

  const tenant = crypto.randomUUID()
  const minted = Bun.spawnSync([...command, 'token', '--tenant', tenant], { env, cwd: dataDir })
  const token = minted.stdout.toString().trim()
  const received: string[] = []
  const receiver = Bun.serve({
    port: 0,
    hostname: '127.0.0.1',
    async fetch(req) {
      received.push(await req.text())
      return new Response(null, { status: 204 })
    },
  })

  await call('POST', `${API}/queues`, token, { name: 'tour', displayName: 'Tour' })
  await call('GET', `${API}/queues/tour`, token)
  await call('GET', `${API}/queues?limit=10`, token)
  await call('PUT', `${API}/queues/tour`, token, { description: 'a tour' })
  await call('GET', `${API}/health/ping`, token)
  await call('GET', `${API}/status`, token)
  await call('DELETE', `${API}/queues/tour`, token)

  await call('POST', `${API}/queues`, token, { name: 'orders', partitionCount: 4 })
  const sub = await call('POST', `${API}/subscriptions`, token, {
    queue: 'orders',
    consumerGroup: 'billing',
    consumerName: 'billing-1',
    subscriptionType: 'redis_consumer',
    offsetResetPolicy: 'earliest',
    maxRetryAttempts: 2,
  })
  await call('POST', `${API}/publish`, token, {
    queue: 'orders',
    payload: { total: 42 },
    key: 'customer-42',
    messageId: 'order-1',
  })
  await call('POST', `${API}/publish/batch`, token, {
    queue: 'orders',
    messages: [{ payload: { total: 7 } }, { payload: { poison: true } }],
  })
  const pulled = await call('POST', `${API}/subscriptions/${sub.id}/pull`, token, {
    max: 10,
    waitMs: 2000,
  })
  const receipts: string[] = (pulled.messages ?? pulled.items ?? []).map(
    (m: { receipt: string }) => m.receipt
  )
  await call('POST', `${API}/subscriptions/${sub.id}/ack`, token, {
    receipts: receipts.slice(0, 1),
  })
  await call('POST', `${API}/subscriptions/${sub.id}/nack`, token, {
    receipts: receipts.slice(1),
    delayMs: 0,
    reason: 'cannot parse',
  })
  await call('GET', `${API}/queues/orders.dlq/messages`, token)
  await call('POST', `${API}/queues/orders.dlq/redrive`, token, {})
  await call('GET', `${API}/messages/order-1?queue=orders`, token)
  await call('GET', `${API}/subscriptions/${sub.id}`, token)

  await call('POST', `${API}/publish/delayed`, token, {
    queue: 'orders',
    payload: { remind: true },
    delayMs: 2000,
  })
  await call('POST', `${API}/publish/scheduled`, token, {
    queue: 'orders',
    payload: { report: 'daily' },
    cron: '*/2 * * * * *',
    timezone: 'UTC',
    maxRuns: 3,
  })
  await call('POST', `${API}/subscriptions`, token, {
    queue: 'orders',
    consumerGroup: 'hooks',
    consumerName: 'hooks-1',
    subscriptionType: 'webhook',
    handlerConfig: { url: `http://127.0.0.1:${receiver.port}/orders` },
    retryDelayMs: 500,
  })
  await call('POST', `${API}/publish`, token, { queue: 'orders', payload: { pushed: true } })
  for (const path of ['/console', '/console/app.js', '/docs', '/openapi.json', '/metrics']) {
    await fetch(`${origin}${path}`).then((r) => r.arrayBuffer())
  }
  for (let i = 0; i < 100 && received.length < 3; i++) await Bun.sleep(100)
  await Bun.sleep(8000)
  const afterWalk = treeMb(service.pid)
  receiver.stop(true)

  await Bun.sleep(Number(values['idle-wait']) * 1000)
  const idle = treeMb(service.pid)
  console.log(
    JSON.stringify(
      {
        finished: new Date().toISOString(),
        command: values.binary ?? 'bun start',
        healthyMs: startMs,
        webhooksReceived: received.length,
        startMb: atStart,
        afterWalkthroughMb: afterWalk,
        peakMb: peak,
        idleMb: idle,
      },
      null,
      2
    )
  )
} finally {
  clearInterval(sampler)
  service.kill('SIGTERM')
  await service.exited
  if (!values['data-dir']) rmSync(dataDir, { recursive: true, force: true })
}
