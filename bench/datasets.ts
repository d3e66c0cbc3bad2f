// The Data API's ingest, paging and export, side by side in one run on one embedded PostgreSQL
// (durable settings):
//   node bench/datasets.ts [--rows 1000000] [--runs 3]
// 1. ingest of a generated CSV (rows × 6 columns) through POST /datasets against `data-api serve`
//    in its own process, against the same file sent with COPY … FROM STDIN (FORMAT csv) into a
//    table of the same types: exactly what `psql \copy` does (psql is not installed here). Runs
//    alternate; medians are reported, with the server's peak RSS during its ingests.
// 2. GET /datasets/{id}/rows latency (p50/p99 of sequential requests) on the first page and at a
//    cursor 90% deep, in row order and sorted by a column.
// 3. export throughput, CSV and NDJSON.
import { once } from 'node:events'
import { createReadStream, createWriteStream } from 'node:fs'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { pipeline } from 'node:stream/promises'
import { parseArgs } from 'node:util'
import { pino } from 'pino'
import { request } from 'undici'
import { createApiKeysRepository } from '../src/auth/api-keys.ts'
import { spawnServer, type RunningServer } from '../tools/processes.ts'
import { median, percentile } from './statistics.ts'
import { encodeCursor } from '../src/routes/datasets/rows.ts'
import { ensureDatabase } from '../src/db/database.ts'
import { startEmbeddedPostgres } from '../src/db/embedded-postgres.ts'
import { migrate } from '../src/db/migrate.ts'
import { createSql } from '../src/db/pool.ts'

const { values } = parseArgs({ options: { rows: { type: 'string', default: '1000000' }, runs: { type: 'string', default: '3' } } })
const rowCount = Number(values.rows)
const runs = Number(values.runs)
const log = pino({ level: 'warn' })

const mb = (bytes: number): string => `${(bytes / 1_048_576).toFixed(0)} MB`

async function generateCsv (file: string): Promise<number> {
  const out = createWriteStream(file)
  out.write('id,name,score,active,day,note\n')
  for (let from = 0; from < rowCount; from += 1000) {
    let chunk = ''
    for (let i = from; i < Math.min(rowCount, from + 1000); i++) {
      chunk += `${i + 1},user ${i % 5003},${((i * 7919) % 100_000) / 100},${i % 3 === 0},2026-${String(1 + (i % 12)).padStart(2, '0')}-${String(1 + (i % 28)).padStart(2, '0')},"note, ${i % 977}"\n`
    }
    if (!out.write(chunk)) await once(out, 'drain')
  }
  await new Promise<void>((resolve) => { out.end(resolve) })
  return (await fs.stat(file)).size
}

