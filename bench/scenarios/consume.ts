import { freePort } from '../../src/local/redis-server'
import {
  barePullTargets,
  type Context,
  createPullSubscriptions,
  createQueue,
  deleteQueue,
  fill,
  flushPeers,
  interleave,
  LEDGER_OFF,
  ledgerOffContext,
  machineQuiet,
  peerRedisUrl,
  runClient,
  servicePullTargets,
} from '../lib/context'
import { api } from '../lib/infra'
import { PAYLOAD } from '../lib/load'
import { type Figure, figure, ledgerFigure } from '../lib/report'

const CONSUMERS = 4
/** Keys of the ordered pull + ack run (issue 25). */
const ORDERED_KEYS = 1000
/** The ordered run's floor against the unordered one of the same run (issue 25). */
const ORDERED_FLOOR = 0.7
const ORDERED = 'ordered'
const SYSTEMS = ['service', 'bare', 'bullmq'] as const

interface ConsumeResult {
  received: number
  elapsedMs: number
  rate: number
  failures: number
}

/**
 * Prefills a queue of the service (or its twin) and drains it with 4 pulling consumers; with
 * `keys`, messages carry that many keys in turn and the subscriptions deliver in key order.
 */
async function servicePullAck(
  ctx: Context,
  queue: string,
  n: number,
  timeoutMs: number,
  keys?: number
) {
  await createQueue(ctx, queue)
  const settings = keys ? { ordering: 'key' } : {}
  const subs = await createPullSubscriptions(ctx, queue, CONSUMERS, 'earliest', settings)
  await fill({ url: `${ctx.apiUrl}/publish/batch`, token: ctx.token, queue, count: n, keys })
  // The ledger copies the prefill's messages behind it; the drain measures consuming, as the
  // peers' does, not that publish-side catch-up (which `LEDGER_MODE=off` never has).
  await machineQuiet(ctx.baselineBusy)
  const r = await drainService(ctx, subs, n, timeoutMs)
  await deleteQueue(ctx, queue)
  return r
}

/** Pulls (100 at a time) and acks `n` messages through the service's subscriptions `subs`. */
export function drainService(ctx: Context, subs: string[], n: number, timeoutMs: number) {
  return runClient<ConsumeResult>(
    'consume',
    {
      kind: 'http',
      targets: servicePullTargets(ctx, subs),
      token: ctx.token,
      max: 100,
      expected: n,
      timeoutMs,
    },
    timeoutMs + 10_000
  )
}

/**
 * Pull + ack in batches of 100 with 4 consumers, draining a prefilled queue; the service's
 * LEDGER_MODE=off twin, when it runs, right after the service in each round.
 */
