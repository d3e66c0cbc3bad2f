// The Data API's ingest, paging and export beside its peers, in one run on one embedded PostgreSQL
// (durable settings), for issue #18:
//   node bench/datasets.ts [--rows 1000000] [--runs 3] [--no-datasette]
// Peers: the COPY FROM STDIN reference (exactly what `psql \copy` does; psql is not installed
// here), a bare Fastify + postgres.js server running the very SELECT data-api's rows route runs,
// and Datasette on the same CSV loaded by sqlite-utils (bench/datasette-peer.ts).
// 1. ingest of a generated CSV (rows × 6 columns), runs alternating with the reference COPY:
//    - request path: `data-api serve` with DATASET_SYNC_MAX_BYTES above the file: POST → 201;
//    - job path: default DATASET_SYNC_MAX_BYTES (16 MiB; below the file, else half the file, so
//      that a small --rows takes the job path too): POST → 202, then GET /datasets/{id} until
//      ready. Then the statistics + index job the import enqueued, timed until it is done;
//    - Datasette: `sqlite-utils insert --csv`, then booleans as 0/1 and one index per column.
// 2. sequential page latency (p50/p99): the first page, and a cursor 90 % deep in every sort.
// 3. a filtered, sorted page under load (autocannon, 32 connections): data-api, the bare peer, Datasette.
// 4. full export: data-api CSV and NDJSON, Datasette's streamed CSV.
// One server runs at a time, pinned to CPU 0; this process and the load generator run on CPU 1;
// PostgreSQL is not pinned. The table is printed as Markdown and the run written to
// results/datasets-<time>.json; another --rows than 1,000,000 is compared with the newest 1 M run.
import { createReadStream } from 'node:fs'
import fs from 'node:fs/promises'
import path from 'node:path'
import { pipeline } from 'node:stream/promises'
import { setTimeout as delay } from 'node:timers/promises'
import { parseArgs } from 'node:util'
import { request } from 'undici'
import { loadConfig } from '../src/config.ts'
import type { Sql } from '../src/db/pool.ts'
import { encodeCursor } from '../src/routes/datasets/view.ts'
import { PROJECT_ROOT, spawnServer, type RunningServer } from '../tools/processes.ts'
import { CLIENT_CPU, openBenchWorld, SERVER_CPU, waitUntilReady } from './bench-world.ts'
import { countLines, CSV_COLUMNS, generateCsv, latencies, peakRss, rss, type Latency } from './dataset-measures.ts'
import { ensureDatasetteVenv, loadSqlite, startDatasette } from './datasette-peer.ts'
import { renderTable, type DatasetsResults, type PageCase } from './datasets-report.ts'
import { runWarmLoad } from './load.ts'
import type { LoadRun } from './results.ts'
import { captureRowsQueries } from './rows-query.ts'
import { median } from './statistics.ts'

const { values } = parseArgs({
  options: {
    rows: { type: 'string', default: '1000000' },
    runs: { type: 'string', default: '3' },
    'no-datasette': { type: 'boolean', default: false },
  },
})
const rowCount = Number(values.rows)
const runs = Number(values.runs)
const withDatasette = !values['no-datasette']
if (!Number.isSafeInteger(rowCount) || rowCount < 1000 || !Number.isSafeInteger(runs) || runs < 1) throw new Error('--rows must be ≥ 1000 and --runs ≥ 1')

const BASELINE_ROWS = 1_000_000
const LATENCY_REQUESTS = 500
const LOAD_CONNECTIONS = 32
const LOAD_SECONDS = 10
const LOAD_WARMUP_SECONDS = 3
const POLL_MS = 25
const RESULTS_DIR = path.join(PROJECT_ROOT, 'bench', 'results')
// The filtered, sorted page: the same question asked of each server.
const FILTER = { score__gt: '500', active: 'true' }
// `_count=none` as Datasette's `_nocount=1`: the page alone, the one SELECT the bare peer runs too.
const FILTERED_PATH = (id: number): string => `/datasets/${id}/rows?limit=100&score__gt=500&active=true&sort=-score&_count=none`
// The same page as a client asks it by default, with its exact total (counted once, then from memory).
const COUNTED_PATH = (id: number): string => `/datasets/${id}/rows?limit=100&score__gt=500&active=true&sort=-score`
const DATASETTE_FILTERED_PATH = '/data/rows.json?score__gt=500&active=1&_sort_desc=score&_size=100&_shape=objects&_nocount=1'
const DATASETTE_FIRST_PAGE_PATH = '/data/rows.json?_size=100&_shape=objects&_nocount=1'

