// What one run of bench/query-power.ts holds (results/query-<time>.json) and its Markdown table:
// each target of issue #19 as a ratio of two figures measured side by side, with ✅/❌.
import type { Latency } from './dataset-measures.ts'
import type { LoadRun } from './results.ts'

/** A scenario that did not run: why (a route that answered 400/404, `--no-datasette`). */
export interface Skipped { skipped: string }

export interface FacetsResult {
  filter: string
  columns: string[]
  requests: number
  /** The request with every facet of `columns`. */
  all: Latency
  /** Each facet alone, with the same filter. */
  alone: Array<{ column: string, latency: Latency }>
}

export interface CountResult {
  filter: string
  requests: number
  /** Per mode: the request, its Server-Timing `count` part, and the total it answered. */
  exact: { request: Latency, part: Latency, total: number }
  estimated: { request: Latency, part: Latency, total: number }
}

export interface SearchResult {
  q: string
  requests: number
  plainPath: string
  searchPath: string
  plain: Latency
  search: Latency
}

export interface AggregateResult {
  path: string
  /** The SQL run directly through postgres.js: what the route sent (captured) or its equivalent. */
  sql: { text: string, parameters: unknown[], source: 'captured' | 'equivalent' }
  requests: number
  groups: number
  route: Latency
  direct: Latency
}

export interface DatasetteResult {
  rows: number
  settings: Array<[string, string]>
  /** dataApi: computed (a filter not seen before); dataApiAgain: the same facets asked again (from memory; absent in older runs). */
  facets: { dataApiPath: string, datasettePath: string, requests: number, dataApi: Latency, dataApiAgain?: Latency, datasette: Latency } | Skipped
  filtered: { dataApiPath: string, datasettePath: string, connections: number, durationSeconds: number, dataApi: LoadRun, datasette: LoadRun }
}

export interface QueryResults {
  startedAt: string
  rows: number
  csvBytes: number
  columns: string[]
  pinned: string
  postgres: string
  upload: { path: 'request' | 'job', ms: number, statisticsMs: number }
  facets: FacetsResult | Skipped
  count: CountResult | Skipped
  search: SearchResult | Skipped
  aggregate: AggregateResult | Skipped
  datasette: DatasetteResult | Skipped
}

const check = (met: boolean): string => (met ? '✅' : '❌')
const ms = (value: number): string => `${value < 10 ? value.toFixed(2) : value.toFixed(0)} ms`
const latency = ({ p50, p99 }: Latency): string => `${ms(p50)} / ${ms(p99)}`
const isSkipped = (part: object): part is Skipped => 'skipped' in part

function facetsRow (r: FacetsResult | Skipped): string {
  const what = 'facets on 5 columns with a filter: all 5 in one request vs the slowest alone (p50 / p99)'
  if (isSkipped(r)) return `| ${what} | skipped: ${r.skipped} | | | ≤ 1.1 × |`
  const slowest = r.alone.reduce((a, b) => (b.latency.p50 > a.latency.p50 ? b : a))
  const ratio = r.all.p50 / slowest.latency.p50
  return `| ${what} | ${latency(r.all)} (\`${r.columns.join(', ')}\`, ${r.filter}) | ${latency(slowest.latency)} (${slowest.column}) | ${ratio.toFixed(2)} × (p99 ${(r.all.p99 / slowest.latency.p99).toFixed(2)} ×) | ≤ 1.1 × ${check(ratio <= 1.1)} |`
}

function countRow (r: CountResult | Skipped): string {
  const what = '`_count=estimated` vs `_count=exact` of the whole set (the count part, p50 / p99)'
  if (isSkipped(r)) return `| ${what} | skipped: ${r.skipped} | | | < 0.01 × |`
  const ratio = r.estimated.part.p50 / r.exact.part.p50
  const error = r.exact.total === 0 ? 0 : Math.abs(r.estimated.total - r.exact.total) / r.exact.total
  return `| ${what} | ${latency(r.estimated.part)} (request ${latency(r.estimated.request)}; ${r.estimated.total.toLocaleString('en')}, ${(error * 100).toFixed(1)} % off) | ${latency(r.exact.part)} (request ${latency(r.exact.request)}; ${r.exact.total.toLocaleString('en')}) | ${ratio.toFixed(4)} × (requests ${(r.estimated.request.p50 / r.exact.request.p50).toFixed(4)} ×) | < 0.01 × ${check(ratio < 0.01)} |`
}

function searchRow (r: SearchResult | Skipped): string {
  const what = '`_q=` search page vs a plain rows page (100 rows, p50 / p99)'
  if (isSkipped(r)) return `| ${what} | skipped: ${r.skipped} | | | p99 ≤ 3 × |`
  const ratio = r.search.p99 / r.plain.p99
  return `| ${what} | ${latency(r.search)} (\`_q=${r.q}\`) | ${latency(r.plain)} | p99 ${ratio.toFixed(2)} × (p50 ${(r.search.p50 / r.plain.p50).toFixed(2)} ×) | p99 ≤ 3 × ${check(ratio <= 3)} |`
}

