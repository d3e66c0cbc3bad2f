// What one run of bench/datasets.ts holds (results/datasets-<time>.json) and its Markdown table:
// data-api beside the bare Fastify + postgres.js peer and Datasette, each figure with its target.
import type { LoadRun } from './results.ts'
import type { Latency } from './dataset-measures.ts'
import { median } from './statistics.ts'

export interface IngestPath {
  /** Start of the POST to rows readable (201; or 202, then GET /datasets/{id} says ready), per run. */
  ms: number[]
  /** The server's peak RSS during each run, bytes. */
  peakRss: number[]
  /** The server's RSS just before each POST, bytes. */
  idleRss: number[]
  /** Job path: when the POST answered 202, per run. */
  acceptedMs?: number[]
}

export interface PageCase { what: string, dataApi: Latency }

export interface DatasetsResults {
  startedAt: string
  rows: number
  csvBytes: number
  runs: number
  pinned: string
  postgres: string
  syncMaxBytes: { requestPath: number, jobPath: number }
  ingest: {
    copyMs: number[]
    request: IngestPath
    job: IngestPath
    /** From ready to statistics stored and every column indexed (the job the import enqueued), per job-path run. */
    statsIndexMs: number[]
    datasette?: { insertMs: number, prepareMs: number }
  }
  firstPage: { dataApi: Latency, datasette?: Latency }
  /** data-api pages: the first and one 90 % deep in every sort. */
  pages: PageCase[]
  filtered: {
    connections: number
    durationSeconds: number
    dataApiPath: string
    datasettePath: string
    /** The SELECT data-api ran for that page, which the bare peer runs too. */
    query: { text: string, parameters: string[] }
    dataApi: LoadRun
    /** The same page with its total (the default `_count`); absent in runs before it was measured. */
    dataApiCounted?: LoadRun
    bare: LoadRun
    datasette?: LoadRun
  }
  export: { dataApi: { rows: number, ms: number }, ndjson: { rows: number, ms: number }, datasette?: { rows: number, ms: number } }
  /** Against the newest 1,000,000-row run in results/, when this run has another size. */
  scale?: { baseline: string, cases: Array<{ what: string, p50Ratio: number, p99Ratio: number }> }
}

const s = (ms: number): string => `${(ms / 1000).toFixed(2)} s`
const mb = (bytes: number): string => `${(bytes / 1_048_576).toFixed(0)} MB`
const latency = ({ p50, p99 }: Latency): string => `${p50.toFixed(2)} / ${p99.toFixed(2)} ms`
const rps = (run: LoadRun): string => `${run.rps.toFixed(0)} req/s (p99 ${run.p99} ms${run.errors + run.non2xx > 0 ? `, ${run.errors + run.non2xx} failed` : ''})`
const check = (met: boolean): string => (met ? '✅' : '❌')

