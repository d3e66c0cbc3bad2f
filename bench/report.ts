// The report writer of the benchmark suite: a BenchResults becomes the Markdown block of
// BENCHMARKS.md and a few SVG bar charts (Vega-Lite specs, rendered by vega-svg.ts). Everything
// here is a pure function of the results: no clock, no locale (toLocaleString would depend on the
// machine's ICU data), no randomness, so re-rendering a stored run gives byte-identical files and
// no spurious diff.
//   node bench/report.ts bench/results/<time>.json    re-renders bench/charts/ from a stored run
import fs from 'node:fs/promises'
import path from 'node:path'
import type { TopLevelSpec } from 'vega-lite'
import type { BenchResults, LoadSummary, ServerName, ThroughputScenario } from './results.ts'
import { footerSpec, GRID, INK, MUTED, renderVegaLite, TICK_LABEL } from './vega-svg.ts'

/**
 * One fixed color per server, in the order servers appear in tables, bars and legends, so a server
 * looks the same in every chart. Okabe–Ito palette: the colors stay distinct under the common
 * color-vision deficiencies. A Record, so that a new ServerName without a color fails type checking.
 */
export const SERVER_COLORS: Readonly<Record<ServerName, string>> = {
  'data-api': '#0072B2',
  'raw node:http': '#009E73',
  'bare Fastify + postgres.js': '#CC79A7',
  'FastAPI (shared pool)': '#E69F00',
  'FastAPI (pool per request)': '#D55E00',
}
const SERVER_ORDER = Object.keys(SERVER_COLORS) as ServerName[]
const FASTAPI_SERVERS: readonly ServerName[] = ['FastAPI (shared pool)', 'FastAPI (pool per request)']

const START_MARKER = '<!-- bench:start -->'
const END_MARKER = '<!-- bench:end -->'

// ---------------------------------------------------------------------------------------------
// Numbers and text

/** 20000 → '20,000'. */
export function formatInt (n: number): string {
  if (!Number.isFinite(n)) return '—'
  const rounded = Math.round(n)
  return (rounded < 0 ? '-' : '') + String(Math.abs(rounded)).replace(/\B(?=(\d{3})+(?!\d))/g, ',')
}

/** Latencies: sub-millisecond values need decimals, 250 ms do not (about three significant figures). */
export function formatMs (ms: number): string {
  if (!Number.isFinite(ms)) return '—'
  if (ms >= 100) return formatInt(ms)
  return ms >= 10 ? ms.toFixed(1) : ms.toFixed(2)
}

function formatRatio (ratio: number | null): string {
  return ratio === null || !Number.isFinite(ratio) ? '—' : `${ratio.toFixed(2)}×`
}

/** At most one decimal, none when whole: 24 → '24', 23.44 → '23.4'. */
export function formatShort (n: number): string {
  return String(Math.round(n * 10) / 10)
}

