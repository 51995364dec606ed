import type { InferResponseType } from 'hono/client'
import { api } from '../api'
import { lineChart } from '../charts'
import { badge, count, fill, h, millis, rate } from '../dom'
import { heading, type Page, tiles } from '../page'
import { latestSample, POLL_MS, type Sample, series, span, WINDOW_MS } from '../samples'

type HealthBody = InferResponseType<typeof api.health.$get, 200>

/** The overview's charts: each line is one figure of the `/metrics` summary over time. */
const CHARTS: Array<{
  title: string
  format: (v: number) => string
  lines: Array<[string, (s: Sample) => number]>
}> = [
  {
    title: 'Throughput (messages per second)',
    format: rate,
    lines: [
      ['published', (s) => s.summary.performance.throughput],
      ['acknowledged', (s) => s.summary.consumers.processingRate],
      ['failed', (s) => s.summary.consumers.errorRate],
    ],
  },
  {
    title: 'Latency, deliverable to first delivery',
    format: millis,
    lines: [
      ['average', (s) => s.summary.performance.averageLatency],
      ['p95', (s) => s.summary.performance.p95Latency],
      ['p99', (s) => s.summary.performance.p99Latency],
    ],
  },
]

/** The health answer as the overview shows it: each check's status, timing and detail. */
function healthTable(body: HealthBody) {
  return [
    h('h2', { id: 'health-title' }, 'Health ', badge(body.status)),
    h(
      'table',
      { class: 'health' },
      h('caption', { class: 'sr-only' }, 'Health checks'),
      h(
        'thead',
        null,
        h(
          'tr',
          null,
          h('th', { scope: 'col' }, 'Check'),
          h('th', { scope: 'col' }, 'Status'),
          h('th', { scope: 'col', class: 'num' }, 'Took'),
          h('th', { scope: 'col' }, 'Detail')
        )
      ),
      h(
        'tbody',
        null,
        ...Object.entries(body.details).map(([name, detail]) =>
          h(
            'tr',
            null,
            h('th', { scope: 'row' }, name),
            h('td', null, badge(detail.status)),
            h('td', { class: 'num' }, millis(detail.latencyMs)),
            h('td', null, detail.message ?? '')
          )
        )
      )
    ),
    h('p', { class: 'hint' }, `${body.service} ${body.version}, up ${Math.round(body.uptime)} s`),
  ]
}

/** The totals of the latest sample. */
function totals(summary: Sample['summary']) {
  return tiles([
    { label: 'Published', value: rate(summary.performance.throughput) },
    { label: 'Acknowledged', value: rate(summary.consumers.processingRate) },
    { label: 'Failed deliveries', value: rate(summary.consumers.errorRate) },
    { label: 'Latency p95', value: millis(summary.performance.p95Latency) },
    { label: 'Messages in streams', value: count(summary.redisStreams.totalMessages) },
    { label: 'Pending', value: count(summary.redisStreams.pendingMessages) },
    { label: 'Total lag', value: count(summary.consumers.totalLag) },
    { label: 'Active consumers', value: count(summary.consumers.activeConsumers) },
  ])
}

/** The line charts of the last WINDOW_MS of samples. */
function recentCharts() {
  const within = span(WINDOW_MS)
  return CHARTS.map((chart) =>
    lineChart({
      title: chart.title,
      span: within,
      format: chart.format,
      series: chart.lines.map(([name, pick], style) => ({
        name,
        style,
        points: series(pick, within),
      })),
    })
  )
}

/** Health of each check, totals and the last 15 minutes of throughput and latency. */
export function overviewPage(): Page {
  const health = h('section', { 'aria-labelledby': 'health-title' })
  const figures = h('section', { 'aria-label': 'Totals' })
  const charts = h('div', { class: 'charts' })
  const element = h(
    'div',
    null,
    heading('Overview'),
    health,
    figures,
    h(
      'section',
      { 'aria-labelledby': 'charts-title' },
      h('h2', { id: 'charts-title' }, 'Last 15 minutes'),
      h(
        'p',
        { class: 'hint' },
        `Sampled every ${POLL_MS / 1000} s since this page was loaded. Each sample is the API's own figure: rates and latencies are averages over the minute before it.`
      ),
      charts
    )
  )

  return {
    title: 'Overview',
    element,
    async refresh() {
      const sample = latestSample()
      if (sample) {
        fill(figures, totals(sample.summary))
        fill(charts, ...recentCharts())
      }
      // 503 (unhealthy) carries the same body as 200, so both are read.
      const res = await api.health.$get()
      if (res.status !== 200 && res.status !== 503) throw new Error(`health answered ${res.status}`)
      fill(health, ...healthTable(await res.json()))
    },
  }
}
