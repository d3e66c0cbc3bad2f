// Appends beside a fresh import of the same rows, for issue #20:
//   node bench/append.ts [--rows 10000000]
// On one embedded PostgreSQL, one data-api (`serve`, LOG_LEVEL=warn, default settings: each body
// here is over DATASET_SYNC_MAX_BYTES, so every write takes the job path) pinned to CPU 0, this
// process on CPU 1:
// 1. a fresh import of a generated CSV (rows × 6 columns): POST /datasets → 202 → ready; then its
//    statistics and indexes job, waited for;
// 2. an append of a tenth of the rows, then of all of them, to that data set (which by then holds
//    its indexes, as a published data set does): POST /datasets/{id}/rows → 202 → `write` done,
//    each followed by its statistics job.
// Each write's time, rows per second and the server's peak RSS (sampled every 20 ms from /proc)
// are printed as Markdown. Targets: the full append's rate within 1.3 × of the fresh import's; its
// peak RSS flat (the full append's peak against the tenth's, and against the import's).
import { createReadStream } from 'node:fs'
import fs from 'node:fs/promises'
import path from 'node:path'
import { setTimeout as delay } from 'node:timers/promises'
import { parseArgs } from 'node:util'
import { request } from 'undici'
import { loadConfig } from '../src/config.ts'
import { PROJECT_ROOT, spawnServer } from '../tools/processes.ts'
import { openBenchWorld, SERVER_CPU, waitUntilReady } from './bench-world.ts'
import { CSV_COLUMNS, generateCsv, peakRss, rss } from './dataset-measures.ts'

const { values } = parseArgs({ options: { rows: { type: 'string', default: '10000000' } } })
const rowCount = Number(values.rows)
if (!Number.isSafeInteger(rowCount) || rowCount < 100_000 || rowCount % 10 !== 0) throw new Error('--rows must be a multiple of 10, ≥ 100000')

const POLL_MS = 50
const RESULTS_DIR = path.join(PROJECT_ROOT, 'bench', 'results')
const say = (line: string): void => { console.log(line) }
const mb = (bytes: number): string => `${(bytes / 1_048_576).toFixed(0)} MB`

interface Write { name: string, rows: number, bytes: number, ms: number, peakRss: number, rssBefore: number, statsMs: number }

const startedAt = new Date()
const world = await openBenchWorld(say)
const { dir, databaseUrl, auth, servers } = world