function formatDuration (seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '—'
  const s = Math.round(seconds)
  if (s < 60) return `${s} s`
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`
}

/** ISO timestamp → '2026-11-25 14:03 UTC' (UTC, so the machine's time zone does not leak in). */
export function formatTimestamp (iso: string): string {
  const t = Date.parse(iso)
  return Number.isNaN(t) ? iso : `${new Date(t).toISOString().slice(0, 16).replace('T', ' ')} UTC`
}

function sum (numbers: number[]): number {
  return numbers.reduce((total, n) => total + n, 0)
}

/** The servers measured in a scenario, in the fixed server order. */
function serversOf (scenario: ThroughputScenario): Array<[ServerName, LoadSummary]> {
  const measured: Array<[ServerName, LoadSummary]> = []
  for (const server of SERVER_ORDER) {
    const summary = scenario.results[server]
    if (summary !== undefined) measured.push([server, summary])
  }
  return measured
}

/** median rps / the peer's median rps, or null when the peer was not measured (or measured nothing). */
function ratioTo (summary: LoadSummary, peer: LoadSummary | undefined): number | null {
  if (peer === undefined || !(peer.median.rps > 0)) return null
  return summary.median.rps / peer.median.rps
}

/**
 * The FastAPI a scenario compares against: the faster of the variants measured. Comparing with the
 * strongest FastAPI configuration never overstates data-api's lead.
 */
function fastApiPeer (scenario: ThroughputScenario): LoadSummary | undefined {
  let best: LoadSummary | undefined
  for (const server of FASTAPI_SERVERS) {
    const summary = scenario.results[server]
    if (summary !== undefined && (best === undefined || summary.median.rps > best.median.rps)) best = summary
  }
  return best
}

/** '3 runs of 10 s' when every summary agrees, else a neutral wording. */
function describeRuns (scenarios: ThroughputScenario[]): string {
  const kinds = new Set<string>()
  for (const scenario of scenarios) {
    for (const [, summary] of serversOf(scenario)) {
      const runs = summary.runs.length
      kinds.add(`${runs} run${runs === 1 ? '' : 's'} of ${formatShort(scenario.durationSeconds)} s`)
    }
  }
  const [only] = kinds
  return kinds.size === 1 && only !== undefined ? only : 'several runs'
}

// ---------------------------------------------------------------------------------------------
// Markdown

/** A table cell: a `|` would end the cell and a newline the row. */
function cell (text: string): string {
  return text.replace(/\|/g, '\\|').replace(/\r?\n/g, '<br>')
}

export function table (header: string[], align: Array<'left' | 'right' | 'center'>, rows: string[][]): string[] {
  const rule = align.map((a) => (a === 'right' ? '---:' : a === 'center' ? ':---:' : '---'))
  return [header, rule, ...rows].map((row, i) => `| ${(i === 1 ? row : row.map(cell)).join(' | ')} |`)
}

function machineLine (results: BenchResults): string {
  const m = results.machine
  const python = m.python === null ? 'no Python (FastAPI not measured)' : `Python ${m.python}`
  return `Machine: ${m.cpus} × ${m.cpuModel}, ${formatShort(m.memoryGiB)} GiB, ${m.os}; Node ${m.node}, PostgreSQL ${m.postgres}, ${python}; ${m.pinned}.`
}

export function renderMarkdown (results: BenchResults): string {
  const elapsed = (Date.parse(results.finishedAt) - Date.parse(results.startedAt)) / 1000
  const lines: string[] = [
    `### Run of ${formatTimestamp(results.startedAt)} — ${results.quick ? 'quick' : 'full'}, ${formatShort(results.durationSeconds)} s per load run, ${formatDuration(elapsed)} in all`,
    '',
    machineLine(results),
    '',
    '#### Throughput',
    '',
  ]

  const hasFastApi = results.throughput.some((s) => fastApiPeer(s) !== undefined)
  const hasRawNode = results.throughput.some((s) => s.results['raw node:http'] !== undefined)
  const header = ['scenario', 'path', 'conn.', 'server', 'req/s (median)', 'spread (min–max)', 'p50 ms', 'p90 ms', 'p99 ms', 'errors / non-2xx']
  const align: Array<'left' | 'right'> = ['left', 'left', 'right', 'left', 'right', 'right', 'right', 'right', 'right', 'right']
  if (hasFastApi) { header.push('× FastAPI'); align.push('right') }
  if (hasRawNode) { header.push('× raw node'); align.push('right') }
  const rows: string[][] = []
  for (const scenario of results.throughput) {
    const fastApi = fastApiPeer(scenario)
    const rawNode = scenario.results['raw node:http']
    for (const [server, summary] of serversOf(scenario)) {
      const { median } = summary
      // Errors of every run, not of the median one: a failure in any run must show.
      const runs = summary.runs.length > 0 ? summary.runs : [median]
      const row = [
        scenario.name,
        `\`${scenario.path}\``,
        String(scenario.connections),
        server,
        server === 'data-api' ? `**${formatInt(median.rps)}**` : formatInt(median.rps),
        `${formatInt(summary.rpsMin)}–${formatInt(summary.rpsMax)}`,
        formatMs(median.p50),
        formatMs(median.p90),
        formatMs(median.p99),
        `${formatInt(sum(runs.map((r) => r.errors)))} / ${formatInt(sum(runs.map((r) => r.non2xx)))}`,
      ]
      if (hasFastApi) row.push(formatRatio(ratioTo(summary, fastApi)))
      if (hasRawNode) row.push(formatRatio(ratioTo(summary, rawNode)))
      rows.push(row)
    }
  }
  if (rows.length === 0) {
    lines.push('_No throughput measured in this run._', '')
  } else {
    lines.push(...table(header, align, rows), '')
    const legend = [`Median of ${describeRuns(results.throughput)} per scenario and server; spread is the slowest and fastest run.`]
    if (hasFastApi) legend.push('× FastAPI: req/s over the faster FastAPI variant measured in the scenario.')
    if (hasRawNode) legend.push('× raw node: req/s over raw node:http.')
    lines.push(legend.join(' '), '')
  }

  lines.push('#### The lesson\'s claims', '')
  if (results.lesson.length === 0) {
    lines.push('_Not measured in this run._', '')
  } else {
    lines.push(...table(
      ['claim', 'the lesson says', 'data-api', 'FastAPI', 'verdict'],
      ['left', 'left', 'left', 'left', 'left'],
      results.lesson.map((c) => [c.claim, c.lessonSays, c.dataApi, c.fastapi, c.verdict]),
    ), '')
  }

  lines.push('#### Targets', '')
  if (results.targets.length === 0) {
    lines.push('_No targets checked in this run._', '')
  } else {
    lines.push(...table(
      ['target', 'measured', 'ratio', 'met'],
      ['left', 'left', 'right', 'center'],
      results.targets.map((t) => [t.target, t.measured, formatRatio(t.ratio), t.met ? '✔' : '✘']),
    ), '')
  }

  if (results.notes.length > 0) {
    lines.push('#### Notes', '', ...results.notes.map((note) => `- ${note.replace(/\r?\n/g, ' ')}`), '')
  }
  // One trailing newline, so the block sits cleanly between the markers.
  return `${lines.join('\n').trimEnd()}\n`
}