/** Peak resident memory of a process while `work` runs, sampled every 20 ms from /proc. */
async function peakRss<T> (pid: number, work: () => Promise<T>): Promise<{ value: T, peak: number }> {
  let peak = 0
  const sample = async (): Promise<void> => {
    const status = await fs.readFile(`/proc/${pid}/status`, 'utf8').catch(() => '')
    const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0)
    peak = Math.max(peak, kb * 1024)
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

async function latencies (url: string, count: number): Promise<{ p50: number, p99: number }> {
  const times: number[] = []
  for (let i = 0; i < count + 50; i++) {
    const started = performance.now()
    const response = await request(url)
    await response.body.arrayBuffer()
    if (response.statusCode !== 200) throw new Error(`${url} answered ${response.statusCode}`)
    if (i >= 50) times.push(performance.now() - started) // the first 50 warm up
  }
  return { p50: percentile(times, 0.5), p99: percentile(times, 0.99) }
}

const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'data-api-bench-'))
await fs.chmod(dir, 0o755)
const server = await startEmbeddedPostgres({ clusterDir: path.join(dir, 'pg'), log })
let serve: RunningServer | undefined
try {
  const url = await ensureDatabase(server.url, 'bench')
  const sql = createSql(url, { max: 4 })
  await migrate(sql)
  const { key } = await createApiKeysRepository(sql).create('bench')
  const file = path.join(dir, 'data.csv')
  const bytes = await generateCsv(file)
  console.log(`CSV: ${rowCount.toLocaleString('en')} rows × 6 columns, ${mb(bytes)}`)

  // The server logs as in production (one line per request), to a file.
  serve = await spawnServer({
    command: process.execPath,
    args: ['bin/data-api.js', 'serve'],
    env: { DATABASE_URL: url, LOG_LEVEL: 'info', DATASET_SYNC_MAX_BYTES: String(bytes * 2) },
    logFile: path.join(dir, 'serve.log'),
  })
  const { url: base, pid } = serve

  // 1. Ingest, alternating the reference COPY and POST /datasets.
  const copyTimes: number[] = []
  const postTimes: number[] = []
  const peaks: number[] = []
  let datasetId = 0
  for (let run = 0; run < runs; run++) {
    await sql`drop table if exists reference_copy`
    await sql`create table reference_copy (id bigint, name text, score numeric, active boolean, day date, note text)`
    let started = performance.now()
    await pipeline(createReadStream(file), await sql`copy reference_copy from stdin with (format csv, header true)`.writable())
    copyTimes.push(performance.now() - started)

    if (datasetId !== 0) await request(`${base}/datasets/${datasetId}`, { method: 'DELETE', headers: { authorization: `Bearer ${key}` } }).then(async (response) => { await response.body.dump() })
    started = performance.now()
    const { value: answer, peak } = await peakRss(pid, async () => {
      const response = await request(`${base}/datasets?name=bench`, {
        method: 'POST',
        headers: { authorization: `Bearer ${key}`, 'content-type': 'text/csv', 'content-length': String(bytes) },
        body: createReadStream(file),
      })
      const body = await response.body.json() as { dataset: { id: number, rows: number } }
      if (response.statusCode !== 201) throw new Error(`POST /datasets answered ${response.statusCode}: ${JSON.stringify(body)}`)
      return body
    })
    postTimes.push(performance.now() - started)
    peaks.push(peak)
    datasetId = answer.dataset.id
    if (answer.dataset.rows !== rowCount) throw new Error(`imported ${answer.dataset.rows} rows`)
  }
  await sql`drop table if exists reference_copy`
  const copyMs = median(copyTimes)
  const postMs = median(postTimes)
  console.log(`reference COPY FROM STDIN (= psql \\copy): median ${copyMs.toFixed(0)} ms = ${(rowCount / copyMs * 1000).toFixed(0)} rows/s  [${copyTimes.map((t) => t.toFixed(0)).join(', ')}]`)
  console.log(`POST /datasets (infer, check, COPY, primary key): median ${postMs.toFixed(0)} ms = ${(rowCount / postMs * 1000).toFixed(0)} rows/s  [${postTimes.map((t) => t.toFixed(0)).join(', ')}]`)
  console.log(`ratio to psql \\copy: ${(copyMs / postMs).toFixed(2)} (target ≥ 0.5); server peak RSS during ingest: ${mb(Math.max(...peaks))} (target < 256 MB)`)

  // Statistics and column indexes come from the job the import enqueued.
  const statsStarted = performance.now()
  for (;;) {
    const [row] = await sql`select 1 from dataset_stats where dataset_id = ${datasetId}`
    const indexes = await sql`select 1 from pg_indexes where schemaname = 'dataset_rows' and tablename = ${`ds_${datasetId}`}`
    if (row !== undefined && indexes.length >= 7) break
    await new Promise((resolve) => setTimeout(resolve, 200))
  }
  console.log(`statistics + column indexes (job): ${((performance.now() - statsStarted) / 1000).toFixed(1)} s after the import answered`)

  // 2. Page latency, first page and 90% deep.
  const deep = Math.floor(rowCount * 0.9)
  const [deepRow] = await sql.unsafe<[{ score: string, _row: number }]>(`select c3::text as score, _row from dataset_rows.ds_${datasetId} order by c3, _row offset ${deep} limit 1`)
  const rowsUrl = `${base}/datasets/${datasetId}/rows?limit=100`
  const cases: Array<[string, string]> = [
    ['row order, first page', rowsUrl],
    [`row order, cursor at row ${deep.toLocaleString('en')}`, `${rowsUrl}&cursor=${encodeCursor({ s: '', v: null, r: deep })}`],
    ['sort=score, first page', `${rowsUrl}&sort=score`],
    [`sort=score, cursor ${deep.toLocaleString('en')} rows deep`, `${rowsUrl}&sort=score&cursor=${encodeCursor({ s: 'score', v: deepRow.score, r: deepRow._row })}`],
    ['filter score__gt=500 & active=true, first page', `${rowsUrl}&score__gt=500&active=true`],
  ]
  for (const [what, target] of cases) {
    const { p50, p99 } = await latencies(target, 500)
    console.log(`GET rows (limit 100), ${what}: p50 ${p50.toFixed(2)} ms, p99 ${p99.toFixed(2)} ms`)
  }

  // 3. Export throughput.
  for (const format of ['csv', 'ndjson']) {
    const started = performance.now()
    const { value: lines, peak } = await peakRss(pid, async () => {
      const response = await request(`${base}/datasets/${datasetId}/export?format=${format}`)
      let count = 0
      for await (const chunk of response.body) for (const byte of chunk as Buffer) if (byte === 10) count++
      return count
    })
    const seconds = (performance.now() - started) / 1000
    const exported = format === 'csv' ? lines - 1 : lines
    console.log(`export ${format}: ${exported.toLocaleString('en')} rows in ${seconds.toFixed(2)} s = ${(exported / seconds).toFixed(0)} rows/s, server peak RSS ${mb(peak)}`)
  }
  await sql.end()
} finally {
  await serve?.stop()
  await server.stop()
  await fs.rm(dir, { recursive: true, force: true })
}
