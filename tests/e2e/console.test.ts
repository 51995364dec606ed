import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { type BrowserContext, chromium, type Page } from 'playwright-core'
import { createApp } from '../../src/app'
import type { LedgerWriter } from '../../src/worker/ledger-writer'
import { newTenant, sharedDeps, token } from '../helpers/harness'
import { startLedgerWriter } from '../helpers/ledger'

/**
 * The console in headless Chromium against a real server: an operator signs in, sees a queue
 * created by the API appear and its length move, redrives dead letters, opens one message's
 * timeline of attempts and redrives or deletes that one message, pauses a subscription
 * and a schedule, with a screenshot of each page in tests/e2e/screenshots/ (git-ignored).
 * Debian's chromium (`apt-get install -y chromium`; .ci/run installs it); without it the
 * test is skipped, saying so.
 */
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'
const hasChromium = existsSync(CHROMIUM)
if (!hasChromium) {
  console.warn(
    `console e2e skipped: no Chromium at ${CHROMIUM} (apt-get install -y chromium, or set CHROMIUM_PATH)`
  )
}

// The flags that keep Chromium quiet on a machine without a network: no background
// requests, no component updates, no QUIC probes.
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-quic',
  '--no-first-run',
  '--disable-component-update',
  '--disable-sync',
]

const SHOTS = join(import.meta.dir, 'screenshots')

let server: ReturnType<typeof Bun.serve>
let base: string
let profile: string
let context: BrowserContext
let page: Page
let bearer: string
let tenant: string
let ledger: LedgerWriter | undefined
const requested: string[] = []
const problems: string[] = []

