// Issue #19's targets, each a ratio of two figures measured side by side in one run on one embedded
// PostgreSQL (durable settings):
//   node bench/query-power.ts [--rows 10000000] [--datasette-rows 1000000] [--requests 20] [--no-datasette]
// A generated CSV of --rows rows × 8 columns (every type: an id, an integer, a numeric, a boolean, a
// date, a timestamp, a low-cardinality text category and a text of words for search) is uploaded to
// data-api (the request path while the file is at most REQUEST_PATH_MAX_BYTES, it is the faster
// one; above, the job path, as the request path holds the body in memory) and its statistics job
// (column and GIN search indexes, ANALYZE) awaited. Then, on a fresh data-api with default settings
// but deadlines high enough that nothing measured times out:
// 1. facets on 5 columns with a filter: one request with all 5 vs each alone, interleaved, p50/p99;
// 2. `_count=estimated` vs `_count=exact` over a filter every row passes (the count's Server-Timing part);
// 3. a `_q=` search page's p99 vs a plain rows page's;
// 4. the aggregate route vs its `group by` run directly through postgres.js from this process;
// 5. against Datasette 0.65 on --datasette-rows rows (the same generator's first rows, loaded by
//    sqlite-utils with one index per column, bench/datasette-peer.ts): facets on category and
//    active, sequential; a filtered, sorted page at 32 connections (autocannon, bench/load.ts).
// Facets, counts and the aggregate route may not exist on the data-api being measured: a scenario
// whose route answers 400 or 404 is skipped with that answer. data-api and Datasette run one at a
// time pinned to CPU 0; this process and the load generator on CPU 1; PostgreSQL is not pinned.
// The table is printed as Markdown and the run written to results/query-<time>.json.
import { createReadStream } from 'node:fs'
import fs from 'node:fs/promises'
import path from 'node:path'
import { setTimeout as delay } from 'node:timers/promises'
import { parseArgs } from 'node:util'
import postgres from 'postgres'
import { request } from 'undici'
import type { Sql } from '../src/db/pool.ts'
import { AGGREGATE_PARAMETERS, queryAggregate } from '../src/routes/datasets/aggregate.ts'
import { rowsTable } from '../src/routes/datasets/table.ts'
import { DataQuery } from '../src/routes/datasets/view.ts'
import { PROJECT_ROOT, spawnServer, type RunningServer } from '../tools/processes.ts'
import { CLIENT_CPU, openBenchWorld, SERVER_CPU, waitUntilReady, type BenchWorld } from './bench-world.ts'
import { latencies, summarize, timeRequest, writeCsv, type Latency, type TimedResponse } from './dataset-measures.ts'
import { ensureDatasetteVenv, loadSqlite, startDatasette } from './datasette-peer.ts'
import { runWarmLoad } from './load.ts'
import { captureQueries } from './rows-query.ts'
import { renderQueryTable, type AggregateResult, type CountResult, type DatasetteResult, type FacetsResult, type QueryResults, type SearchResult, type Skipped } from './query-report.ts'

const { values } = parseArgs({
  options: {
    rows: { type: 'string', default: '10000000' },
    'datasette-rows': { type: 'string', default: '1000000' },
    requests: { type: 'string', default: '20' },
    'no-datasette': { type: 'boolean', default: false },
  },
})
const rowCount = Number(values.rows)
const datasetteRows = Number(values['datasette-rows'])
/** Sequential requests per case of the heavy scenarios (facets, counts, aggregate; after 2 that warm up). */
const requests = Number(values.requests)
const withDatasette = !values['no-datasette']
if (!Number.isSafeInteger(rowCount) || rowCount < 1000 || !Number.isSafeInteger(datasetteRows) || datasetteRows < 1000 || !Number.isSafeInteger(requests) || requests < 1) {
  throw new Error('--rows and --datasette-rows must be ≥ 1000, --requests ≥ 1')
}

const REQUEST_PATH_MAX_BYTES = 512 * 1_048_576
const WARMUP_REQUESTS = 2
/** Requests per page case (search, plain), after 50 that warm up: pages are cheap, p99 needs many. */
const PAGE_REQUESTS = 500
const LOAD_CONNECTIONS = 32
const LOAD_SECONDS = 10
const LOAD_WARMUP_SECONDS = 3
const RESULTS_DIR = path.join(PROJECT_ROOT, 'bench', 'results')
/** Deadlines of the reads server: high, so that a measurement is never of a timeout (10 M rows take seconds). */
const READ_DEADLINES = { FACET_TIMEOUT_MS: '600000', QUERY_TIMEOUT_MS: '600000' }