export function renderTable (r: DatasetsResults): string {
  const copy = median(r.ingest.copyMs)
  const request = median(r.ingest.request.ms)
  const job = median(r.ingest.job.ms)
  const stats = median(r.ingest.statsIndexMs)
  const datasette = r.ingest.datasette
  const requestRatio = copy / request
  const jobRatio = copy / job
  const lines: string[] = [
    `${r.rows.toLocaleString('en')} rows × 6 columns (${mb(r.csvBytes)} of CSV), medians of ${r.runs} run(s); ${r.pinned}; PostgreSQL ${r.postgres}.`,
    '',
    '| | data-api | bare Fastify + postgres.js | Datasette | target |',
    '|---|---|---|---|---|',
    `| reference: COPY FROM STDIN (= \`psql \\copy\`) | ${s(copy)} | | | |`,
    `| upload → queryable, request path (201) | ${s(request)} = ${requestRatio.toFixed(2)} × COPY speed | | | ≥ 0.7 ${check(requestRatio >= 0.7)} |`,
    `| upload → queryable, job path (202 → ready) | ${s(job)} = ${jobRatio.toFixed(2)} × COPY speed; job / request ${(job / request).toFixed(2)} | | ${datasette === undefined ? '—' : `\`sqlite-utils insert --csv\` ${s(datasette.insertMs)}: data-api ${(datasette.insertMs / job).toFixed(1)} × faster`} | ≥ 0.7 ${check(jobRatio >= 0.7)}, ≤ 1.3 ${check(job / request <= 1.3)}${datasette === undefined ? '' : `, ≥ 10 × ${check(datasette.insertMs / job >= 10)}`} |`,
    `| then statistics + one index per column | ${s(stats)} (job) | | ${datasette === undefined ? '—' : `${s(datasette.prepareMs)} (booleans to 0/1, \`create-index\` × 6)`} | |`,
    ...(['request', 'job'] as const).map((which) => {
      const peak = Math.max(...r.ingest[which].peakRss)
      return `| server peak RSS, ${which} path | ${mb(peak)} (${mb(Math.max(...r.ingest[which].idleRss))} before the POST) | | | < 256 MB ${check(peak < 256 * 1_048_576)} |`
    }),
    `| first page (100 rows), p50 / p99, sequential | ${latency(r.firstPage.dataApi)} | | ${r.firstPage.datasette === undefined ? '—' : latency(r.firstPage.datasette)} | ${r.firstPage.datasette === undefined ? '' : `p99 ≤ Datasette's ${check(r.firstPage.dataApi.p99 <= r.firstPage.datasette.p99)}`} |`,
    `| filtered, sorted page, ${r.filtered.connections} connections | ${rps(r.filtered.dataApi)} = ${(r.filtered.dataApi.rps / r.filtered.bare.rps).toFixed(2)} × bare | ${rps(r.filtered.bare)} | ${r.filtered.datasette === undefined ? '—' : rps(r.filtered.datasette)} | ≥ 0.8 × bare ${check(r.filtered.dataApi.rps >= 0.8 * r.filtered.bare.rps)} |`,
    ...(r.filtered.dataApiCounted === undefined ? [] : [`| the same page with its total (default \`_count\`: counted once, then from memory) | ${rps(r.filtered.dataApiCounted)} = ${(r.filtered.dataApiCounted.rps / r.filtered.bare.rps).toFixed(2)} × bare | | | |`]),
    `| full CSV export | ${s(r.export.dataApi.ms)} (${(r.export.dataApi.rows / r.export.dataApi.ms * 1000).toFixed(0)} rows/s) | | ${r.export.datasette === undefined ? '—' : `${s(r.export.datasette.ms)} (${(r.export.datasette.rows / r.export.datasette.ms * 1000).toFixed(0)} rows/s)`} | |`,
    `| full NDJSON export | ${s(r.export.ndjson.ms)} (${(r.export.ndjson.rows / r.export.ndjson.ms * 1000).toFixed(0)} rows/s) | | | |`,
    '',
    `Filtered page: data-api \`${r.filtered.dataApiPath}\`; Datasette \`${r.filtered.datasettePath}\`; the bare peer runs data-api's SELECT (parameters ${JSON.stringify(r.filtered.query.parameters)}).`,
    '',
    '| data-api page (limit 100), sequential | p50 / p99 |' + (r.scale === undefined ? '' : ' × the 1 M run (p50 / p99), target ≤ 1.5 |'),
    '|---|---|' + (r.scale === undefined ? '' : '---|'),
    ...r.pages.map((page) => {
      const scaled = r.scale?.cases.find((c) => c.what === page.what)
      const ratio = r.scale === undefined ? '' : scaled === undefined ? ' — |' : ` ${scaled.p50Ratio.toFixed(2)} / ${scaled.p99Ratio.toFixed(2)} ${check(scaled.p50Ratio <= 1.5 && scaled.p99Ratio <= 1.5)} |`
      return `| ${page.what} | ${latency(page.dataApi)} |${ratio}`
    }),
  ]
  if (r.scale !== undefined) lines.push('', `Scale baseline: ${r.scale.baseline}.`)
  return lines.join('\n')
}