export async function pullAck(ctx: Context): Promise<Figure[]> {
  const n = ctx.plan.consumeCount
  const timeoutMs = 120_000
  const systems = [
    'service',
    ORDERED,
    ...(ctx.ledgerOff ? [LEDGER_OFF] : []),
    'bare',
    'bullmq',
  ] as const
  const results = await interleave(ctx, ctx.plan.runs, systems, async (system, run) => {
    const queue = `consume-${run}`
    if (system === 'service') return servicePullAck(ctx, queue, n, timeoutMs)
    if (system === ORDERED) return servicePullAck(ctx, queue, n, timeoutMs, ORDERED_KEYS)
    if (system === LEDGER_OFF) {
      return servicePullAck(ledgerOffContext(ctx, ctx.ledgerOff!), queue, n, timeoutMs)
    }
    if (system === 'bare') {
      // The bare peer makes its group at the first pull, from the stream's start.
      await fill({ url: `${ctx.bare.url}/publish/batch`, queue, count: n })
      return runClient<ConsumeResult>(
        'consume',
        {
          kind: 'http',
          targets: barePullTargets(ctx, queue, CONSUMERS),
          max: 100,
          expected: n,
          timeoutMs,
        },
        timeoutMs + 10_000
      )
    }
    await fill({ url: `${ctx.bullmq.url}/publish/batch`, queue, count: n })
    return runClient<ConsumeResult>(
      'consume',
      {
        kind: 'bullmq',
        redisUrl: peerRedisUrl(ctx, 'bullmq'),
        queue,
        consumers: CONSUMERS,
        concurrency: 100,
        expected: n,
        timeoutMs,
      },
      timeoutMs + 10_000
    )
  })
  await flushPeers(ctx)
  const incomplete = Object.entries(results).flatMap(([k, rs]) =>
    rs.filter((r) => r.received < n).map((r) => `${k} drained ${r.received} of ${n}`)
  )
  const scenario = `pull + ack, batches of 100, ${CONSUMERS} consumers`
  const rates = (k: string) => (results as Record<string, ConsumeResult[]>)[k]?.map((r) => r.rate)
  return [
    figure({
      scenario,
      metric: 'throughput',
      unit: 'messages/s',
      better: 'higher',
      runs: { service: rates('service')!, bare: rates('bare')!, bullmq: rates('bullmq')! },
      target: (s, p) => ({ text: '≥ 2 × bullmq', met: s >= 2 * p.bullmq! }),
      note: [
        `${n.toLocaleString('en-US')} messages prefilled, drained once the machine was quiet (the ledger caught up); bullmq: ${CONSUMERS} Workers × concurrency 100 (BullMQ has no batch fetch)`,
        ...incomplete,
      ].join('; '),
    }),
    figure({
      scenario: `pull + ack (ordered, ${ORDERED_KEYS.toLocaleString('en-US')} keys)`,
      metric: 'throughput',
      unit: 'messages/s',
      better: 'higher',
      runs: { service: rates(ORDERED)!, unordered: rates('service')! },
      target: (s, p) => ({
        text: `≥ ${ORDERED_FLOOR} × unordered`,
        met: s >= ORDERED_FLOOR * p.unordered!,
      }),
      note: `ordering "key", keys k0…k${ORDERED_KEYS - 1} in turn, otherwise as the row above; the peer is that row's service run`,
    }),
    ...(ctx.ledgerOff
      ? [ledgerFigure(scenario, 'messages/s', rates('service')!, rates(LEDGER_OFF)!)]
      : []),
  ]
}

interface LatencyResult {
  /** How long until the first probe message arrived (a new webhook subscription's pick-up). */
  liveMs: number
  sent: number
  received: number
  duplicates: number
  publishErrors: number
  receiverFailures: number
  achievedRate: number
  p50Ms: number
  p99Ms: number
  maxMs: number
  publishP50Ms: number
  publishP99Ms: number
}

/** A p99 target against the peers' p99s of the same run. */
type P99Target = (service: number, peers: Record<string, number>) => { text: string; met: boolean }

function latencyFigures(
  scenario: string,
  results: Record<string, LatencyResult[]>,
  p99Target?: P99Target
): Figure[] {
  const lost = Object.entries(results).flatMap(([k, rs]) =>
    rs
      .filter((r) => r.received < r.sent || r.publishErrors > 0)
      .map((r) => `${k} received ${r.received} of ${r.sent} (${r.publishErrors} publish errors)`)
  )
  const rates = Object.entries(results)
    .map(([k, rs]) => `${k} ${Math.round(rs[0]?.achievedRate ?? 0)}/s`)
    .join(', ')
  const live = Object.entries(results)
    .map(([k, rs]) => `${k} ${rs.map((r) => Math.round(r.liveMs)).join('/')} ms`)
    .join(', ')
  const runs = (f: (r: LatencyResult) => number) =>
    Object.fromEntries(Object.entries(results).map(([k, rs]) => [k, rs.map(f)]))
  return [
    figure({
      scenario,
      metric: 'latency p50',
      unit: 'ms',
      better: 'lower',
      runs: runs((r) => r.p50Ms),
    }),
    figure({
      scenario,
      metric: 'latency p99',
      unit: 'ms',
      better: 'lower',
      runs: runs((r) => r.p99Ms),
      target: p99Target,
      note: [
        `timed from the first message after a probe got through (probe: ${live})`,
        `publish rate achieved: ${rates}`,
        ...lost,
      ].join('; '),
    }),
  ]
}

const e2eJob = (ctx: Context, extra: Record<string, unknown>) => ({
  rate: ctx.plan.e2eRate,
  seconds: ctx.plan.e2eSeconds,
  drainMs: 5000,
  payload: PAYLOAD,
  ...extra,
})