function aggregateRow (r: AggregateResult | Skipped): string {
  const what = 'aggregate route vs the same `group by` through postgres.js (p50 / p99)'
  if (isSkipped(r)) return `| ${what} | skipped: ${r.skipped} | | | ≤ 1.5 × |`
  const ratio = r.route.p50 / r.direct.p50
  return `| ${what} | ${latency(r.route)} (${r.groups} groups) | ${latency(r.direct)} (${r.sql.source} SQL) | ${ratio.toFixed(2)} × (p99 ${(r.route.p99 / r.direct.p99).toFixed(2)} ×) | ≤ 1.5 × ${check(ratio <= 1.5)} |`
}

function datasetteRows (r: DatasetteResult | Skipped): string[] {
  if (isSkipped(r)) return [`| against Datasette 0.65 | skipped: ${r.skipped} | | | |`]
  const rows = r.rows.toLocaleString('en')
  const facets = isSkipped(r.facets)
    ? `| facets on 2 columns (\`category\`, \`active\`), ${rows} rows, data-api vs Datasette (p50 / p99) | skipped: ${r.facets.skipped} | | | ≥ 5 × faster |`
    : (() => {
        const speedup = r.facets.datasette.p50 / r.facets.dataApi.p50
        return `| facets on 2 columns (\`category\`, \`active\`), ${rows} rows, data-api (a filter not seen before) vs Datasette (p50 / p99) | ${latency(r.facets.dataApi)} | ${latency(r.facets.datasette)} | ${speedup.toFixed(1)} × faster (p99 ${(r.facets.datasette.p99 / r.facets.dataApi.p99).toFixed(1)} ×) | ≥ 5 × faster ${check(speedup >= 5)} |`
      })()
  const f = r.filtered
  const times = f.dataApi.rps / f.datasette.rps
  const again = isSkipped(r.facets) || r.facets.dataApiAgain === undefined
    ? []
    : [`| the same 2 facets asked again (data-api: from memory, kept per filter and data set version; Datasette computes them again) | ${latency(r.facets.dataApiAgain)} | ${latency(r.facets.datasette)} | ${(r.facets.datasette.p50 / r.facets.dataApiAgain.p50).toFixed(1)} × faster | |`]
  return [
    facets,
    ...again,
    `| filtered, sorted page, ${f.connections} connections, ${rows} rows, data-api vs Datasette | ${f.dataApi.rps.toFixed(0)} req/s (p99 ${f.dataApi.p99} ms) | ${f.datasette.rps.toFixed(0)} req/s (p99 ${f.datasette.p99} ms) | ${times.toFixed(1)} × | ≥ 3 × ${check(times >= 3)} |`,
  ]
}

export function renderQueryTable (r: QueryResults): string {
  const lines = [
    `${r.rows.toLocaleString('en')} rows × ${r.columns.length} columns (\`${r.columns.join(', ')}\`, ${(r.csvBytes / 1_048_576).toFixed(0)} MB of CSV), ` +
      `uploaded on the ${r.upload.path} path in ${(r.upload.ms / 1000).toFixed(1)} s, statistics + indexes ${(r.upload.statisticsMs / 1000).toFixed(1)} s; ${r.pinned}; PostgreSQL ${r.postgres}.`,
    '',
    '| target | measured | compared with | ratio | target |',
    '|---|---|---|---|---|',
    facetsRow(r.facets),
    countRow(r.count),
    searchRow(r.search),
    aggregateRow(r.aggregate),
    ...datasetteRows(r.datasette),
  ]
  const notes: string[] = []
  if (!isSkipped(r.facets)) notes.push(`Facets: ${r.facets.requests} sequential requests per case, interleaved; each alone: ${r.facets.alone.map(({ column, latency: l }) => `${column} ${latency(l)}`).join(', ')}.`)
  if (!isSkipped(r.count)) notes.push(`Counts: \`${r.count.filter}\` selects every row (without a filter both modes answer the stored row count, free); ${r.count.requests} requests per mode.`)
  if (!isSkipped(r.search)) notes.push(`Search: \`${r.search.searchPath}\` vs \`${r.search.plainPath}\`, ${r.search.requests} requests each.`)
  if (!isSkipped(r.aggregate)) notes.push(`Aggregate: \`${r.aggregate.path}\`; direct: \`${r.aggregate.sql.text.replace(/\s+/g, ' ').trim()}\` with ${JSON.stringify(r.aggregate.sql.parameters)}.`)
  if (!isSkipped(r.datasette)) {
    const d = r.datasette
    if (!isSkipped(d.facets)) notes.push(`Datasette facets: \`${d.facets.datasettePath}\` vs \`${d.facets.dataApiPath}\`.`)
    notes.push(`Datasette filtered page: \`${d.filtered.datasettePath}\` vs \`${d.filtered.dataApiPath}\`; Datasette settings ${d.settings.map(([k, v]) => `${k}=${v}`).join(', ')}.`)
  }
  return [...lines, '', ...notes.map((note) => `- ${note}`)].join('\n')
}