// The data set. Values hashed from the line number, so that filters select rows scattered over the
// table (not a range of _row) and columns are independent of each other.
const COLUMNS = ['id', 'qty', 'price', 'active', 'day', 'at', 'category', 'words'] as const
const CATEGORIES = ['books', 'music', 'film', 'games', 'sports', 'garden', 'tools', 'toys', 'food', 'health', 'travel', 'office']
const COMMON_WORDS = ['data', 'open', 'city', 'north', 'south', 'river', 'green', 'house', 'market', 'school']
const SYLLABLES = ['ka', 'lo', 'mi', 'ne', 'ru', 'sa', 'ti', 'vo', 'ze', 'pa']
const syllables = (k: number, count: number): string => Array.from({ length: count }, (_, i) => SYLLABLES[Math.floor(k / 10 ** i) % 10]).join('')
/** words: one of 10 common words (~10 % of rows each), one of 100 (~1 %), one of 1,000 (~0.1 %). */
const SEARCH_WORD = `${syllables(37, 2)}n` // one of the 100: ~1 % of rows, neither a walk of the first rows nor a handful of index hits
const pad = (n: number): string => String(n).padStart(2, '0')
const DAYS = Array.from({ length: 1826 }, (_, d) => new Date(Date.UTC(2020, 0, 1 + d)).toISOString().slice(0, 10))
const hash = (i: number): number => Math.imul(i + 1, 2654435761) >>> 0
const line = (i: number): string => {
  const h = hash(i)
  const words = `${COMMON_WORDS[h % 10]} ${syllables((h >>> 8) % 100, 2)}n ${syllables((h >>> 16) % 1000, 3)}r`
  return `${i + 1},${(h >>> 3) % 1000},${((i * 7919) % 100_000) / 100},${i % 3 === 0},${DAYS[h % DAYS.length]},${DAYS[(i * 13) % DAYS.length]}T${pad(i % 24)}:${pad((i >>> 5) % 60)}:${pad((i >>> 11) % 60)}Z,${CATEGORIES[(h >>> 4) % CATEGORIES.length]},${words}`
}

// The questions asked.
const FACET_FILTER = 'qty__lt=500'
const FACET_COLUMNS = ['category', 'active', 'price', 'day', 'at']
const facetsPath = (id: number, columns: string[]): string => `/datasets/${id}/rows?${FACET_FILTER}&${fresh()}&${columns.map((c) => `_facet=${c}`).join('&')}&_limit=10&_count=none`
// A filter every row passes that differs from request to request (id > 0, id > -1, …): data-api
// keeps an exact total and a facet per filter and data set version (view-cache.ts), so a request
// with a filter seen before measures memory, not the count or the scan.
let freshRequests = 0
const FRESH_FILTER = 'id__gt=-k'
const fresh = (): string => `id__gt=${-freshRequests++}`
const COUNT_FILTER = FRESH_FILTER // every row: without a filter the total is the stored row count in both modes
const countPath = (id: number, mode: string): string => `/datasets/${id}/rows?${fresh()}&_limit=1&_count=${mode}`
const AGGREGATE_QUERY = `${FACET_FILTER}&_group_by=category,active&_metrics=count,sum:price,avg:price,min:day,max:day&_sort=-count&_limit=100`
const DATASETTE_FACETS = ['category', 'active']
const DATASETTE_SETTINGS: Array<[string, string]> = [
  // Datasette's defaults stop a facet at 200 ms and a query at 1 s (answering "timed out" fast):
  // raised, so that Datasette computes the facets it is compared on.
  ['facet_time_limit_ms', '60000'],
  ['sql_time_limit_ms', '60000'],
]
const facets2Query = `${DATASETTE_FACETS.map((c) => `_facet=${c}`).join('&')}&_limit=100&_count=none`
/** Computed: a filter not seen before (Datasette computes its facets on every request). */
const dataApiFacets2Path = (id: number): string => `/datasets/${id}/rows?${fresh()}&${facets2Query}`
/** The same facets asked again: answered from memory. */
const dataApiFacets2AgainPath = (id: number): string => `/datasets/${id}/rows?${facets2Query}`
const DATASETTE_FACETS_PATH = `/data/rows.json?${DATASETTE_FACETS.map((c) => `_facet=${c}`).join('&')}&_size=100&_shape=objects&_nocount=1`
const filteredPath = (id: number): string => `/datasets/${id}/rows?price__gt=500&active=true&_sort=-price&_limit=100&_count=none`
const DATASETTE_FILTERED_PATH = '/data/rows.json?price__gt=500&active=1&_sort_desc=price&_size=100&_shape=objects&_nocount=1'

