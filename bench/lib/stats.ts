/**
 * The median of `values` (the mean of the middle two for an even count); NaN when empty or
 * when any run is NaN (a run that took no figure makes the median unknown).
 */
export function median(values: number[]): number {
  if (values.length === 0 || values.some(Number.isNaN)) return Number.NaN
  const sorted = [...values].sort((a, b) => a - b)
  const mid = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2
}

/** The nearest-rank `p`-th percentile (0–100) of already sorted values; NaN when empty. */
export function percentileSorted(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return Number.NaN
  const rank = Math.ceil((p / 100) * sorted.length)
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))]!
}

/** p50, p99 and max of a sample (latencies in ms), sorted once. */
export function summarize(samples: number[]): { p50: number; p99: number; max: number } {
  const sorted = Float64Array.from(samples).sort()
  return {
    p50: percentileSorted(sorted, 50),
    p99: percentileSorted(sorted, 99),
    max: sorted.length > 0 ? sorted[sorted.length - 1]! : Number.NaN,
  }
}