// ---------------------------------------------------------------------------------------------
// Charts: Vega-Lite specs of the results, rendered to SVG (vega-svg.ts)

/** The chart of one group of scenarios: one band per scenario, one bar per server in it. */
interface BarChart {
  title: string
  subtitle: string
  note: string
  axisTitle: string
  scenarios: ThroughputScenario[]
  latency: boolean
}

/** The run and the machine, under every chart, so that a chart copied alone still says what it measured. */
function footerText (results: BenchResults): string {
  const m = results.machine
  return `data-api bench, ${formatTimestamp(results.startedAt)}, ${results.quick ? 'quick' : 'full'} run · ${m.cpus} × ${m.cpuModel}, ${formatShort(m.memoryGiB)} GiB · Node ${m.node} · PostgreSQL ${m.postgres} · ${m.pinned}`
}

/** The band's title: the scenario, its path and its connections. */
function bandTitle (scenario: ThroughputScenario): string {
  return `${scenario.name} · ${scenario.path} · ${scenario.connections} connections`
}

function barChartSpec (chart: BarChart, results: BenchResults): TopLevelSpec {
  const rows = chart.scenarios.flatMap((scenario) => serversOf(scenario).map(([server, summary]) => {
    const { median } = summary
    const label = chart.latency
      ? `p50 ${formatMs(median.p50)} · p90 ${formatMs(median.p90)} · p99 ${formatMs(median.p99)} ms`
      : formatInt(median.rps)
    const description = chart.latency
      ? `${server}, ${scenario.name}: ${label}`
      : `${server}, ${scenario.name}: ${formatInt(median.rps)} req/s (runs ${formatInt(summary.rpsMin)}–${formatInt(summary.rpsMax)})`
    const values = chart.latency ? [median.p50, median.p90, median.p99] : [median.rps]
    return {
      band: bandTitle(scenario),
      server,
      rps: median.rps,
      p50: median.p50,
      p90: median.p90,
      p99: median.p99,
      end: Math.max(0, ...values.filter(Number.isFinite)),
      label,
      description,
    }
  }))
  const servers = SERVER_ORDER.filter((server) => rows.some((row) => row.server === server))
  const y = { field: 'server', type: 'nominal', sort: servers, title: null, axis: { labelColor: INK, labelFontSize: 12, ticks: false, domain: false, labelPadding: 8 } } as const
  const color = {
    field: 'server',
    type: 'nominal',
    scale: { domain: servers, range: servers.map((server) => SERVER_COLORS[server]) },
    legend: { title: null, orient: 'top', direction: 'horizontal', columns: 4, symbolType: 'square', offset: 16 },
  } as const
  const x = { type: 'quantitative', title: chart.axisTitle, scale: { zero: true, nice: true }, axis: { labelExpr: TICK_LABEL, tickCount: 5, gridColor: GRID } } as const
  const bars = chart.latency
    ? {
        // p99, p90, p50 drawn over one another in that order, so the solid p50 bar is in front.
        transform: [{ fold: ['p99', 'p90', 'p50'], as: ['percentile', 'ms'] }],
        mark: { type: 'bar', cornerRadius: 2, height: 18 },
        encoding: {
          y,
          x: { ...x, field: 'ms', stack: null },
          color,
          opacity: { field: 'percentile', type: 'ordinal', sort: ['p50', 'p90', 'p99'], scale: { type: 'ordinal', domain: ['p50', 'p90', 'p99'], range: [1, 0.6, 0.3] }, legend: { title: null, orient: 'top', direction: 'horizontal', symbolType: 'square', symbolFillColor: MUTED, offset: 16 } },
          description: { field: 'description' },
        },
      }
    : {
        mark: { type: 'bar', cornerRadius: 2, height: 18 },
        encoding: { y, x: { ...x, field: 'rps', stack: null }, color, description: { field: 'description' } },
      }
  const values = {
    mark: { type: 'text', align: 'left', baseline: 'middle', dx: 6, fontSize: 11, color: INK },
    encoding: { y, x: { field: 'end', type: 'quantitative' }, text: { field: 'label' }, description: { field: 'description' } },
  }
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: { text: chart.title, subtitle: [chart.subtitle, chart.note], offset: 14 },
    vconcat: [
      {
        data: { values: rows },
        facet: {
          row: {
            field: 'band',
            type: 'nominal',
            sort: chart.scenarios.map(bandTitle),
            title: null,
            header: { labelAngle: 0, labelOrient: 'top', labelAnchor: 'start', labelAlign: 'left', labelBaseline: 'top', labelPadding: 4, labelLimit: 0 },
          },
        },
        spacing: 14,
        spec: { width: 400, height: { step: 24 }, layer: [bars, values] },
        resolve: { scale: { y: 'independent' } },
      },
      footerSpec(footerText(results)),
    ],
    spacing: 18,
  } as TopLevelSpec
}