const say = (line: string): void => { console.log(line) }
const mb = (bytes: number): string => `${(bytes / 1_048_576).toFixed(0)} MB`
const p50 = (l: Latency): string => `p50 ${l.p50.toFixed(2)} ms, p99 ${l.p99.toFixed(2)} ms`

/** Undefined when `url` answers 200; the reason to skip when it answers 400 or 404 (the feature is not there); throws otherwise. */
async function unsupported (url: string): Promise<string | undefined> {
  const response = await request(url)
  const text = await response.body.text()
  if (response.statusCode === 200) return undefined
  const detail = (JSON.parse(text) as { detail?: string }).detail ?? text
  if (response.statusCode === 400 || response.statusCode === 404) return `${new URL(url).pathname} answered ${response.statusCode} (${detail.slice(0, 160)})`
  throw new Error(`${url} answered ${response.statusCode}: ${text.slice(0, 500)}`)
}

/**
 * `requests` rounds (after WARMUP_REQUESTS) of every case in turn, so that drift touches all cases
 * alike; each response checked by `check`. Per case, the responses in order.
 */
async function interleaved<K extends string> (cases: Record<K, () => Promise<TimedResponse>>, check: (name: K, response: TimedResponse) => void = () => {}): Promise<Record<K, TimedResponse[]>> {
  const names = Object.keys(cases) as K[]
  const measured = Object.fromEntries(names.map((name) => [name, [] as TimedResponse[]])) as Record<K, TimedResponse[]>
  for (let round = 0; round < requests + WARMUP_REQUESTS; round++) {
    for (const name of names) {
      const response = await cases[name]()
      check(name, response)
      if (round >= WARMUP_REQUESTS) measured[name].push(response)
    }
  }
  return measured
}

const timesOf = (responses: TimedResponse[], part?: string): Latency =>
  summarize(responses.map((response) => (part === undefined ? response.ms : response.serverTiming[part] ?? Number.NaN)))
const json = <T>(response: TimedResponse): T => JSON.parse(response.body.toString('utf8')) as T

/** The statistics job of a data set completed (pg-boss's job table): its indexes and ANALYZE are done. */
async function waitForStatistics (sql: Sql, datasetId: number): Promise<void> {
  for (;;) {
    const [job] = await sql<Array<{ state: string }>>`
      select state from pgboss.job where name = 'compute_dataset_stats' and data->>'dataset_id' = ${String(datasetId)} order by created_on desc limit 1`
    if (job?.state === 'completed') return
    if (job?.state === 'failed' || job?.state === 'cancelled') throw new Error(`the statistics job of data set ${datasetId} ${job.state}`)
    await delay(100)
  }
}

async function upload (world: BenchWorld, base: string, file: string, bytes: number): Promise<number> {
  const response = await request(`${base}/datasets?name=${path.basename(file, '.csv')}`, {
    method: 'POST',
    headers: { ...world.auth, 'content-type': 'text/csv', 'content-length': String(bytes) },
    body: createReadStream(file),
  })
  const body = await response.body.json() as { dataset: { id: number, rows: number } }
  if (response.statusCode === 201) return body.dataset.id
  if (response.statusCode !== 202) throw new Error(`POST /datasets answered ${response.statusCode}: ${JSON.stringify(body)}`)
  await waitUntilReady(base, world.auth, body.dataset.id)
  return body.dataset.id
}

async function facetsScenario (base: string, id: number): Promise<FacetsResult | Skipped> {
  const skip = await unsupported(`${base}${facetsPath(id, FACET_COLUMNS)}`)
  if (skip !== undefined) return { skipped: skip }
  const cases = Object.fromEntries([['all', FACET_COLUMNS], ...FACET_COLUMNS.map((column) => [column, [column]])].map(([name, columns]) =>
    [name, async () => await timeRequest(`${base}${facetsPath(id, columns as string[])}`)])) as Record<string, () => Promise<TimedResponse>>
  const measured = await interleaved(cases, (name, response) => {
    const { facets } = json<{ facets?: Record<string, { timed_out?: boolean }> }>(response)
    const late = Object.entries(facets ?? {}).filter(([, facet]) => facet.timed_out === true).map(([column]) => column)
    if (facets === undefined || late.length > 0) throw new Error(`facets (${name}): ${facets === undefined ? 'none in the answer' : `${late.join(', ')} timed out`}`)
  })
  return {
    filter: FACET_FILTER,
    columns: FACET_COLUMNS,
    requests,
    all: timesOf(measured.all!),
    alone: FACET_COLUMNS.map((column) => ({ column, latency: timesOf(measured[column]!) })),
  }
}