/** Calls the API as the test's tenant: the parsed body (of type `T`), or a throw on a non-2xx. */
async function mq<T = unknown>(method: string, path: string, body?: unknown): Promise<T> {
  const res = await fetch(`${base}/api/v1/mq${path}`, {
    method,
    headers: { authorization: `Bearer ${bearer}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  })
  const text = await res.text()
  if (!res.ok) throw new Error(`${method} ${path} answered ${res.status}: ${text}`)
  return (text ? JSON.parse(text) : null) as T
}

const shot = (name: string) => page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true })

/** Waits until the `column`th cell (1-based) of the table row keyed `key` reads `want`. */
async function waitForCell(key: string, column: number, want: string) {
  await page
    .locator(`tr[data-key="${key}"] td:nth-child(${column})`)
    .filter({ hasText: new RegExp(`^${want}$`) })
    .waitFor({ timeout: 10_000 })
}

describe.skipIf(!hasChromium)('console in Chromium', () => {
  beforeAll(async () => {
    server = Bun.serve({
      hostname: '127.0.0.1',
      port: 0,
      fetch: createApp(await sharedDeps()).fetch,
    })
    base = `http://127.0.0.1:${server.port}`
    tenant = newTenant()
    bearer = await token(tenant, 'mq:admin', { sub: 'operator' })
    mkdirSync(SHOTS, { recursive: true })
    profile = mkdtempSync(join(tmpdir(), 'mq-console-chromium-'))
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: CHROMIUM_ARGS,
      viewport: { width: 1440, height: 900 },
    })
    context.on('request', (r) => requested.push(r.url()))
    page = context.pages()[0] ?? (await context.newPage())
    page.on('pageerror', (err) => problems.push(`page error: ${err.message}`))
    page.on('console', (m) => {
      if (m.type() === 'error') problems.push(`console: ${m.text()}`)
    })
  }, 30_000)

  afterAll(async () => {
    await ledger?.stop()
    await context?.close()
    server?.stop(true)
    if (profile) rmSync(profile, { recursive: true, force: true })
  })

  test('signs in with a token kept in session storage', async () => {
    await page.goto(`${base}/console`)
    await page.getByLabel('Token (JWT)').waitFor()
    await shot('login')
    // No blank gap between the title and the first field while nothing is wrong.
    const title = (await page.locator('#login-title').boundingBox())!
    const fieldset = (await page.locator('.login fieldset').boundingBox())!
    expect(fieldset.y - (title.y + title.height)).toBeLessThan(24)
    await page.getByLabel('Token (JWT)').fill('not-a-token')
    await page.getByRole('button', { name: 'Sign in' }).click()
    await page.getByText('The service refused these credentials').waitFor()

    await page.getByLabel('Token (JWT)').fill(bearer)
    await page.getByRole('button', { name: 'Sign in' }).click()
    await page.getByRole('heading', { name: 'Overview', level: 1 }).waitFor()
    await page.getByText('as operator').waitFor()
    expect(await page.evaluate(() => Object.keys(sessionStorage))).toEqual([
      'mq-console-credentials',
    ])
    // The wrong token's 401 is the one failed request expected.
    const refused = problems.filter((p) => p.includes('401 (Unauthorized)'))
    expect(refused).toHaveLength(1)
    problems.splice(problems.indexOf(refused[0]!), 1)
  }, 20_000)

  test('a queue created by the API appears, and its length moves as messages are published', async () => {
    await page.getByRole('link', { name: 'Queues', exact: true }).click()
    await page.getByRole('heading', { name: 'Queues', level: 1 }).waitFor()
    await mq('POST', '/queues', { name: 'orders', partitionCount: 2 })
    await page.locator('tr[data-key="orders"]').waitFor({ timeout: 10_000 })
    await waitForCell('orders', 3, '0')

    await mq('POST', '/publish/batch', {
      queue: 'orders',
      messages: [1, 2, 3].map((n) => ({ payload: { order: n, items: ['book', 'pen'] } })),
    })
    await waitForCell('orders', 3, '3')
    await shot('queues')

    await page.getByRole('link', { name: 'orders', exact: true }).click()
    await page.getByRole('heading', { name: 'orders', level: 1 }).waitFor()
    await page.getByText('3 messages shown.').waitFor()
    // Which order comes first depends on the partitions the batch went to.
    await page.locator('details.payload summary').first().click()
    await page
      .locator('details.payload[open] pre')
      .getByText(/"order": [123],/)
      .waitFor()
    await shot('queue')
    // Recent ones: the peek starts from a time instead of the oldest.
    const since = page.waitForResponse((r) => /\/messages\?.*from=/.test(r.url()))
    await page.getByLabel('Show from').selectOption({ label: 'the last 5 minutes' })
    expect((await since).status()).toBe(200)
    await page.getByText('3 messages shown.').waitFor()
  }, 30_000)

  test('redrives dead letters: the next one, then all', async () => {
    const sub = await mq<{ id: string }>('POST', '/subscriptions', {
      queue: 'orders',
      consumerGroup: 'billing',
      consumerName: 'b1',
      subscriptionType: 'redis_consumer',
      offsetResetPolicy: 'earliest',
      maxRetryAttempts: 1,
    })
    const pulled = await mq<{ messages: Array<{ receipt: string }> }>(
      'POST',
      `/subscriptions/${sub.id}/pull`,
      { max: 2 }
    )
    expect(pulled.messages).toHaveLength(2)
    const nacked = await mq<{ deadLettered: number }>('POST', `/subscriptions/${sub.id}/nack`, {
      receipts: pulled.messages.map((m) => m.receipt),
      reason: 'card declined',
    })
    expect(nacked.deadLettered).toBe(2)

    await page.getByRole('link', { name: 'Dead letters', exact: true }).click()
    await page.locator('tr[data-key="orders.dlq"]').waitFor({ timeout: 10_000 })
    await waitForCell('orders.dlq', 2, '2')
    await shot('dead-letter-queues')
    await page.getByRole('link', { name: 'orders.dlq' }).click()
    await page.getByText('2 messages shown.').waitFor()
    expect(await page.getByRole('cell', { name: 'card declined' }).count()).toBe(2)
    await page.getByText('next to redrive', { exact: true }).waitFor()
    await shot('dead-letters')

    const marked = await page.locator('tr:has(.tag) code').textContent()
    await page.getByRole('button', { name: 'Redrive next' }).click()
    await page.getByText('Redrove 1 message from orders.dlq.').waitFor()
    await page.getByText('1 message shown.').waitFor()
    // The one marked went, as the hint says it would.
    expect(await page.locator('tbody code').allTextContents()).not.toContain(marked)

    await page.getByRole('button', { name: 'Redrive all…' }).click()
    await page.getByRole('dialog').getByRole('button', { name: 'Redrive all' }).click()
    await page.getByText('Redrove 1 message from orders.dlq.').last().waitFor()
    await page.getByText('No dead letters in this queue.').waitFor()
    type Stats = { stats: { length: number } }
    const [dlq, orders] = await Promise.all([
      mq<Stats>('GET', '/queues/orders.dlq'),
      mq<Stats>('GET', '/queues/orders'),
    ])
    expect(dlq.stats.length).toBe(0)
    // The redriven two are new entries of orders, behind the three published.
    expect(orders.stats.length).toBe(5)
  }, 30_000)

  test('one message: its timeline of attempts; redrive this one dead letter; delete this one message', async () => {
    // The ledger writer the worker runs, so the timeline shows attempts as they were recorded.
    ledger = startLedgerWriter(await sharedDeps(), [tenant])
    const [sub] = (await mq<{ items: Array<{ id: string }> }>('GET', '/subscriptions?queue=orders'))
      .items
    await mq('POST', '/publish', { queue: 'orders', messageId: 'e2e-poison', payload: { n: 9 } })
    const pulled = await mq<{ messages: Array<{ receipt: string; messageId: string }> }>(
      'POST',
      `/subscriptions/${sub!.id}/pull`,
      { max: 100 }
    )
    const poison = pulled.messages.filter((m) => m.messageId === 'e2e-poison')
    const others = pulled.messages.filter((m) => m.messageId !== 'e2e-poison')
    await mq('POST', `/subscriptions/${sub!.id}/ack`, { receipts: others.map((m) => m.receipt) })
    await mq('POST', `/subscriptions/${sub!.id}/nack`, {
      receipts: poison.map((m) => m.receipt),
      reason: 'card expired',
    })
    type Found = { attempts: Array<{ status: string; error: string | null }> }
    for (let i = 0; i < 100; i++) {
      const m = await mq<Found>('GET', '/queues/orders/messages/e2e-poison')
      if (m.attempts.length > 0) break
      await Bun.sleep(50)
    }

    // The queue's page links each message to its own page, which shows the timeline.
    await page.getByRole('link', { name: 'Queues', exact: true }).click()
    await page.getByRole('link', { name: 'orders', exact: true }).click()
    await page.getByRole('link', { name: 'e2e-poison' }).click()
    await page.getByRole('heading', { name: 'e2e-poison', level: 1 }).waitFor()
    const attempt = page.locator('ol.timeline li[data-outcome="dead_letter"]')
    await attempt.getByText('card expired').waitFor({ timeout: 10_000 })
    await attempt.getByRole('link', { name: 'billing/b1' }).waitFor()
    await shot('message')

    // The dead letter's own page, in its dead-letter queue: redrive this one, confirmed.
    await page.getByRole('link', { name: 'Dead letters', exact: true }).click()
    await page.getByRole('link', { name: 'orders.dlq' }).click()
    await page.getByRole('link', { name: 'e2e-poison' }).click()
    await page.getByRole('heading', { name: 'e2e-poison', level: 1 }).waitFor()
    await page.getByRole('button', { name: 'Redrive this one…' }).click()
    await shot('message-redrive-confirm')
    await page.getByRole('dialog').getByRole('button', { name: 'Redrive' }).click()
    await page.getByText(/^Redrove e2e-poison to orders \(partition \d\)\.$/).waitFor()
    const dead = await mq<{ status: string }>('GET', '/queues/orders.dlq/messages/e2e-poison')
    expect(dead.status).toBe('removed')
    // Back in orders as a new message, waiting for the group.
    const peek = await mq<{ items: Array<{ messageId: string; headers: Record<string, string> }> }>(
      'GET',
      '/queues/orders/messages?limit=100'
    )
    const copies = peek.items.filter((m) => m.messageId === 'e2e-poison')
    expect(copies.map((m) => m.headers['x-mq-redrive-count'] ?? null)).toEqual([null, '1'])

    // Delete this one: a message nobody has out, confirmed in the page.
    await mq('POST', '/publish', { queue: 'orders', messageId: 'e2e-delete', payload: { n: 10 } })
    await page.goto(`${base}/console#/message/orders/e2e-delete`)
    await page.getByRole('heading', { name: 'e2e-delete', level: 1 }).waitFor()
    await page.getByRole('button', { name: 'Delete this one…' }).click()
    await page.getByRole('dialog').getByRole('button', { name: 'Delete' }).click()
    await page.getByText('Deleted e2e-delete from orders.').waitFor()
    await page.getByRole('heading', { name: 'orders', level: 1 }).waitFor()
    const gone = await mq<{ status: string; consumerGroups: unknown[] }>(
      'GET',
      '/queues/orders/messages/e2e-delete'
    )
    expect(gone).toMatchObject({ status: 'removed', consumerGroups: [] })
    const again = await fetch(`${base}/api/v1/mq/queues/orders/messages/e2e-delete`, {
      method: 'DELETE',
      headers: { authorization: `Bearer ${bearer}` },
    })
    expect(again.status).toBe(404)
  }, 40_000)

  test('pauses a subscription', async () => {
    await page.getByRole('link', { name: 'Subscriptions', exact: true }).click()
    const pause = page.getByRole('button', { name: 'Pause orders billing/b1' })
    await pause.click()
    await page.getByRole('button', { name: 'Resume orders billing/b1' }).waitFor()
    const subs = await mq<{ items: Array<{ status: string }> }>(
      'GET',
      '/subscriptions?queue=orders'
    )
    expect(subs.items.map((s) => s.status)).toEqual(['paused'])
    await shot('subscriptions')

    await page.getByRole('link', { name: 'billing / b1' }).click()
    await page.getByRole('heading', { name: /billing \/ b1/, level: 1 }).waitFor()
    await page.getByText('Delivery outcomes').waitFor()
    await shot('subscription')
  }, 20_000)

  test('pauses a schedule', async () => {
    const schedule = await mq<{ id: string }>('POST', '/publish/scheduled', {
      queue: 'orders',
      cron: '0 8 * * 1-5',
      timezone: 'Europe/Paris',
      payload: { report: 'daily' },
    })
    await page.getByRole('link', { name: 'Schedules', exact: true }).click()
    await page.locator(`tr[data-key="${schedule.id}"]`).waitFor()
    const what = '0 8 * * 1-5 on orders'
    // Pause, resume, pause, resume, pause: five success notes, at most three on screen.
    let lastNote = 0
    for (const [verb, next] of [
      ['Pause', 'Resume'],
      ['Resume', 'Pause'],
      ['Pause', 'Resume'],
      ['Resume', 'Pause'],
      ['Pause', 'Resume'],
    ]) {
      await page.getByRole('button', { name: `${verb} schedule ${what}` }).click()
      await page.getByRole('button', { name: `${next} schedule ${what}` }).waitFor()
      // The action's note is shown by now: the button changes once the API has answered.
      lastNote = Date.now()
    }
    expect((await mq<{ status: string }>('GET', `/schedules/${schedule.id}`)).status).toBe('paused')
    // A paused schedule's next run is "paused", not a time that has passed.
    await waitForCell(schedule.id, 4, 'paused')
    expect(await page.locator('#announcer .note-info').count()).toBe(3)
    await shot('schedules')
    await page
      .locator('#announcer .note-info')
      .first()
      .waitFor({ state: 'detached', timeout: 8000 })
    const shownFor = Date.now() - lastNote
    expect(shownFor).toBeGreaterThan(3000)
    expect(shownFor).toBeLessThan(6000)
  }, 20_000)

  test('the API reference at /docs: full paths, ids, descriptions, examples, patterns as written', async () => {
    const docs = await context.newPage()
    docs.on('pageerror', (err) => problems.push(`docs page error: ${err.message}`))
    docs.on('console', (m) => {
      if (m.type() === 'error') problems.push(`docs console: ${m.text()}`)
    })
    try {
      await docs.goto(`${base}/docs`)
      await docs
        .getByRole('heading', { name: 'Message queue service' })
        .waitFor({ timeout: 20_000 })
      const sidebar = docs.locator('nav, aside')
      await sidebar.getByText('Consuming', { exact: true }).first().click()
      await sidebar
        .getByText(/^Pull messages/)
        .first()
        .click()
      const pull = docs.getByRole('heading', { name: /^Pull messages/ })
      await pull.waitFor()
      await docs.getByText('pullMessages', { exact: true }).first().waitFor()
      await docs
        .getByText(/What is not acked within the visibility timeout/)
        .first()
        .waitFor()
      await docs.getByText('/api/v1/mq/subscriptions/{id}/pull').first().waitFor()
      await docs.getByText('"receipt"').first().waitFor()
      await docs
        .getByRole('button', { name: /Test Request/ })
        .first()
        .waitFor()
      await docs.screenshot({ path: join(SHOTS, 'docs.png') })

      await sidebar.getByText('Publishing', { exact: true }).first().click()
      await sidebar.getByText('Publish one message', { exact: true }).first().click()
      await docs.getByRole('heading', { name: 'Publish one message' }).waitFor()
      const text = (await docs.locator('body').textContent()) ?? ''
      expect(text).toContain('^[\\x21-\\x7e]+$')
      expect(text).not.toContain('\\\\x21')
    } finally {
      await docs.close()
    }
  }, 60_000)

  test('the overview charts what it sampled; nothing left loopback, nothing failed', async () => {
    await page.getByRole('link', { name: 'Overview', exact: true }).click()
    await page.getByRole('heading', { name: 'Overview', level: 1 }).waitFor()
    await page.getByText('Throughput (messages per second)').waitFor()
    await page.locator('table.health').waitFor()
    await shot('overview')
    expect(requested.filter((url) => !url.startsWith(`${base}/`))).toEqual([])
    expect(problems).toEqual([])
  }, 20_000)
})
