// The report writer of the benchmark suite: a BenchResults becomes the Markdown block of
// BENCHMARKS.md and a few SVG bar charts. Everything here is a pure function of the results: no
// clock, no locale (toLocaleString would depend on the machine's ICU data), no randomness, so
// re-rendering a stored run gives byte-identical files and no spurious diff. The charts are
// hand-written SVG: a handful of rects and texts do not need a chart library.
import type { BenchResults, LoadSummary, ServerName, ThroughputScenario } from './results.ts'

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
// SVG

const PAD = 16
const MIN_WIDTH = 760
const MIN_PLOT_WIDTH = 320
const BAR_HEIGHT = 18
const BAR_GAP = 6
const BAND_GAP = 14
export const INK = '#1f2328'
export const MUTED = '#59636e'
export const GRID = '#d1d9e0'
/** Fill opacities of the p99, p90 and p50 bars drawn over one another (p50 solid, in front). */
const SHADES: ReadonlyArray<{ label: string, opacity: number }> = [
  { label: 'p50', opacity: 1 },
  { label: 'p90', opacity: 0.6 },
  { label: 'p99', opacity: 0.3 },
]

/** XML text and attribute values. Characters XML 1.0 forbids are dropped, lone surrogates replaced. */
export function xml (text: string): string {
  let clean = ''
  for (const ch of text.toWellFormed()) {
    const code = ch.codePointAt(0) ?? 0
    if (code >= 0x20 || code === 0x09 || code === 0x0a || code === 0x0d) clean += ch
  }
  return clean.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&apos;')
}

/** Coordinates with one decimal at most: readable, and no float noise such as 120.00000000000001. */
export function px (n: number): string {
  return String(Math.round(n * 10) / 10)
}

/** A rough width of text in system-ui: no font metrics without a browser, so err on the wide side. */
export function textWidth (text: string, size: number): number {
  return text.length * size * 0.6
}

/** 0, step, 2 step, … up to the first multiple of a 1-2-2.5-5 step at or above max (about 5 ticks). */
export function niceTicks (max: number): number[] {
  if (!Number.isFinite(max) || max <= 0) return [0, 1]
  const rough = max / 5
  const magnitude = 10 ** Math.floor(Math.log10(rough))
  const step = [1, 2, 2.5, 5, 10].map((f) => f * magnitude).find((s) => s >= rough) ?? 10 * magnitude
  const count = Math.ceil(max / step - 1e-9)
  return Array.from({ length: count + 1 }, (_, i) => Number((i * step).toPrecision(12)))
}

/** Axis ticks: 25000 → '25k', 2.5 → '2.5'. */
export function formatTick (n: number): string {
  return n >= 1000 ? `${Number((n / 1000).toPrecision(6))}k` : String(Number(n.toPrecision(6)))
}

/** Greedy word wrap by estimated width, for the footer. */
export function wrap (text: string, size: number, maxWidth: number): string[] {
  const lines: string[] = []
  let line = ''
  for (const word of text.split(' ')) {
    const candidate = line === '' ? word : `${line} ${word}`
    if (line !== '' && textWidth(candidate, size) > maxWidth) {
      lines.push(line)
      line = word
    } else {
      line = candidate
    }
  }
  if (line !== '') lines.push(line)
  return lines
}

interface Bar {
  server: ServerName
  /** One value (req/s), or p50, p90, p99 drawn over one another. */
  values: number[]
  label: string
  tooltip: string
}
interface Band { title: string, detail: string, bars: Bar[] }
interface ChartSpec {
  title: string
  subtitle: string
  note: string
  axisLabel: string
  bands: Band[]
  latency: boolean
}

function footerText (results: BenchResults): string {
  const m = results.machine
  return `data-api bench, ${formatTimestamp(results.startedAt)}, ${results.quick ? 'quick' : 'full'} run · ${m.cpus} × ${m.cpuModel}, ${formatShort(m.memoryGiB)} GiB · Node ${m.node} · PostgreSQL ${m.postgres} · ${m.pinned}`
}