async function countScenario (base: string, id: number): Promise<CountResult | Skipped> {
  const skip = await unsupported(`${base}${countPath(id, 'estimated')}`)
  if (skip !== undefined) return { skipped: skip }
  const measured = await interleaved({
    exact: async () => await timeRequest(`${base}${countPath(id, 'exact')}`),
    estimated: async () => await timeRequest(`${base}${countPath(id, 'estimated')}`),
  })
  const mode = (responses: TimedResponse[]): CountResult['exact'] => {
    if (responses.some((response) => response.serverTiming.count === undefined)) throw new Error('a count answered without a Server-Timing `count` entry')
    return { request: timesOf(responses), part: timesOf(responses, 'count'), total: json<{ total: number }>(responses[0]!).total }
  }
  const exact = mode(measured.exact)
  if (exact.total !== rowCount) throw new Error(`_count=exact over ${COUNT_FILTER} answered ${exact.total}, not ${rowCount}`)
  return { filter: COUNT_FILTER, requests, exact, estimated: mode(measured.estimated) }
}

async function searchScenario (base: string, id: number): Promise<SearchResult | Skipped> {
  const plainPath = `/datasets/${id}/rows?_limit=100`
  const searchPath = `${plainPath}&_q=${SEARCH_WORD}`
  const skip = await unsupported(`${base}${searchPath}`)
  if (skip !== undefined) return { skipped: skip }
  const { rows } = json<{ rows: unknown[] }>(await timeRequest(`${base}${searchPath}`))
  if (rows.length !== 100) throw new Error(`_q=${SEARCH_WORD} found ${rows.length} rows, not a full page`)
  const search = await latencies(`${base}${searchPath}`, PAGE_REQUESTS)
  const plain = await latencies(`${base}${plainPath}`, PAGE_REQUESTS)
  return { q: SEARCH_WORD, requests: PAGE_REQUESTS, plainPath, searchPath, plain, search }
}

/** The SQL the aggregate route sends for AGGREGATE_QUERY, read from data-api's code (aggregate.ts) through postgres.js's debug hook. */
async function aggregateSql (databaseUrl: string, id: number): Promise<AggregateResult['sql']> {
  const query = Object.fromEntries(new URLSearchParams(AGGREGATE_QUERY))
  const { queries } = await captureQueries(databaseUrl, id, async (sql, columns) =>
    await queryAggregate(sql, id, new DataQuery(columns, query, AGGREGATE_PARAMETERS), { signal: new AbortController().signal }))
  if (queries.length !== 1) throw new Error(`queryAggregate sent ${queries.length} queries (expected one)`)
  const [captured] = queries as [typeof queries[0]]
  return { text: captured.text, parameters: captured.parameters, source: 'captured' }
}

async function aggregateScenario (world: BenchWorld, base: string, id: number): Promise<AggregateResult | Skipped> {
  const routePath = `/datasets/${id}/aggregate?${AGGREGATE_QUERY}`
  const skip = await unsupported(`${base}${routePath}`)
  if (skip !== undefined) return { skipped: skip }
  const query = await aggregateSql(world.databaseUrl, id)
  // One connection of its own, in this process (CPU 1): what a caller of postgres.js gets.
  const direct = postgres(world.databaseUrl, { max: 1, onnotice: () => {} })
  try {
    const measured = await interleaved({
      route: async () => await timeRequest(`${base}${routePath}`),
      direct: async () => {
        const started = performance.now()
        const rows = await direct.unsafe(query.text, query.parameters as postgres.ParameterOrJSON<never>[])
        return { ms: performance.now() - started, body: Buffer.from(JSON.stringify({ groups: rows })), serverTiming: {} }
      },
    })
    const groups = (response: TimedResponse): number => json<{ groups: unknown[] }>(response).groups.length
    const [routeGroups, directGroups] = [groups(measured.route[0]!), groups(measured.direct[0]!)]
    if (routeGroups !== Math.min(directGroups, 100)) throw new Error(`the aggregate route answered ${routeGroups} groups, its SQL ${directGroups}`)
    return { path: routePath, sql: query, requests, groups: routeGroups, route: timesOf(measured.route), direct: timesOf(measured.direct) }
  } finally {
    await direct.end()
  }
}