/** Publish → long-poll pull at a fixed rate: time from publish request to receipt. */
export async function e2ePull(ctx: Context): Promise<Figure[]> {
  const timeout = (ctx.plan.e2eSeconds + 30) * 1000
  const results = await interleave(ctx, ctx.plan.runs, SYSTEMS, async (system, run) => {
    const queue = `e2e-${run}`
    if (system === 'service') {
      await createQueue(ctx, queue)
      const subs = await createPullSubscriptions(ctx, queue, CONSUMERS, 'latest')
      const r = await runClient<LatencyResult>(
        'latency',
        e2eJob(ctx, {
          publishUrl: `${ctx.apiUrl}/publish`,
          token: ctx.token,
          queue,
          receiver: { kind: 'pull', targets: servicePullTargets(ctx, subs), token: ctx.token },
        }),
        timeout
      )
      await deleteQueue(ctx, queue)
      return r
    }
    if (system === 'bare') {
      return runClient<LatencyResult>(
        'latency',
        e2eJob(ctx, {
          publishUrl: `${ctx.bare.url}/publish`,
          queue,
          receiver: { kind: 'pull', targets: barePullTargets(ctx, queue, CONSUMERS) },
        }),
        timeout
      )
    }
    return runClient<LatencyResult>(
      'latency',
      e2eJob(ctx, {
        publishUrl: `${ctx.bullmq.url}/publish`,
        queue,
        receiver: {
          kind: 'bullmq',
          redisUrl: peerRedisUrl(ctx, 'bullmq'),
          queue,
          consumers: CONSUMERS,
        },
      }),
      timeout
    )
  })
  await flushPeers(ctx)
  return latencyFigures(
    `end-to-end publish → long-poll pull, ${ctx.plan.e2eRate.toLocaleString('en-US')} messages/s`,
    results,
    (s, p) => ({
      text: "≤ 1.5 × bare's and ≤ bullmq's",
      met: s <= 1.5 * p.bare! && s <= p.bullmq!,
    })
  )
}

/**
 * Publish → webhook to a loopback receiver at a fixed rate; the peer is a BullMQ Worker that
 * POSTs each job to the same kind of receiver.
 */
export async function e2eWebhook(ctx: Context): Promise<Figure[]> {
  const scenario = `end-to-end publish → webhook, ${ctx.plan.e2eRate.toLocaleString('en-US')} messages/s`
  const timeout = (ctx.plan.e2eSeconds + 30) * 1000
  const results = await interleave(
    ctx,
    ctx.plan.runs,
    ['service', 'bullmq'] as const,
    async (system, run) => {
      const queue = `hook-${run}`
      const port = freePort()
      if (system === 'service') {
        await createQueue(ctx, queue)
        await api(ctx.service.url, ctx.token, 'POST', '/subscriptions', {
          queue,
          consumerGroup: 'hook',
          consumerName: 'hook-1',
          subscriptionType: 'webhook',
          offsetResetPolicy: 'latest',
          handlerConfig: { url: `http://127.0.0.1:${port}/hook` },
        })
        const r = await runClient<LatencyResult>(
          'latency',
          e2eJob(ctx, {
            publishUrl: `${ctx.apiUrl}/publish`,
            token: ctx.token,
            queue,
            receiver: { kind: 'webhook', port },
          }),
          timeout
        )
        await deleteQueue(ctx, queue)
        return r
      }
      return runClient<LatencyResult>(
        'latency',
        e2eJob(ctx, {
          publishUrl: `${ctx.bullmq.url}/publish`,
          queue,
          receiver: {
            kind: 'bullmq',
            redisUrl: peerRedisUrl(ctx, 'bullmq'),
            queue,
            consumers: CONSUMERS,
            webhookPort: port,
          },
        }),
        timeout
      )
    }
  )
  await flushPeers(ctx)
  if (results.service.every((r) => r.received === 0)) {
    ctx.notes.push(
      `${scenario}: skipped, the service delivered no webhook (is the webhook worker in this build?)`
    )
    return latencyFigures(scenario, { bullmq: results.bullmq })
  }
  return latencyFigures(scenario, results, (s, p) => ({
    text: "≤ bullmq's",
    met: s <= p.bullmq!,
  }))
}

interface DelayedResult {
  count: number
  spreadNotScheduled: number
  spreadArrived: number
  early: number
  latenessP50Ms: number
  latenessP99Ms: number
  latenessMaxMs: number
  overdueNotScheduled: number
  overduePublishedBeforeDue: boolean
  overdueArrived: number
  promotedMs: number
  deliveredMs: number
}