function renderBarChart (chart: ChartSpec, results: BenchResults): string {
  const bars = chart.bands.flatMap((band) => band.bars)
  const servers = SERVER_ORDER.filter((server) => bars.some((bar) => bar.server === server))
  const nameWidth = Math.max(...servers.map((server) => textWidth(server, 12)))
  const valueWidth = Math.max(...bars.map((bar) => textWidth(bar.label, 11)))
  const width = Math.ceil(Math.max(MIN_WIDTH, PAD + nameWidth + 10 + MIN_PLOT_WIDTH + 8 + valueWidth + PAD))
  const plotLeft = PAD + nameWidth + 10
  const plotRight = width - PAD - valueWidth - 8
  const ticks = niceTicks(Math.max(0, ...bars.flatMap((bar) => bar.values.filter(Number.isFinite))))
  const axisMax = ticks[ticks.length - 1] ?? 1
  const x = (value: number): number => plotLeft + (Math.max(0, value) / axisMax) * (plotRight - plotLeft)

  const out: string[] = []
  out.push(`<text x="${PAD}" y="32" class="title">${xml(chart.title)}</text>`)
  out.push(`<text x="${PAD}" y="52" class="muted">${xml(chart.subtitle)}</text>`)
  out.push(`<text x="${PAD}" y="70" class="note">${xml(chart.note)}</text>`)

  // Legend: the servers of this chart (in their fixed colors), then for latency the three shades.
  const legend: Array<{ label: string, color: string, opacity: number }> = servers.map((server) => ({ label: server, color: SERVER_COLORS[server], opacity: 1 }))
  if (chart.latency) legend.push(...SHADES.map((shade) => ({ label: shade.label, color: MUTED, opacity: shade.opacity })))
  let legendX = PAD
  let legendY = 84
  for (const item of legend) {
    const itemWidth = 12 + 6 + textWidth(item.label, 12) + 16
    if (legendX > PAD && legendX + itemWidth > width - PAD) {
      legendX = PAD
      legendY += 20
    }
    out.push(`<rect x="${px(legendX)}" y="${legendY}" width="12" height="12" rx="2" fill="${item.color}"${item.opacity < 1 ? ` fill-opacity="${item.opacity}"` : ''}/>`)
    out.push(`<text x="${px(legendX + 18)}" y="${legendY + 10}">${xml(item.label)}</text>`)
    legendX += itemWidth
  }

  const plotTop = legendY + 12 + 22
  const body: string[] = []
  // The vertical extent of each band's bars: grid lines stop there instead of crossing the band titles.
  const spans: Array<[number, number]> = []
  let y = plotTop
  for (const band of chart.bands) {
    body.push(`<text x="${PAD}" y="${px(y + 12)}"><tspan class="band">${xml(band.title)}</tspan><tspan class="muted" dx="8">${xml(band.detail)}</tspan></text>`)
    y += 22
    spans.push([y - 3, y + band.bars.length * (BAR_HEIGHT + BAR_GAP) - BAR_GAP + 3])
    for (const bar of band.bars) {
      const color = SERVER_COLORS[bar.server]
      const middle = y + BAR_HEIGHT / 2
      body.push(`<text x="${px(plotLeft - 8)}" y="${px(middle + 4)}" text-anchor="end">${xml(bar.server)}</text>`)
      // Largest first, so with latency the p50 bar is drawn in front of p90 and p99.
      const drawn = bar.values.map((value, i) => ({ value, opacity: SHADES[i]?.opacity ?? 1 }))
        .sort((a, b) => b.value - a.value)
      for (const { value, opacity } of drawn) {
        const barWidth = Number.isFinite(value) ? x(value) - plotLeft : 0
        body.push(`<rect x="${px(plotLeft)}" y="${px(y)}" width="${px(barWidth)}" height="${BAR_HEIGHT}" rx="2" fill="${color}"${opacity < 1 ? ` fill-opacity="${opacity}"` : ''}><title>${xml(bar.tooltip)}</title></rect>`)
      }
      const end = x(Math.max(0, ...bar.values.filter(Number.isFinite)))
      body.push(`<text x="${px(end + 6)}" y="${px(middle + 4)}" class="value">${xml(bar.label)}</text>`)
      y += BAR_HEIGHT + BAR_GAP
    }
    y += BAND_GAP - BAR_GAP
  }
  const plotBottom = y

  // Grid and axis first, so the bars are drawn over them.
  for (const tick of ticks) {
    const tickX = px(x(tick))
    for (const [top, bottom] of spans) {
      out.push(`<line x1="${tickX}" y1="${px(top)}" x2="${tickX}" y2="${px(bottom)}" stroke="${tick === 0 ? MUTED : GRID}" stroke-width="1"/>`)
    }
    out.push(`<text x="${tickX}" y="${px(plotBottom + 14)}" text-anchor="middle" class="tick">${xml(formatTick(tick))}</text>`)
  }
  out.push(`<text x="${px((plotLeft + plotRight) / 2)}" y="${px(plotBottom + 32)}" text-anchor="middle" class="muted">${xml(chart.axisLabel)}</text>`)
  out.push(...body)

  let footerY = plotBottom + 56
  for (const line of wrap(footerText(results), 11, width - 2 * PAD)) {
    out.push(`<text x="${PAD}" y="${px(footerY)}" class="tick">${xml(line)}</text>`)
    footerY += 14
  }
  const height = Math.ceil(footerY - 14 + PAD)

  return svgDocument({ width, height, label: `${chart.title}: ${chart.subtitle}`, title: chart.title, body: out })
}