async function datasetteScenario (world: BenchWorld, startReads: () => Promise<RunningServer>, file: string, id: number): Promise<DatasetteResult> {
  const python = await ensureDatasetteVenv(path.join(PROJECT_ROOT, '.cache'), say)
  const db = path.join(world.dir, 'data.db')
  const ingest = await loadSqlite({ python, csv: file, db, columns: [...COLUMNS], booleanColumns: ['active'], cpu: SERVER_CPU })
  say(`sqlite-utils insert of ${datasetteRows.toLocaleString('en')} rows: ${ingest.insertMs.toFixed(0)} ms; booleans + indexes ${ingest.prepareMs.toFixed(0)} ms`)
  const load = async (url: string): ReturnType<typeof runWarmLoad> => await runWarmLoad({ url, connections: LOAD_CONNECTIONS, durationSeconds: LOAD_SECONDS }, LOAD_WARMUP_SECONDS, CLIENT_CPU)

  const dataApi = await world.servers.run(startReads, async ({ url: base }) => {
    const skip = await unsupported(`${base}${dataApiFacets2Path(id)}`)
    const facets = skip === undefined ? timesOf(await timedSequence(() => `${base}${dataApiFacets2Path(id)}`)) : undefined
    const again = skip === undefined ? timesOf(await timedSequence(() => `${base}${dataApiFacets2AgainPath(id)}`)) : undefined
    if (facets !== undefined) say(`data-api facets on ${DATASETTE_FACETS.join(', ')}: ${p50(facets)}; asked again ${p50(again!)}`)
    const filtered = await load(`${base}${filteredPath(id)}`)
    say(`data-api filtered page: ${filtered.rps.toFixed(0)} req/s`)
    return { skip, facets, again, filtered }
  })
  const datasette = await world.servers.run(async () => await startDatasette({ python, db, cpu: SERVER_CPU, settings: DATASETTE_SETTINGS }), async ({ url: base }) => {
    const page = json<{ rows: unknown[], facet_results?: Record<string, unknown>, facets_timed_out?: string[] }>(await timeRequest(`${base}${DATASETTE_FACETS_PATH}`))
    const missing = DATASETTE_FACETS.filter((column) => page.facet_results?.[column] === undefined)
    if (page.rows.length !== 100 || missing.length > 0 || (page.facets_timed_out ?? []).length > 0) {
      throw new Error(`Datasette's facet page: ${page.rows.length} rows, facets missing: ${missing.join(', ') || 'none'}, timed out: ${(page.facets_timed_out ?? []).join(', ') || 'none'}`)
    }
    const facets = timesOf(await timedSequence(() => `${base}${DATASETTE_FACETS_PATH}`))
    say(`Datasette facets on ${DATASETTE_FACETS.join(', ')}: ${p50(facets)}`)
    const filtered = await load(`${base}${DATASETTE_FILTERED_PATH}`)
    say(`Datasette filtered page: ${filtered.rps.toFixed(0)} req/s`)
    return { facets, filtered }
  })
  return {
    rows: datasetteRows,
    settings: DATASETTE_SETTINGS,
    facets: dataApi.facets === undefined
      ? { skipped: dataApi.skip! }
      : { dataApiPath: `/datasets/${id}/rows?${FRESH_FILTER}&${facets2Query}`, datasettePath: DATASETTE_FACETS_PATH, requests, dataApi: dataApi.facets, dataApiAgain: dataApi.again, datasette: datasette.facets },
    filtered: { dataApiPath: filteredPath(id), datasettePath: DATASETTE_FILTERED_PATH, connections: LOAD_CONNECTIONS, durationSeconds: LOAD_SECONDS, dataApi: dataApi.filtered, datasette: datasette.filtered },
  }
}

/** `requests` sequential GETs after WARMUP_REQUESTS, of the URL `url()` gives each time. */
async function timedSequence (url: () => string): Promise<TimedResponse[]> {
  return (await interleaved({ only: async () => await timeRequest(url()) })).only
}