async function throughputChart (title: string, scenarios: ThroughputScenario[], results: BenchResults): Promise<string> {
  return await renderVegaLite(barChartSpec({
    title,
    subtitle: `Requests per second, median of ${describeRuns(scenarios)}`,
    note: 'higher is better',
    axisTitle: 'requests per second',
    scenarios,
    latency: false,
  }, results))
}

async function latencyChart (title: string, scenarios: ThroughputScenario[], results: BenchResults): Promise<string> {
  return await renderVegaLite(barChartSpec({
    title,
    subtitle: `Latency in ms of the median run (${describeRuns(scenarios)}): p50 solid, p90 and p99 lighter`,
    note: 'lower is better',
    axisTitle: 'milliseconds',
    scenarios,
    latency: true,
  }, results))
}

/** A file-name-safe group: 'data api' → 'data-api'. */
function slug (text: string): string {
  return text.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-+|-+$/g, '') || 'other'
}

export async function renderCharts (results: BenchResults): Promise<Array<{ name: string, svg: string }>> {
  const measured = results.throughput.filter((scenario) => serversOf(scenario).length > 0)
  const charts: Array<{ name: string, svg: string }> = []

  // The chart for the README: the two scenarios everyone compares, every server that ran them.
  const headline = ['hello JSON', 'GET /users']
    .map((name) => measured.find((scenario) => scenario.name === name))
    .filter((scenario) => scenario !== undefined)
  if (headline.length > 0) charts.push({ name: 'headline.svg', svg: await throughputChart('data-api and its peers: requests per second', headline, results) })

  // Groups in order of first appearance; two groups with the same slug would overwrite each
  // other's files, so they share one chart.
  const groups = new Map<string, { label: string, scenarios: ThroughputScenario[] }>()
  for (const scenario of measured) {
    const key = slug(scenario.group)
    const group = groups.get(key) ?? { label: scenario.group, scenarios: [] }
    group.scenarios.push(scenario)
    groups.set(key, group)
  }
  for (const [key, group] of groups) {
    charts.push({ name: `throughput-${key}.svg`, svg: await throughputChart(`Throughput: ${group.label}`, group.scenarios, results) })
    charts.push({ name: `latency-${key}.svg`, svg: await latencyChart(`Latency: ${group.label}`, group.scenarios, results) })
  }
  return charts
}

// ---------------------------------------------------------------------------------------------
// BENCHMARKS.md

/**
 * Puts `block` between the bench markers of `existing`, keeping the markers and everything outside
 * them; without markers, appends a `## data-api bench` section holding them. A lone or reversed
 * marker is an error: appending a second pair would leave the file with markers that no later
 * update could pair up as intended.
 */
export function updateBenchmarksFile (existing: string, block: string): string {
  const start = existing.indexOf(START_MARKER)
  const end = existing.indexOf(END_MARKER, start === -1 ? 0 : start)
  const inner = `\n${block.replace(/^\n+|\s+$/g, '')}\n`
  if (start === -1 && existing.indexOf(END_MARKER) === -1) {
    const before = existing.trimEnd()
    return `${before}${before === '' ? '' : '\n\n'}## data-api bench\n\n${START_MARKER}${inner}${END_MARKER}\n`
  }
  if (start === -1 || end === -1) throw new Error(`BENCHMARKS.md has an unpaired bench marker: expected ${START_MARKER} followed by ${END_MARKER}`)
  // Slices, not String.replace: a `$&` or `$1` in the block must stay literal.
  return existing.slice(0, start + START_MARKER.length) + inner + existing.slice(end)
}

if (import.meta.main) {
  // Re-renders the charts of a stored run into bench/charts/ (or the directory given second).
  const [file, outDir = path.join(import.meta.dirname, 'charts')] = process.argv.slice(2)
  if (file === undefined) {
    console.error('usage: node bench/report.ts bench/results/<time>.json [charts directory]')
    process.exit(2)
  }
  const results = JSON.parse(await fs.readFile(file, 'utf8')) as BenchResults
  await fs.mkdir(outDir, { recursive: true })
  for (const { name, svg } of await renderCharts(results)) await fs.writeFile(path.join(outDir, name), svg)
  console.log(`charts of ${file} written to ${outDir}`)
}
