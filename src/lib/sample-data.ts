// The building blocks of deterministic sample data (users, orders, products): a seeded generator,
// fixed dates, and COPY text produced in chunks. Each record's values come from a generator seeded
// by (seed, record number), so a record looks the same whatever batch or store it lands in.

export const SAMPLE_EPOCH = Date.UTC(2026, 0, 1)
export const DAY_MS = 86_400_000
const CHUNK_ROWS = 2_000

/** mulberry32: a tiny, fast, well-distributed 32-bit generator; enough for sample data. */
export function generator (seed: number): () => number {
  let state = seed >>> 0
  return () => {
    state = (state + 0x6D2B79F5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296
  }
}

export function pick<T> (random: () => number, items: readonly T[]): T {
  return items[Math.floor(random() * items.length)]!
}

/** COPY text in chunks of CHUNK_ROWS items: few stream writes, and memory stays flat. */
export function * chunks (count: number, line: (index: number) => string): Generator<string> {
  for (let from = 0; from < count; from += CHUNK_ROWS) {
    let chunk = ''
    for (let index = from; index < Math.min(count, from + CHUNK_ROWS); index++) chunk += line(index)
    yield chunk
  }
}