/** Delayed messages: lateness over a window, and promotion of a mass of overdue ones. */
export async function delayed(ctx: Context): Promise<Figure[]> {
  const { count, windowMs, runs } = ctx.plan.delayed
  // Time to publish them all before the first is due (the service's batch publishing runs far
  // above 15/ms; BullMQ's addBulk about there on a busy machine). Late ones are counted.
  const leadMs = 1000 + Math.ceil(count / 15)
  const timeout = leadMs * 2 + windowMs + 90_000
  const base = { count, windowMs, leadMs, payload: PAYLOAD }
  const systems = ['service', 'bullmq'] as const
  const results = await interleave(ctx, runs, systems, async (system, run) => {
    const queue = `delayed-${run}`
    if (system === 'service') {
      await createQueue(ctx, queue)
      const subs = await createPullSubscriptions(ctx, queue, CONSUMERS, 'latest')
      const r = await runClient<DelayedResult>(
        'delayed',
        {
          ...base,
          kind: 'service',
          apiUrl: ctx.apiUrl,
          token: ctx.token,
          queue,
          targets: servicePullTargets(ctx, subs),
        },
        timeout
      )
      await deleteQueue(ctx, queue)
      return r
    }
    return runClient<DelayedResult>(
      'delayed',
      {
        ...base,
        kind: 'bullmq',
        redisUrl: peerRedisUrl(ctx, 'bullmq'),
        queue,
        consumers: CONSUMERS,
      },
      timeout
    )
  })
  await flushPeers(ctx)
  return delayedFigures(ctx, results)
}

/** The delayed scenario's figures: early arrivals and lateness, then promotion of the overdue. */
function delayedFigures(ctx: Context, results: Record<string, DelayedResult[]>): Figure[] {
  const { count, windowMs, runs } = ctx.plan.delayed
  const scenario = `delayed: ${count.toLocaleString('en-US')} due over ${windowMs / 1000} s`
  const overdue = `delayed: ${count.toLocaleString('en-US')} overdue at once`
  const of = (f: (r: DelayedResult) => number) =>
    Object.fromEntries(Object.entries(results).map(([k, rs]) => [k, rs.map(f)]))
  const caveats = Object.entries(results).flatMap(([k, rs]) =>
    rs.flatMap((r) => [
      ...(r.spreadNotScheduled + r.overdueNotScheduled > 0
        ? [`${k}: ${r.spreadNotScheduled + r.overdueNotScheduled} published after their due time`]
        : []),
      ...(r.spreadArrived < count ? [`${k}: ${r.spreadArrived} of ${count} arrived`] : []),
      ...(r.overdueArrived < count
        ? [`${k}: ${r.overdueArrived} of ${count} overdue arrived`]
        : []),
    ])
  )
  const runsNote = runs === 1 ? 'one run (every arrival is a sample)' : `median of ${runs} runs`
  return [
    figure({
      scenario,
      metric: 'early deliveries',
      unit: 'messages',
      better: 'lower',
      runs: of((r) => r.early),
      target: (s) => ({ text: '= 0', met: s === 0 }),
      note: [runsNote, 'lateness = arrival at the consumer − due time', ...caveats].join('; '),
    }),
    figure({
      scenario,
      metric: 'lateness p50',
      unit: 'ms',
      better: 'lower',
      runs: of((r) => r.latenessP50Ms),
      target: (s) => ({ text: '≤ 20 ms', met: s <= 20 }),
    }),
    figure({
      scenario,
      metric: 'lateness p99',
      unit: 'ms',
      better: 'lower',
      runs: of((r) => r.latenessP99Ms),
      target: (s) => ({ text: '≤ 50 ms', met: s <= 50 }),
    }),
    figure({
      scenario: overdue,
      metric: 'all promoted after due',
      unit: 'ms',
      better: 'lower',
      runs: of((r) => r.promotedMs),
      target: (s) => ({ text: '≤ 5,000 ms (for 100,000)', met: s <= 5000 }),
      note: 'promoted: none left in the delayed set (service: queue stats `scheduled`; bullmq: getDelayedCount, with Workers running, which is what promotes in BullMQ)',
    }),
    figure({
      scenario: overdue,
      metric: 'all delivered after due',
      unit: 'ms',
      better: 'lower',
      runs: of((r) => r.deliveredMs),
      note: "'–' where not all arrived within 20 s of the due time",
    }),
  ]
}
