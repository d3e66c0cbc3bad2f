// Order statistics of measured samples, for the benchmarks.

export function percentile (values: readonly number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]!
}

export function median (values: readonly number[]): number {
  return percentile(values, 0.5)
}
