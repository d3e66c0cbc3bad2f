// Measuring helpers of bench/datasets.ts: the generated CSV, peak RSS from /proc, sequential page
// latencies, and line counts of a streamed export.
import { once } from 'node:events'
import { createWriteStream } from 'node:fs'
import fs from 'node:fs/promises'
import { request } from 'undici'
import { percentile } from './statistics.ts'

/** The CSV's header: data-api infers integer, text, numeric, boolean, date, text. */
export const CSV_COLUMNS = ['id', 'name', 'score', 'active', 'day', 'note'] as const

export interface Latency { p50: number, p99: number }

/** `rowCount` rows of CSV_COLUMNS into `file`; its size in bytes. */
export async function generateCsv (file: string, rowCount: number): Promise<number> {
  return await writeCsv(file, CSV_COLUMNS, rowCount, (i) =>
    `${i + 1},user ${i % 5003},${((i * 7919) % 100_000) / 100},${i % 3 === 0},2026-${String(1 + (i % 12)).padStart(2, '0')}-${String(1 + (i % 28)).padStart(2, '0')},"note, ${i % 977}"`)
}

/** A CSV of `header` and `rowCount` lines, line `i` (from 0) written by `line(i)`, into `file`; its size in bytes. */
export async function writeCsv (file: string, header: readonly string[], rowCount: number, line: (i: number) => string): Promise<number> {
  const out = createWriteStream(file)
  out.write(`${header.join(',')}\n`)
  for (let from = 0; from < rowCount; from += 1000) {
    let chunk = ''
    for (let i = from; i < Math.min(rowCount, from + 1000); i++) chunk += `${line(i)}\n`
    if (!out.write(chunk)) await once(out, 'drain')
  }
  await new Promise<void>((resolve) => { out.end(resolve) })
  return (await fs.stat(file)).size
}

/** Resident memory of a process now, bytes (0 once it is gone). */
export async function rss (pid: number): Promise<number> {
  const status = await fs.readFile(`/proc/${pid}/status`, 'utf8').catch(() => '')
  return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) * 1024
}

/** Peak resident memory of a process while `work` runs, sampled every 20 ms from /proc. */
export async function peakRss<T> (pid: number, work: () => Promise<T>): Promise<{ value: T, peak: number }> {
  let peak = 0
  const sample = async (): Promise<void> => {
    peak = Math.max(peak, await rss(pid))
  }
  const timer = setInterval(() => { void sample() }, 20)
  try {
    const value = await work()
    await sample()
    return { value, peak }
  } finally {
    clearInterval(timer)
  }
}

/** p50/p99 of `count` sequential GETs (after 50 that warm up); each must answer 200. */
export async function latencies (url: string, count: number): Promise<Latency> {
  return summarize((await timeRequests(url, count)).map(({ ms }) => ms))
}

export function summarize (times: readonly number[]): Latency {
  return { p50: percentile(times, 0.5), p99: percentile(times, 0.99) }
}

/** One GET answered 200: how long it took, its body, and its Server-Timing entries (name → ms). */
export interface TimedResponse { ms: number, body: Buffer, serverTiming: Record<string, number> }

/** Server-Timing `name;dur=12.3;desc="…", …` → { name: 12.3 }. */
export function parseServerTiming (header: string | string[] | undefined): Record<string, number> {
  const entries: Record<string, number> = {}
  for (const entry of [header ?? []].flat().join(',').split(',')) {
    const [name, ...parameters] = entry.trim().split(';')
    const dur = parameters.map((p) => /^\s*dur=([\d.]+)/.exec(p)?.[1]).find((d) => d !== undefined)
    if (name !== undefined && name !== '' && dur !== undefined) entries[name] = Number(dur)
  }
  return entries
}

/** One GET, timed; it must answer 200. */
export async function timeRequest (url: string, headers?: Record<string, string>): Promise<TimedResponse> {
  const started = performance.now()
  const response = await request(url, { headers })
  const body = Buffer.from(await response.body.arrayBuffer())
  const ms = performance.now() - started
  if (response.statusCode !== 200) throw new Error(`${url} answered ${response.statusCode}: ${body.toString('utf8', 0, 500)}`)
  return { ms, body, serverTiming: parseServerTiming(response.headers['server-timing']) }
}

/** `count` sequential GETs after `warmup` more, each timed and answered 200. */
export async function timeRequests (url: string, count: number, warmup = 50): Promise<TimedResponse[]> {
  const measured: TimedResponse[] = []
  for (let i = 0; i < count + warmup; i++) {
    const response = await timeRequest(url)
    if (i >= warmup) measured.push(response)
  }
  return measured
}

/** GETs `url` and counts the lines of its body as they stream: { lines, ms }. */
export async function countLines (url: string): Promise<{ lines: number, ms: number }> {
  const started = performance.now()
  const response = await request(url)
  if (response.statusCode !== 200) throw new Error(`${url} answered ${response.statusCode}: ${(await response.body.text()).slice(0, 500)}`)
  let lines = 0
  for await (const chunk of response.body) {
    const bytes = chunk as Buffer
    for (let at = bytes.indexOf(10); at !== -1; at = bytes.indexOf(10, at + 1)) lines++
  }
  return { lines, ms: performance.now() - started }
}
