import { api, type ConsumerMetrics, ok, type Summary, type TopicMetrics } from './api'
import type { Points, TimeSpan } from './charts'

/** How often the console asks the metrics endpoints (and refreshes the page shown). */
export const POLL_MS = 3000

/** How much history the overview's charts show; older samples are dropped. */
export const WINDOW_MS = 15 * 60_000

/** What the sparklines in tables show. */
export const SPARK_MS = 5 * 60_000

/** One reading of the three JSON metrics views. */
export interface Sample {
  at: number
  summary: Summary
  topics: Map<string, TopicMetrics>
  consumers: Map<string, ConsumerMetrics>
}

// The API keeps no history (its rates are averages over the last minute), so the console
// keeps its own from the moment the page loaded.
const samples: Sample[] = []

/** Takes one sample of `/metrics`, `/metrics/topics` and `/metrics/consumers`. */
export async function takeSample(): Promise<Sample> {
  const [summary, topics, consumers] = await Promise.all([
    ok(api.metrics.$get()),
    ok(api.metrics.topics.$get()),
    ok(api.metrics.consumers.$get()),
  ])
  const sample: Sample = {
    at: Date.now(),
    summary,
    topics: new Map(topics.items.map((t) => [t.queue, t])),
    consumers: new Map(consumers.items.map((c) => [c.subscriptionId, c])),
  }
  samples.push(sample)
  while (samples.length > 0 && samples[0]!.at < sample.at - WINDOW_MS) samples.shift()
  return sample
}

/** The newest sample, if one was taken. */
export const latestSample = (): Sample | undefined => samples.at(-1)

/**
 * What a chart of the last `maxMs` shows: from the first sample (the page keeps none from
 * before it loaded) or `maxMs` ago, whichever is later, to now; at least a minute.
 */
export function span(maxMs: number): TimeSpan {
  const to = Date.now()
  const first = samples[0]?.at ?? to
  return { from: Math.min(to - 60_000, Math.max(first, to - maxMs)), to }
}

/** `pick` of every sample within `within`, skipping samples where it is undefined. */
export function series(pick: (s: Sample) => number | undefined, within: TimeSpan): Points {
  const points: Points = []
  for (const s of samples) {
    const value = pick(s)
    if (s.at >= within.from && value !== undefined) points.push([s.at, value])
  }
  return points
}

/** Forgets every sample (sign out: the next operator may see another tenant). */
export function clearSamples(): void {
  samples.length = 0
}