const startedAt = new Date()
const world = await openBenchWorld(say)
try {
  const { sql, databaseUrl, servers } = world
  const file = path.join(world.dir, 'query.csv')
  const bytes = await writeCsv(file, COLUMNS, rowCount, line)
  const smallFile = path.join(world.dir, 'datasette.csv')
  const smallBytes = withDatasette ? await writeCsv(smallFile, COLUMNS, datasetteRows, line) : 0
  say(`CSV: ${rowCount.toLocaleString('en')} rows × ${COLUMNS.length} columns, ${mb(bytes)}${withDatasette ? `; ${datasetteRows.toLocaleString('en')} rows for Datasette, ${mb(smallBytes)}` : ''}`)

  const startDataApi = (name: string, env: Record<string, string>) => async (): Promise<RunningServer> => await spawnServer({
    command: process.execPath,
    args: ['bin/data-api.js', 'serve'],
    env: { DATABASE_URL: databaseUrl, LOG_LEVEL: 'warn', ...env },
    cpu: SERVER_CPU,
    logFile: path.join(world.dir, `${name}.log`),
  })
  const uploadPath = bytes <= REQUEST_PATH_MAX_BYTES ? 'request' : 'job'
  // The request path for files up to the limit (both files the same way); 0: every upload a job.
  const syncMaxBytes = uploadPath === 'request' ? Math.max(bytes, smallBytes) * 2 : 0
  const uploaded = await servers.run(startDataApi('upload', { DATASET_SYNC_MAX_BYTES: String(syncMaxBytes) }), async ({ url: base }) => {
    const started = performance.now()
    const id = await upload(world, base, file, bytes)
    const readyAt = performance.now()
    await waitForStatistics(sql, id)
    const statisticsAt = performance.now()
    say(`upload (${uploadPath} path): ${(readyAt - started).toFixed(0)} ms; statistics + indexes ${(statisticsAt - readyAt).toFixed(0)} ms`)
    const smallId = withDatasette ? await upload(world, base, smallFile, smallBytes) : undefined
    if (smallId !== undefined) await waitForStatistics(sql, smallId)
    return { id, smallId, ms: readyAt - started, statisticsMs: statisticsAt - readyAt }
  })
  // Fresh rows trigger autovacuum, and the imports left dirty pages for the next checkpoint: done
  // now, neither runs into a measurement.
  for (const id of [uploaded.id, uploaded.smallId].filter((id) => id !== undefined)) await sql.unsafe(`vacuum analyze ${rowsTable(id).name}`)
  await sql`checkpoint`

  const startReads = startDataApi('reads', READ_DEADLINES)
  const { id } = uploaded
  const reads = await servers.run(startReads, async ({ url: base }) => {
    const facets = await facetsScenario(base, id)
    say(`facets: ${'skipped' in facets ? facets.skipped : `all 5 ${p50(facets.all)}; ${facets.alone.map(({ column, latency }) => `${column} ${latency.p50.toFixed(1)}`).join(', ')} ms alone (p50)`}`)
    const count = await countScenario(base, id)
    say(`count: ${'skipped' in count ? count.skipped : `estimated ${p50(count.estimated.part)}; exact ${p50(count.exact.part)}`}`)
    const search = await searchScenario(base, id)
    say(`search: ${'skipped' in search ? search.skipped : `_q ${p50(search.search)}; plain ${p50(search.plain)}`}`)
    const aggregate = await aggregateScenario(world, base, id)
    say(`aggregate: ${'skipped' in aggregate ? aggregate.skipped : `route ${p50(aggregate.route)}; direct ${p50(aggregate.direct)}`}`)
    return { facets, count, search, aggregate }
  })
  const datasette: DatasetteResult | Skipped = uploaded.smallId === undefined
    ? { skipped: '--no-datasette' }
    : await datasetteScenario(world, startReads, smallFile, uploaded.smallId)

  const results: QueryResults = {
    startedAt: startedAt.toISOString(),
    rows: rowCount,
    csvBytes: bytes,
    columns: [...COLUMNS],
    pinned: world.isPinned ? `servers and sqlite-utils on CPU ${SERVER_CPU}, clients and load on CPU ${CLIENT_CPU} (taskset); PostgreSQL unpinned` : 'not pinned (taskset unavailable)',
    postgres: world.version,
    upload: { path: uploadPath, ms: uploaded.ms, statisticsMs: uploaded.statisticsMs },
    ...reads,
    datasette,
  }
  await fs.mkdir(RESULTS_DIR, { recursive: true })
  const out = path.join(RESULTS_DIR, `query-${results.startedAt.replace(/[:.]/g, '-')}.json`)
  await fs.writeFile(out, `${JSON.stringify(results, null, 2)}\n`)
  say(`\n${renderQueryTable(results)}\n\nwritten to ${path.relative(PROJECT_ROOT, out)}`)
} finally {
  await world.close()
}