/** A whole chart: the SVG root, title, the shared text styles and an opaque background around `body`. */
export function svgDocument ({ width, height, label, title, body }: { width: number, height: number, label: string, title: string, body: string[] }): string {
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" role="img" aria-label="${xml(label)}">`,
    `<title>${xml(title)}</title>`,
    '<style>',
    `text { font-family: system-ui, -apple-system, 'Segoe UI', Roboto, Helvetica, Arial, sans-serif; font-size: 12px; fill: ${INK} }`,
    '.title { font-size: 17px; font-weight: 600 }',
    '.band { font-size: 13px; font-weight: 600 }',
    `.muted { fill: ${MUTED} }`,
    `.note { fill: ${MUTED}; font-style: italic }`,
    '.value { font-size: 11px; font-variant-numeric: tabular-nums }',
    `.tick { font-size: 11px; fill: ${MUTED} }`,
    '</style>',
    // An opaque background: on a dark page (GitHub's dark theme) dark text on transparent vanishes.
    `<rect width="${width}" height="${height}" fill="#ffffff"/>`,
    ...body,
    '</svg>',
    '',
  ].join('\n')
}

function bandOf (scenario: ThroughputScenario, latency: boolean): Band {
  const bars = serversOf(scenario).map(([server, summary]): Bar => {
    const { median } = summary
    if (latency) {
      const label = `p50 ${formatMs(median.p50)} · p90 ${formatMs(median.p90)} · p99 ${formatMs(median.p99)} ms`
      return { server, values: [median.p50, median.p90, median.p99], label, tooltip: `${server}, ${scenario.name}: ${label}` }
    }
    return {
      server,
      values: [median.rps],
      label: formatInt(median.rps),
      tooltip: `${server}, ${scenario.name}: ${formatInt(median.rps)} req/s (runs ${formatInt(summary.rpsMin)}–${formatInt(summary.rpsMax)})`,
    }
  })
  return { title: scenario.name, detail: `${scenario.path} · ${scenario.connections} connections`, bars }
}

/** A file-name-safe group: 'data api' → 'data-api'. */
function slug (text: string): string {
  return text.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-+|-+$/g, '') || 'other'
}

function throughputChart (title: string, scenarios: ThroughputScenario[], results: BenchResults): string {
  return renderBarChart({
    title,
    subtitle: `Requests per second, median of ${describeRuns(scenarios)}`,
    note: 'higher is better',
    axisLabel: 'requests per second',
    bands: scenarios.map((scenario) => bandOf(scenario, false)),
    latency: false,
  }, results)
}

function latencyChart (title: string, scenarios: ThroughputScenario[], results: BenchResults): string {
  return renderBarChart({
    title,
    subtitle: `Latency in ms of the median run (${describeRuns(scenarios)}): p50 solid, p90 and p99 lighter`,
    note: 'lower is better',
    axisLabel: 'milliseconds',
    bands: scenarios.map((scenario) => bandOf(scenario, true)),
    latency: true,
  }, results)
}

export function renderCharts (results: BenchResults): Array<{ name: string, svg: string }> {
  const measured = results.throughput.filter((scenario) => serversOf(scenario).length > 0)
  const charts: Array<{ name: string, svg: string }> = []

  // The chart for the README: the two scenarios everyone compares, every server that ran them.
  const headline = ['hello JSON', 'GET /users']
    .map((name) => measured.find((scenario) => scenario.name === name))
    .filter((scenario) => scenario !== undefined)
  if (headline.length > 0) charts.push({ name: 'headline.svg', svg: throughputChart('data-api and its peers: requests per second', headline, results) })

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
    charts.push({ name: `throughput-${key}.svg`, svg: throughputChart(`Throughput: ${group.label}`, group.scenarios, results) })
    charts.push({ name: `latency-${key}.svg`, svg: latencyChart(`Latency: ${group.label}`, group.scenarios, results) })
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
