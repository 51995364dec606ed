import { describe, expect, test } from 'bun:test'
import {
  LATENCY_BOUNDS_MS,
  latencyBucket,
  latencyQuantile,
} from '../../src/observability/flow-window'

const buckets = (entries: Array<[ms: number, count: number]>) => {
  const out = new Array(LATENCY_BOUNDS_MS.length + 1).fill(0)
  for (const [ms, count] of entries) out[latencyBucket(ms)] += count
  return out
}

describe('latency buckets', () => {
  test('a latency goes to the first bound at or above it, past the last to the open bucket', () => {
    expect(latencyBucket(0)).toBe(0)
    expect(latencyBucket(1)).toBe(0)
    expect(latencyBucket(1.5)).toBe(1)
    expect(latencyBucket(100)).toBe(LATENCY_BOUNDS_MS.indexOf(100))
    expect(latencyBucket(101)).toBe(LATENCY_BOUNDS_MS.indexOf(150))
    expect(latencyBucket(10_000_000)).toBe(LATENCY_BOUNDS_MS.length)
  })

  test('quantiles interpolate inside the bucket, like histogram_quantile', () => {
    // 100 samples in (50, 75]: the median is halfway through that bucket.
    expect(latencyQuantile(buckets([[60, 100]]), 0.5)).toBe(62.5)
    expect(latencyQuantile(buckets([[60, 100]]), 1)).toBe(75)
    // 90 fast and 10 slow: p95 lands in the slow bucket, p50 in the fast one.
    const mixed = buckets([
      [4, 90],
      [900, 10],
    ])
    expect(latencyQuantile(mixed, 0.5)).toBeLessThanOrEqual(5)
    expect(latencyQuantile(mixed, 0.95)).toBeGreaterThan(750)
    expect(latencyQuantile(mixed, 0.95)).toBeLessThanOrEqual(1000)
  })

  test('nothing counted is null; the open bucket answers its lower bound', () => {
    expect(latencyQuantile(buckets([]), 0.99)).toBeNull()
    expect(latencyQuantile(buckets([[10_000_000, 3]]), 0.99)).toBe(LATENCY_BOUNDS_MS.at(-1)!)
  })
})