const say = (line: string): void => { console.log(line) }
const mb = (bytes: number): string => `${(bytes / 1_048_576).toFixed(0)} MB`
const defaults = loadConfig({}).datasets

/** Statistics stored and one index per column: the job an import enqueues is done. */
async function waitForStatsAndIndexes (sql: Sql, datasetId: number): Promise<void> {
  for (;;) {
    const [row] = await sql`select 1 from dataset_stats where dataset_id = ${datasetId}`
    const indexes = await sql`select 1 from pg_indexes where schemaname = 'dataset_rows' and tablename = ${`ds_${datasetId}`}`
    if (row !== undefined && indexes.length >= CSV_COLUMNS.length + 1) return
    await delay(POLL_MS * 4)
  }
}

async function load (url: string): Promise<LoadRun> {
  return await runWarmLoad({ url, connections: LOAD_CONNECTIONS, durationSeconds: LOAD_SECONDS }, LOAD_WARMUP_SECONDS, CLIENT_CPU)
}

/** The newest stored run of BASELINE_ROWS rows, for the scale comparison. */
async function baselineRun (): Promise<{ file: string, run: DatasetsResults } | undefined> {
  const files = (await fs.readdir(RESULTS_DIR).catch(() => [])).filter((name) => /^datasets-.*\.json$/.test(name)).sort().reverse()
  for (const file of files) {
    const run = JSON.parse(await fs.readFile(path.join(RESULTS_DIR, file), 'utf8')) as Partial<DatasetsResults>
    if (run.rows === BASELINE_ROWS && Array.isArray(run.pages)) return { file, run: run as DatasetsResults }
  }
  return undefined
}

const startedAt = new Date()
const world = await openBenchWorld(say)
const { dir, databaseUrl, sql, version, auth, isPinned, servers } = world