try {
  const whole = path.join(dir, 'whole.csv')
  const tenth = path.join(dir, 'tenth.csv')
  const wholeBytes = await generateCsv(whole, rowCount)
  const tenthBytes = await generateCsv(tenth, rowCount / 10)
  say(`CSV: ${rowCount.toLocaleString('en')} rows × ${CSV_COLUMNS.length} columns, ${mb(wholeBytes)} (a tenth: ${mb(tenthBytes)})`)

  const writes: Write[] = []
  await servers.run(async () => await spawnServer({
    command: process.execPath,
    args: ['bin/data-api.js', 'serve'],
    // Default settings, but the sync limit below the tenth's size at small --rows: every write a job.
    env: { DATABASE_URL: databaseUrl, LOG_LEVEL: 'warn', DATASET_SYNC_MAX_BYTES: String(Math.min(loadConfig({}).datasets.syncMaxBytes, Math.floor(tenthBytes / 2))) },
    cpu: SERVER_CPU,
    logFile: path.join(dir, 'data-api.log'),
  }), async ({ url: base, pid }) => {
    const detailOf = async (id: number): Promise<any> => await (await request(`${base}/datasets/${id}`, { headers: auth })).body.json()
    const send = async (pathname: string, file: string, bytes: number): Promise<any> => {
      const response = await request(`${base}${pathname}`, { method: 'POST', headers: { ...auth, 'content-type': 'text/csv', 'content-length': String(bytes) }, body: createReadStream(file) })
      const body = await response.body.json() as any
      if (response.statusCode !== 202) throw new Error(`POST ${pathname} answered ${response.statusCode}, not 202: ${JSON.stringify(body)}`)
      return body
    }
    /** The statistics job the write enqueued: computed after `since` (the write's start; the job before it was waited for). */
    const waitForStats = async (id: number, since: number): Promise<number> => {
      const started = performance.now()
      while (Date.parse((await detailOf(id)).stats.computed_at ?? 0) < since) await delay(POLL_MS * 4)
      return performance.now() - started
    }
    const measure = async (name: string, rows: number, bytes: number, work: () => Promise<number>): Promise<void> => {
      const rssBefore = await rss(pid)
      const startedAt = Date.now()
      const started = performance.now()
      const { value: id, peak } = await peakRss(pid, work)
      const ms = performance.now() - started
      const statsMs = await waitForStats(id, startedAt)
      writes.push({ name, rows, bytes, ms, peakRss: peak, rssBefore, statsMs })
      say(`${name}: ${(ms / 1000).toFixed(1)} s, peak RSS ${mb(peak)} (${mb(rssBefore)} before); statistics after it ${(statsMs / 1000).toFixed(1)} s`)
    }

    let id = 0
    await measure('fresh import', rowCount, wholeBytes, async () => {
      const accepted = await send('/datasets?name=append-bench', whole, wholeBytes)
      id = accepted.dataset.id
      const ready = await waitUntilReady(base, auth, id)
      if (ready !== rowCount) throw new Error(`imported ${ready} rows`)
      return id
    })
    const append = async (file: string, bytes: number, rows: number): Promise<number> => {
      const accepted = await send(`/datasets/${id}/rows`, file, bytes)
      for (;;) {
        const { write } = await detailOf(id)
        if (write?.id === accepted.write.id && write.status === 'done') {
          if (write.inserted !== rows) throw new Error(`appended ${write.inserted} rows, not ${rows}`)
          return id
        }
        if (write?.status === 'failed') throw new Error(`append failed: ${JSON.stringify(write.error)}`)
        await delay(POLL_MS)
      }
    }
    await measure('append, a tenth of the rows', rowCount / 10, tenthBytes, async () => await append(tenth, tenthBytes, rowCount / 10))
    await measure('append, all the rows', rowCount, wholeBytes, async () => await append(whole, wholeBytes, rowCount))
  })

  const [fresh, small, full] = writes as [Write, Write, Write]
  const rate = (write: Write): number => write.rows / (write.ms / 1000)
  const ratio = (full.ms / full.rows) / (fresh.ms / fresh.rows)
  const lines = [
    `${rowCount.toLocaleString('en')} rows × ${CSV_COLUMNS.length} columns (${mb(wholeBytes)} of CSV); every write on the job path (202 → done); data-api on CPU 0, this process on CPU 1; PostgreSQL unpinned.`,
    '',
    '| write | rows | time | rows/s | server peak RSS (before) | statistics job after it |',
    '|---|---:|---:|---:|---:|---:|',
    ...writes.map((write) => `| ${write.name} | ${write.rows.toLocaleString('en')} | ${(write.ms / 1000).toFixed(1)} s | ${Math.round(rate(write)).toLocaleString('en')} | ${mb(write.peakRss)} (${mb(write.rssBefore)}) | ${(write.statsMs / 1000).toFixed(1)} s |`),
    '',
    `- append time per row / fresh import's: **${ratio.toFixed(2)}** (target ≤ 1.3 ${ratio <= 1.3 ? '✅' : '❌'})`,
    `- peak RSS, full append / tenth: ${(full.peakRss / small.peakRss).toFixed(2)}; full append / fresh import: ${(full.peakRss / fresh.peakRss).toFixed(2)} (flat: ≈ 1)`,
  ]
  say(`\n${lines.join('\n')}`)
  await fs.mkdir(RESULTS_DIR, { recursive: true })
  const out = path.join(RESULTS_DIR, `append-${startedAt.toISOString().replace(/[:.]/g, '-')}.json`)
  await fs.writeFile(out, `${JSON.stringify({ startedAt: startedAt.toISOString(), rows: rowCount, bytes: wholeBytes, writes, appendPerRowRatio: ratio }, null, 2)}\n`)
  say(`written to ${path.relative(PROJECT_ROOT, out)}`)
} finally {
  await world.close()
}