try {
  const file = path.join(dir, 'data.csv')
  const bytes = await generateCsv(file, rowCount)
  say(`CSV: ${rowCount.toLocaleString('en')} rows × ${CSV_COLUMNS.length} columns, ${mb(bytes)}`)
  const python = withDatasette ? await ensureDatasetteVenv(path.join(PROJECT_ROOT, '.cache'), say) : undefined

  const startDataApi = (name: string, syncMaxBytes: number) => async (): Promise<RunningServer> => await spawnServer({
    command: process.execPath,
    args: ['bin/data-api.js', 'serve'],
    // Logging at warn, as the bare peer writes no line per request either; the in-process job worker.
    env: { DATABASE_URL: databaseUrl, LOG_LEVEL: 'warn', DATASET_SYNC_MAX_BYTES: String(syncMaxBytes) },
    cpu: SERVER_CPU,
    logFile: path.join(dir, `${name}.log`),
  })
  const syncMaxBytes = { requestPath: bytes * 2, jobPath: Math.min(defaults.syncMaxBytes, Math.floor(bytes / 2)) }

  const copyMs: number[] = []
  const referenceCopy = async (): Promise<void> => {
    await sql`drop table if exists reference_copy`
    await sql`create table reference_copy (id bigint, name text, score numeric, active boolean, day date, note text)`
    const started = performance.now()
    await pipeline(createReadStream(file), await sql`copy reference_copy from stdin with (format csv, header true)`.writable())
    copyMs.push(performance.now() - started)
    await sql`drop table reference_copy`
  }
  const post = async (base: string): Promise<{ status: number, id: number, rows: number }> => {
    const response = await request(`${base}/datasets?name=bench`, {
      method: 'POST',
      headers: { ...auth, 'content-type': 'text/csv', 'content-length': String(bytes) },
      body: createReadStream(file),
    })
    const body = await response.body.json() as { dataset: { id: number, rows: number } }
    if (response.statusCode !== 201 && response.statusCode !== 202) throw new Error(`POST /datasets answered ${response.statusCode}: ${JSON.stringify(body)}`)
    return { status: response.statusCode, id: body.dataset.id, rows: body.dataset.rows }
  }
  const remove = async (base: string, id: number): Promise<void> => {
    const response = await request(`${base}/datasets/${id}`, { method: 'DELETE', headers: auth })
    await response.body.dump()
  }

  // 1a. Request path, alternating with the reference COPY.
  const requestPath = { ms: [] as number[], peakRss: [] as number[], idleRss: [] as number[] }
  await servers.run(startDataApi('request-path', syncMaxBytes.requestPath), async ({ url: base, pid }) => {
    for (let run = 0; run < runs; run++) {
      await referenceCopy()
      requestPath.idleRss.push(await rss(pid))
      const started = performance.now()
      const { value: answer, peak } = await peakRss(pid, async () => await post(base))
      requestPath.ms.push(performance.now() - started)
      requestPath.peakRss.push(peak)
      if (answer.status !== 201 || answer.rows !== rowCount) throw new Error(`request path: ${answer.status} with ${answer.rows} rows`)
      await remove(base, answer.id) // its statistics job is cancelled with it
    }
  })
  say(`request path: ${requestPath.ms.map((ms) => ms.toFixed(0)).join(', ')} ms`)

  // 1b. Job path, on the server that serves everything after (default settings but the sync limit
  // at small --rows). Each run waits for its statistics job, so that none runs into the next.
  const jobPath = { ms: [] as number[], acceptedMs: [] as number[], peakRss: [] as number[], idleRss: [] as number[] }
  const statsIndexMs: number[] = []
  let datasetId = 0
  await servers.run(startDataApi('job-path', syncMaxBytes.jobPath), async ({ url: base, pid }) => {
    for (let run = 0; run < runs; run++) {
      await referenceCopy()
      if (datasetId !== 0) await remove(base, datasetId)
      jobPath.idleRss.push(await rss(pid))
      const started = performance.now()
      const { value: answer, peak } = await peakRss(pid, async () => {
        const accepted = await post(base)
        jobPath.acceptedMs.push(performance.now() - started)
        if (accepted.status !== 202) throw new Error(`job path: POST answered ${accepted.status}, not 202`)
        return { id: accepted.id, rows: await waitUntilReady(base, auth, accepted.id) }
      })
      const readyAt = performance.now()
      jobPath.ms.push(readyAt - started)
      jobPath.peakRss.push(peak)
      if (answer.rows !== rowCount) throw new Error(`job path: ${answer.rows} rows imported`)
      datasetId = answer.id
      await waitForStatsAndIndexes(sql, datasetId)
      statsIndexMs.push(performance.now() - readyAt)
    }
    say(`job path: ${jobPath.ms.map((ms) => ms.toFixed(0)).join(', ')} ms; statistics + indexes ${statsIndexMs.map((ms) => ms.toFixed(0)).join(', ')} ms; COPY ${copyMs.map((ms) => ms.toFixed(0)).join(', ')} ms`)
    // Fresh rows trigger autovacuum and autoanalyze, and the imports left a GB of dirty pages for
    // the next checkpoint: done now, neither runs into a measurement of the reads.
    await sql.unsafe(`vacuum analyze dataset_rows.ds_${datasetId}`)
    await sql`checkpoint`
  })

  // 2-4. Reads of the job path's data set, on a fresh data-api with default settings.
  const id = datasetId
  const deep = Math.floor(rowCount * 0.9)
  const deepRow = async (order: string): Promise<number> => {
    const [row] = await sql.unsafe<[{ _row: number }]>(`select _row from dataset_rows.ds_${id} order by ${order} offset ${deep} limit 1`)
    return Number(row._row)
  }
  const sorts: Array<[string, string]> = [['score', 'c3, _row'], ['-score', 'c3 desc, _row desc'], ['day', 'c5, _row'], ['-day', 'c5 desc, _row desc'], ['name', 'c2, _row'], ['-id', 'c1 desc, _row desc']]
  const rowsPath = `/datasets/${id}/rows?limit=100`
  const pageCases: Array<[string, string]> = [
    ['row order, first page', rowsPath],
    ['row order, cursor 90 % deep', `${rowsPath}&cursor=${encodeCursor({ s: '', v: null, r: await deepRow('_row') })}`],
  ]
  for (const [sort, order] of sorts) {
    pageCases.push([`sort=${sort}, first page`, `${rowsPath}&sort=${sort}`])
    pageCases.push([`sort=${sort}, cursor 90 % deep`, `${rowsPath}&sort=${sort}&cursor=${encodeCursor({ s: sort, v: '', r: await deepRow(order) })}`])
  }
  pageCases.push(['filter score__gt=500 & active=true, sort=-score, first page', FILTERED_PATH(id)])
  pageCases.push(['the same, with its total (default `_count`)', COUNTED_PATH(id)])

  const dataApiReads = await servers.run(startDataApi('reads', defaults.syncMaxBytes), async ({ url: base }) => {
    const pages: PageCase[] = []
    for (const [what, target] of pageCases) {
      pages.push({ what, dataApi: await latencies(`${base}${target}`, LATENCY_REQUESTS) })
      say(`data-api ${what}: p50 ${pages.at(-1)!.dataApi.p50.toFixed(2)} ms, p99 ${pages.at(-1)!.dataApi.p99.toFixed(2)} ms`)
    }
    const filtered = await load(`${base}${FILTERED_PATH(id)}`)
    const counted = await load(`${base}${COUNTED_PATH(id)}`)
    const csv = await countLines(`${base}/datasets/${id}/export?format=csv`)
    const ndjson = await countLines(`${base}/datasets/${id}/export?format=ndjson`)
    if (csv.lines - 1 !== rowCount || ndjson.lines !== rowCount) throw new Error(`export: ${csv.lines} CSV lines, ${ndjson.lines} NDJSON lines`)
    return { pages, filtered, counted, export: { dataApi: { rows: csv.lines - 1, ms: csv.ms }, ndjson: { rows: ndjson.lines, ms: ndjson.ms } } }
  })
  say(`data-api filtered page: ${dataApiReads.filtered.rps.toFixed(0)} req/s`)

  // The bare peer runs the SELECT data-api runs for the filtered page, read from data-api's code.
  const captured = await captureRowsQueries(databaseUrl, id, { _limit: 100, _sort: '-score', ...FILTER }, defaults.pageMaxBytes)
  if (captured.queries.length !== 1 || captured.rows !== 100) throw new Error(`queryRows sent ${captured.queries.length} queries (expected one) for ${captured.rows} rows`)
  const [query] = captured.queries as [typeof captured.queries[0]]
  const bare = await servers.run(async () => await spawnServer({
    command: process.execPath,
    args: ['bench/peers/bare-fastify.ts'],
    env: { DATABASE_URL: databaseUrl, ROWS_SQL: query.text, ROWS_PARAMS: JSON.stringify(query.parameters) },
    cpu: SERVER_CPU,
  }), async ({ url: base }) => {
    const response = await request(`${base}/rows`)
    const { rows } = await response.body.json() as { rows: unknown[] }
    if (response.statusCode !== 200 || rows.length !== 101) throw new Error(`bare peer /rows: ${response.statusCode} with ${rows.length} rows`)
    return await load(`${base}/rows`)
  })
  say(`bare peer filtered page: ${bare.rps.toFixed(0)} req/s`)

  // Datasette on the same CSV.
  let datasette: { ingest: { insertMs: number, prepareMs: number }, firstPage: Latency, filtered: LoadRun, export: { rows: number, ms: number } } | undefined
  if (python !== undefined) {
    const db = path.join(dir, 'data.db')
    const ingest = await loadSqlite({ python, csv: file, db, columns: [...CSV_COLUMNS], booleanColumns: ['active'], cpu: SERVER_CPU })
    say(`sqlite-utils insert: ${ingest.insertMs.toFixed(0)} ms; booleans + indexes ${ingest.prepareMs.toFixed(0)} ms`)
    datasette = await servers.run(async () => await startDatasette({ python, db, cpu: SERVER_CPU }), async ({ url: base }) => {
      const page = await (await request(`${base}${DATASETTE_FILTERED_PATH}`)).body.json() as { rows: unknown[] }
      if (page.rows.length !== 100) throw new Error(`Datasette's filtered page has ${page.rows.length} rows`)
      const firstPage = await latencies(`${base}${DATASETTE_FIRST_PAGE_PATH}`, LATENCY_REQUESTS)
      const filtered = await load(`${base}${DATASETTE_FILTERED_PATH}`)
      const csv = await countLines(`${base}/data/rows.csv?_stream=on&_size=max`)
      if (csv.lines - 1 !== rowCount) throw new Error(`Datasette's CSV has ${csv.lines} lines`)
      return { ingest, firstPage, filtered, export: { rows: csv.lines - 1, ms: csv.ms } }
    })
    say(`Datasette: first page p99 ${datasette.firstPage.p99.toFixed(2)} ms, filtered page ${datasette.filtered.rps.toFixed(0)} req/s, CSV ${datasette.export.ms.toFixed(0)} ms`)
  }

  const results: DatasetsResults = {
    startedAt: startedAt.toISOString(),
    rows: rowCount,
    csvBytes: bytes,
    runs,
    pinned: isPinned ? `servers and sqlite-utils on CPU ${SERVER_CPU}, clients and load on CPU ${CLIENT_CPU} (taskset); PostgreSQL unpinned` : 'not pinned (taskset unavailable)',
    postgres: version,
    syncMaxBytes,
    ingest: { copyMs, request: requestPath, job: jobPath, statsIndexMs, datasette: datasette?.ingest },
    firstPage: { dataApi: dataApiReads.pages[0]!.dataApi, datasette: datasette?.firstPage },
    pages: dataApiReads.pages,
    filtered: {
      connections: LOAD_CONNECTIONS,
      durationSeconds: LOAD_SECONDS,
      dataApiPath: FILTERED_PATH(id),
      datasettePath: DATASETTE_FILTERED_PATH,
      query: { text: query.text, parameters: query.parameters },
      dataApi: dataApiReads.filtered,
      dataApiCounted: dataApiReads.counted,
      bare,
      datasette: datasette?.filtered,
    },
    export: { ...dataApiReads.export, datasette: datasette?.export },
  }
  const baseline = rowCount === BASELINE_ROWS ? undefined : await baselineRun()
  if (baseline !== undefined) {
    results.scale = {
      baseline: `${baseline.file} (${baseline.run.startedAt})`,
      cases: results.pages.flatMap((page) => {
        const then = baseline.run.pages.find((c) => c.what === page.what)
        return then === undefined ? [] : [{ what: page.what, p50Ratio: page.dataApi.p50 / then.dataApi.p50, p99Ratio: page.dataApi.p99 / then.dataApi.p99 }]
      }),
    }
  }
  await fs.mkdir(RESULTS_DIR, { recursive: true })
  const out = path.join(RESULTS_DIR, `datasets-${results.startedAt.replace(/[:.]/g, '-')}.json`)
  await fs.writeFile(out, `${JSON.stringify(results, null, 2)}\n`)
  say(`\n${renderTable(results)}\n\nmedian COPY ${median(copyMs).toFixed(0)} ms; written to ${path.relative(PROJECT_ROOT, out)}`)
} finally {
  await world.close()
}
