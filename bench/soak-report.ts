// The soak scenario's results: their shape, the verdict (computed, not eyeballed), the Markdown
// block of BENCHMARKS.md and a line chart of memory and p99 over time (a Vega-Lite spec). Pure
// functions of the results, like report.ts, so a stored JSON re-renders to the same files.
import fs from 'node:fs/promises'
import path from 'node:path'
import type { TopLevelSpec } from 'vega-lite'
import { formatInt, formatMs, formatShort, formatTimestamp, table } from './report.ts'
import type { Machine } from './results.ts'
import type { RouteWindow } from './soak-load.ts'
import { footerSpec, INK, MUTED, renderVegaLite, TICK_LABEL, type ConcatItem } from './vega-svg.ts'

export interface ServerSample {
  /** Window mean of VmRSS, sampled every second from /proc/<pid>/status. */
  rssMb: number | null
  rssMaxMb: number | null
  /** From GET /metrics (prom-client), the last scrape of the window. */
  heapUsedMb: number | null
  heapTotalMb: number | null
  externalMb: number | null
  /** The highest event-loop delay p99 of the window's scrapes. */
  eventLoopLagP99Ms: number | null
  activeHandles: number | null
  /** PostgreSQL connections of data-api (pg_stat_activity, via /metrics). */
  pgConnections: number | null
}

export interface SoakWindow {
  index: number
  /** Excluded from the verdict. */
  warmUp: boolean
  /** Seconds since the first request, at the window's end. */
  endSeconds: number
  seconds: number
  rps: number
  overall: RouteWindow
  /** The routes without inherent latency (all but /external and /compute). */
  core: RouteWindow
  routes: Record<string, RouteWindow>
  skipped: number
  lateSends: number
  maxInFlight: number
  server: ServerSample
}

export interface SoakThresholds {
  /** RSS is flat when its fitted slope is below this… */
  rssMbPerMinute: number
  /** …or its fitted growth over the measured span is below this share of its first window. */
  rssGrowthPercent: number
  /** p99 of the last measured window ≤ this × the first's (all routes, and the core routes). */
  p99Ratio: number
}

export const SOAK_THRESHOLDS: SoakThresholds = { rssMbPerMinute: 1, rssGrowthPercent: 5, p99Ratio: 1.5 }

export interface SoakVerdict {
  thresholds: SoakThresholds
  /** Windows after the warm-up, the ones the verdict is computed on. */
  measuredWindows: number
  rss: { firstMb: number, lastMb: number, slopeMbPerMinute: number, growthPercent: number, flat: boolean } | null
  heap: { firstMb: number, lastMb: number, slopeMbPerMinute: number } | null
  /** The live heap: V8 heap used right after each full (mark-compact) GC of the main thread, after the warm-up. */
  liveHeap: { collections: number, firstMb: number, lastMb: number, slopeMbPerMinute: number } | null
  /** All routes: above /external's 100 ms upstream delay this is mostly that route's tail. */
  p99: P99Check | null
  /** The routes without inherent latency: what the server itself adds. */
  coreP99: P99Check | null
  routes: Record<string, { firstP99: number | null, lastP99: number | null, ratio: number | null }>
  totals: { requests: number, rps: number, non2xx: number, failures: number, throttled: number, skipped: number }
  /** The server process died before the end: never flat, whatever the numbers. */
  serverExited: boolean
  flat: boolean
}

export interface P99Check { firstMs: number, lastMs: number, ratio: number, slopeMsPerMinute: number, flat: boolean }

export interface SoakResults {
  startedAt: string
  finishedAt: string
  options: { minutes: number, windowSeconds: number, rate: number, warmUpWindows: number }
  machine: Machine
  /** core: counted in the core p99 (no latency by design). */
  mix: Array<{ name: string, weight: number, example: string, core: boolean }>
  windows: SoakWindow[]
  /** RSS every second: [seconds since the first request, MB]. */
  rssSamples: Array<[number, number]>
  /** Full GCs of the server's main thread (--trace-gc): [seconds since the first request, heap MB before, after]. */
  fullGcs: Array<[number, number, number]>
  /** Set when the server process exited before the run was over. */
  serverExit: { atSeconds: number, code: number | null, signal: string | null, stderr: string } | null
  verdict: SoakVerdict
  /** Lines the server logged at warn and above (LOG_LEVEL=warn), and the first few. */
  serverLog: { lines: number, first: string[] }
  notes: string[]
}

// ---------------------------------------------------------------------------------------------
// Verdict

/** Least-squares slope of y over x; null with fewer than two points. */
export function slope (points: ReadonlyArray<readonly [number, number]>): number | null {
  if (points.length < 2) return null
  const meanX = points.reduce((sum, [x]) => sum + x, 0) / points.length
  const meanY = points.reduce((sum, [, y]) => sum + y, 0) / points.length
  let covariance = 0
  let variance = 0
  for (const [x, y] of points) {
    covariance += (x - meanX) * (y - meanY)
    variance += (x - meanX) ** 2
  }
  return variance === 0 ? null : covariance / variance
}

const minutesOf = (window: SoakWindow): number => (window.endSeconds - window.seconds / 2) / 60

/** Points (window midpoint in minutes, value) of the windows where `value` is known. */
function series (windows: readonly SoakWindow[], value: (window: SoakWindow) => number | null): Array<[number, number]> {
  const points: Array<[number, number]> = []
  for (const window of windows) {
    const y = value(window)
    if (y !== null && Number.isFinite(y)) points.push([minutesOf(window), y])
  }
  return points
}

export function computeVerdict (windows: readonly SoakWindow[], fullGcs: ReadonlyArray<readonly [number, number, number]> = [], serverExited = false, thresholds: SoakThresholds = SOAK_THRESHOLDS): SoakVerdict {
  const measured = windows.filter((window) => !window.warmUp)
  const warmUpEnd = windows.filter((window) => window.warmUp).at(-1)?.endSeconds ?? 0
  const sum = (value: (window: SoakWindow) => number): number => measured.reduce((total, window) => total + value(window), 0)
  const seconds = sum((w) => w.seconds)
  const totals = {
    requests: sum((w) => w.overall.requests),
    rps: seconds > 0 ? sum((w) => w.overall.requests) / seconds : 0,
    non2xx: sum((w) => w.overall.non2xx),
    failures: sum((w) => w.overall.failures),
    throttled: sum((w) => w.overall.throttled),
    skipped: sum((w) => w.skipped),
  }

  const rssPoints = series(measured, (w) => w.server.rssMb)
  const rssSlope = slope(rssPoints)
  let rss: SoakVerdict['rss'] = null
  if (rssSlope !== null) {
    const firstMb = rssPoints[0]![1]
    const span = rssPoints.at(-1)![0] - rssPoints[0]![0]
    const growthPercent = (rssSlope * span) / firstMb * 100
    rss = {
      firstMb,
      lastMb: rssPoints.at(-1)![1],
      slopeMbPerMinute: rssSlope,
      growthPercent,
      flat: rssSlope < thresholds.rssMbPerMinute || growthPercent < thresholds.rssGrowthPercent,
    }
  }

  const heapPoints = series(measured, (w) => w.server.heapUsedMb)
  const heapSlope = slope(heapPoints)
  const heap = heapSlope === null ? null : { firstMb: heapPoints[0]![1], lastMb: heapPoints.at(-1)![1], slopeMbPerMinute: heapSlope }
  const livePoints = fullGcs.filter(([seconds]) => seconds > warmUpEnd).map(([seconds, , after]): [number, number] => [seconds / 60, after])
  const liveSlope = slope(livePoints)
  const liveHeap = liveSlope === null ? null : { collections: livePoints.length, firstMb: livePoints[0]![1], lastMb: livePoints.at(-1)![1], slopeMbPerMinute: liveSlope }

  const p99Check = (value: (w: SoakWindow) => number | null): P99Check | null => {
    const points = series(measured, value)
    const p99Slope = slope(points)
    if (p99Slope === null) return null
    const firstMs = points[0]![1]
    const lastMs = points.at(-1)![1]
    const ratio = lastMs / firstMs
    return { firstMs, lastMs, ratio, slopeMsPerMinute: p99Slope, flat: ratio <= thresholds.p99Ratio }
  }
  const p99 = p99Check((w) => w.overall.p99)
  const coreP99 = p99Check((w) => w.core.p99)

  const routes: SoakVerdict['routes'] = {}
  const first = measured[0]
  const last = measured.at(-1)
  for (const name of Object.keys(first?.routes ?? {})) {
    const firstP99 = first?.routes[name]?.p99 ?? null
    const lastP99 = last?.routes[name]?.p99 ?? null
    routes[name] = { firstP99, lastP99, ratio: firstP99 !== null && lastP99 !== null && firstP99 > 0 ? lastP99 / firstP99 : null }
  }

  return {
    thresholds,
    measuredWindows: measured.length,
    rss,
    heap,
    liveHeap,
    p99,
    coreP99,
    routes,
    totals,
    serverExited,
    flat: !serverExited && rss !== null && rss.flat && p99 !== null && p99.flat && coreP99 !== null && coreP99.flat,
  }
}

// ---------------------------------------------------------------------------------------------
// Text

const mb = (value: number | null): string => value === null ? '—' : value.toFixed(1)
const ms = (value: number | null): string => value === null ? '—' : formatMs(value)
const signed = (value: number, digits: number): string => `${value >= 0 ? '+' : '−'}${Math.abs(value).toFixed(digits)}`
const mark = (met: boolean): string => met ? '✔' : '✘'

/** One line of the progress table, and its header: what a person watching the run sees. */
export const PROGRESS_HEADER = `${'window'.padEnd(8)}${'t'.padStart(7)}${'req/s'.padStart(8)}${'p50 ms'.padStart(9)}${'p99 ms'.padStart(9)}${'core p99'.padStart(10)}${'slowest p99'.padStart(28)}${'non-2xx'.padStart(9)}${'fail'.padStart(6)}${'429/503'.padStart(9)}${'RSS MB'.padStart(9)}${'heap MB'.padStart(9)}${'lag p99'.padStart(9)}${'PG conn'.padStart(9)}`

export function progressLine (window: SoakWindow): string {
  const slowest = Object.entries(window.routes)
    .filter(([, route]) => route.p99 !== null)
    .sort(([, a], [, b]) => b.p99! - a.p99!)[0]
  const slowestText = slowest === undefined ? '—' : `${slowest[0].replace(/^GET /, '')} ${ms(slowest[1].p99)}`
  return [
    `${window.index + 1}${window.warmUp ? ' (w)' : ''}`.padEnd(8),
    `${formatShort(window.endSeconds)}s`.padStart(7),
    formatShort(window.rps).padStart(8),
    ms(window.overall.p50).padStart(9),
    ms(window.overall.p99).padStart(9),
    ms(window.core.p99).padStart(10),
    slowestText.padStart(28),
    String(window.overall.non2xx).padStart(9),
    String(window.overall.failures).padStart(6),
    String(window.overall.throttled).padStart(9),
    mb(window.server.rssMb).padStart(9),
    mb(window.server.heapUsedMb).padStart(9),
    ms(window.server.eventLoopLagP99Ms).padStart(9),
    (window.server.pgConnections === null ? '—' : String(window.server.pgConnections)).padStart(9),
  ].join('')
}

export function describeVerdict (verdict: SoakVerdict): string {
  const t = verdict.thresholds
  const parts: string[] = []
  if (verdict.rss === null) {
    parts.push('RSS: not enough windows')
  } else {
    parts.push(`RSS ${signed(verdict.rss.slopeMbPerMinute, 2)} MB/min (${signed(verdict.rss.growthPercent, 1)}% over the measured windows; flat: < ${t.rssMbPerMinute} MB/min or < ${t.rssGrowthPercent}%) ${mark(verdict.rss.flat)}`)
  }
  for (const [label, check] of [['p99 of all routes', verdict.p99], ['p99 of the core routes', verdict.coreP99]] as const) {
    parts.push(check === null
      ? `${label}: not enough windows`
      : `${label}, last/first window ${check.ratio.toFixed(2)}× (${ms(check.firstMs)} → ${ms(check.lastMs)} ms; flat: ≤ ${t.p99Ratio}×) ${mark(check.flat)}`)
  }
  const totals = verdict.totals
  return `${verdict.flat ? 'flat' : 'NOT flat'}: ${verdict.serverExited ? 'THE SERVER EXITED during the run; ' : ''}${parts.join('; ')}. ${formatInt(totals.requests)} requests measured (${formatShort(totals.rps)} req/s), ` +
    `${formatInt(totals.non2xx)} non-2xx, ${formatInt(totals.failures)} failed, ${formatInt(totals.throttled)} throttled (429/503), ${formatInt(totals.skipped)} skipped.`
}

function machineLine (results: SoakResults): string {
  const m = results.machine
  return `${m.cpus} × ${m.cpuModel}, ${formatShort(m.memoryGiB)} GiB, ${m.os}; Node ${m.node}, PostgreSQL ${m.postgres}`
}

export function reproduceCommand (options: SoakResults['options']): string {
  return `npm run bench:soak -- --minutes ${formatShort(options.minutes)} --window-seconds ${formatShort(options.windowSeconds)} --rate ${formatShort(options.rate)}`
}

export function renderSoakMarkdown (results: SoakResults): string {
  const { verdict, options } = results
  const elapsed = (Date.parse(results.finishedAt) - Date.parse(results.startedAt)) / 1000
  const lines: string[] = [
    `### Run of ${formatTimestamp(results.startedAt)} — ${formatShort(options.minutes)} min at ${formatShort(options.rate)} req/s, ${formatShort(options.windowSeconds)} s windows (${formatShort(elapsed / 60)} min with start and stop)`,
    '',
    `Machine: ${machineLine(results)}. Server and PostgreSQL not pinned; the load generator is a process of its own. Reproduce: \`${reproduceCommand(options)}\`.`,
    '',
    `**Verdict: ${describeVerdict(verdict)}**`,
    '',
    '#### Windows',
    '',
    ...table(
      ['window', 'end', 'req/s', 'p50 ms', 'p99 ms', 'core p99 ms', 'non-2xx', 'failed', '429/503', 'RSS MB (mean)', 'RSS MB (max)', 'heap used MB', 'loop lag p99 ms', 'PG conn.'],
      ['left', 'right', 'right', 'right', 'right', 'right', 'right', 'right', 'right', 'right', 'right', 'right', 'right', 'right'],
      results.windows.map((w) => [
        `${w.index + 1}${w.warmUp ? ' (warm-up)' : ''}`,
        `${formatShort(w.endSeconds)} s`,
        formatShort(w.rps),
        ms(w.overall.p50),
        ms(w.overall.p99),
        ms(w.core.p99),
        formatInt(w.overall.non2xx),
        formatInt(w.overall.failures),
        formatInt(w.overall.throttled),
        mb(w.server.rssMb),
        mb(w.server.rssMaxMb),
        mb(w.server.heapUsedMb),
        ms(w.server.eventLoopLagP99Ms),
        w.server.pgConnections === null ? '—' : String(w.server.pgConnections),
      ]),
    ),
    '',
    '#### Routes',
    '',
  ]

  const measured = results.windows.filter((w) => !w.warmUp)
  const first = measured[0]
  const last = measured.at(-1)
  lines.push(...table(
    ['route', 'share', 'example', 'requests', 'p50 ms (first → last)', 'p99 ms (first → last)', 'p99 last/first', 'non-2xx', 'failed', '429/503'],
    ['left', 'right', 'left', 'right', 'right', 'right', 'right', 'right', 'right', 'right'],
    results.mix.map((route) => {
      const sumOf = (key: 'requests' | 'non2xx' | 'failures' | 'throttled'): number => measured.reduce((total, w) => total + (w.routes[route.name]?.[key] ?? 0), 0)
      const ratio = verdict.routes[route.name]?.ratio ?? null
      return [
        `${route.name}${route.core ? '' : ' †'}`,
        `${route.weight}%`,
        `\`${route.example}\``,
        formatInt(sumOf('requests')),
        `${ms(first?.routes[route.name]?.p50 ?? null)} → ${ms(last?.routes[route.name]?.p50 ?? null)}`,
        `${ms(first?.routes[route.name]?.p99 ?? null)} → ${ms(last?.routes[route.name]?.p99 ?? null)}`,
        ratio === null ? '—' : `${ratio.toFixed(2)}×${ratio > verdict.thresholds.p99Ratio ? ' ⚠' : ''}`,
        formatInt(sumOf('non2xx')),
        formatInt(sumOf('failures')),
        formatInt(sumOf('throttled')),
      ]
    }),
  ), '')
  lines.push(`Requests and errors of the ${verdict.measuredWindows} windows after the warm-up; first → last: the first and the last of those windows. † latency by design (the sample upstream's 100 ms, CPU work), left out of the core p99. ⚠ marks a route whose own p99 grew past ${verdict.thresholds.p99Ratio}× (informational: a route's p99 over one window rests on few requests).`, '')

  const t = verdict.thresholds
  const checks: string[][] = []
  if (verdict.rss !== null) {
    checks.push(['RSS slope (least squares over the measured windows\' means)', `${signed(verdict.rss.slopeMbPerMinute, 2)} MB/min (${mb(verdict.rss.firstMb)} → ${mb(verdict.rss.lastMb)} MB)`, `< ${t.rssMbPerMinute} MB/min, or:`, mark(verdict.rss.slopeMbPerMinute < t.rssMbPerMinute)])
    checks.push(['RSS growth over the measured span (slope × span / first window)', `${signed(verdict.rss.growthPercent, 1)}%`, `< ${t.rssGrowthPercent}%`, mark(verdict.rss.growthPercent < t.rssGrowthPercent)])
  }
  if (verdict.heap !== null) {
    checks.push(['V8 heap used at window ends, slope (informational: garbage included)', `${signed(verdict.heap.slopeMbPerMinute, 2)} MB/min (${mb(verdict.heap.firstMb)} → ${mb(verdict.heap.lastMb)} MB)`, '—', '—'])
  }
  if (verdict.liveHeap !== null) {
    checks.push([`Live heap: heap used after each full GC of the main thread, slope (informational; ${verdict.liveHeap.collections} full GCs)`, `${signed(verdict.liveHeap.slopeMbPerMinute, 2)} MB/min (${mb(verdict.liveHeap.firstMb)} → ${mb(verdict.liveHeap.lastMb)} MB)`, '—', '—'])
  }
  for (const [label, check] of [['all routes', verdict.p99], ['the core routes (†-marked left out)', verdict.coreP99]] as const) {
    if (check === null) continue
    checks.push([`p99 of ${label}, last / first measured window`, `${check.ratio.toFixed(2)}× (${ms(check.firstMs)} → ${ms(check.lastMs)} ms)`, `≤ ${t.p99Ratio}×`, mark(check.flat)])
    checks.push([`p99 of ${label}, slope (informational)`, `${signed(check.slopeMsPerMinute, 2)} ms/min`, '—', '—'])
  }
  lines.push('#### Verdict', '', ...table(['check', 'measured', 'threshold', 'met'], ['left', 'left', 'left', 'center'], checks), '')
  lines.push(`The first ${options.warmUpWindows === 1 ? 'window is' : `${options.warmUpWindows} windows are`} warm-up (JIT, pools and worker threads filling) and left out. RSS is flat when either RSS check is met; the verdict is flat when RSS and both p99 checks are.`, '')

  const notes = [...results.notes]
  if (results.serverLog.lines > 0) notes.push(`The server logged ${results.serverLog.lines} line(s) at warn or above; the first: ${results.serverLog.first.map((line) => `\`${line.slice(0, 200)}\``).join(' ')}`)
  if (notes.length > 0) lines.push('#### Notes', '', ...notes.map((note) => `- ${note.replace(/\r?\n/g, ' ')}`), '')
  return `${lines.join('\n').trimEnd()}\n`
}

const START_MARKER = '<!-- soak:start -->'
const END_MARKER = '<!-- soak:end -->'

/**
 * Puts `block` between the soak markers; without them, inserts a section holding them before the
 * suite's `## data-api bench` section (which stays the last one), or at the end.
 */
export function updateSoakSection (existing: string, block: string, intro: string): string {
  const start = existing.indexOf(START_MARKER)
  const end = existing.indexOf(END_MARKER, start === -1 ? 0 : start)
  const inner = `\n${block.replace(/^\n+|\s+$/g, '')}\n`
  if (start === -1 && existing.indexOf(END_MARKER) === -1) {
    const section = `## Soak — \`npm run bench:soak\`\n\n${intro.trim()}\n\n${START_MARKER}${inner}${END_MARKER}\n`
    const suite = existing.indexOf('\n## data-api bench')
    if (suite === -1) return `${existing.trimEnd()}\n\n${section}`
    return `${existing.slice(0, suite + 1)}${section}\n${existing.slice(suite + 1)}`
  }
  if (start === -1 || end === -1) throw new Error(`BENCHMARKS.md has an unpaired soak marker: expected ${START_MARKER} followed by ${END_MARKER}`)
  return existing.slice(0, start + START_MARKER.length) + inner + existing.slice(end)
}

// ---------------------------------------------------------------------------------------------
// Chart: memory and p99 over time, two panels sharing the time axis (a Vega-Lite spec, vega-svg.ts)

/** Okabe–Ito, then grey: one per route, in the mix's order. */
const ROUTE_COLORS = ['#0072B2', '#E69F00', '#009E73', '#CC79A7', '#D55E00', '#56B4E9', '#999999', '#7F3C8D', '#B8A000']
const SOLID: number[] = []
const DASHED = [5, 3]

/** One line of a panel: its legend label, its look, and its points (minutes, value). */
interface Line { label: string, color: string, width: number, dash?: number[], points: Array<[number, number]>, dots?: boolean }

/** Powers of ten covering [min, max] (log axis). */
function logTicks (min: number, max: number): number[] {
  const low = Math.floor(Math.log10(Math.max(min, 1e-3)))
  const high = Math.ceil(Math.log10(Math.max(max, 1e-3)))
  return Array.from({ length: Math.max(1, high - low) + 1 }, (_, i) => Number((10 ** (low + i)).toPrecision(6)))
}

/** 0, step, 2 step, … up to the first multiple of a 1-2-2.5-5 step at or above max (about 5 ticks). */
function niceMax (max: number): number {
  if (!Number.isFinite(max) || max <= 0) return 1
  const rough = max / 5
  const magnitude = 10 ** Math.floor(Math.log10(rough))
  const step = [1, 2, 2.5, 5, 10].map((f) => f * magnitude).find((candidate) => candidate >= rough) ?? 10 * magnitude
  return Number((Math.ceil(max / step - 1e-9) * step).toPrecision(12))
}

interface Panel { title: string, lines: Line[], log: boolean, yTitle: string, xTitle: string | null }

function panelSpec (panel: Panel, xMax: number, warmUpEnd: number): ConcatItem {
  const lines = panel.lines.map((line) => ({ ...line, points: line.points.filter(([, value]) => Number.isFinite(value) && (!panel.log || value > 0)) }))
  const labels = lines.map((line) => line.label)
  const points = lines.flatMap((line) => line.points.map(([minutes, value]) => ({
    series: line.label,
    minutes,
    value,
    dots: line.dots !== false,
    description: `${line.label}: ${formatShort(value)} at ${formatShort(minutes)} min`,
  })))
  const values = points.map((point) => point.value)
  const yScale = panel.log
    ? (() => {
        const ticks = values.length === 0 ? [1, 10] : logTicks(Math.min(...values), Math.max(...values))
        return { scale: { type: 'log', domain: [ticks[0]!, ticks.at(-1)!], nice: false }, axis: { values: ticks, labelExpr: TICK_LABEL } }
      })()
    : { scale: { type: 'linear', domain: [0, niceMax(Math.max(0, ...values))], nice: false }, axis: { labelExpr: TICK_LABEL, tickCount: 5 } }
  const x = { field: 'minutes', type: 'quantitative', title: panel.xTitle, scale: { domain: [0, xMax], nice: false }, axis: { grid: false, tickCount: Math.min(10, Math.max(2, Math.round(xMax))), labelExpr: TICK_LABEL } } as const
  const legend = { title: null, orient: 'top', direction: 'horizontal', columns: 4, symbolType: 'stroke', symbolSize: 360, labelFontSize: 11, labelColor: MUTED, offset: 8 }
  const series = {
    color: { field: 'series', type: 'nominal', scale: { domain: labels, range: lines.map((line) => line.color) }, legend },
    strokeDash: { field: 'series', type: 'nominal', scale: { type: 'ordinal', domain: labels, range: lines.map((line) => line.dash ?? SOLID) }, legend },
    // Ordinal, not the default point scale: each line keeps its own width rather than one spread evenly.
    strokeWidth: { field: 'series', type: 'ordinal', sort: labels, scale: { type: 'ordinal', domain: labels, range: lines.map((line) => line.width) }, legend },
  }
  const layers: unknown[] = []
  if (warmUpEnd > 0) {
    layers.push({
      data: { values: [{ from: 0, to: warmUpEnd, middle: warmUpEnd / 2, label: 'warm-up' }] },
      layer: [
        { mark: { type: 'rect', color: '#eef1f4' }, encoding: { x: { field: 'from', type: 'quantitative' }, x2: { field: 'to' } } },
        { mark: { type: 'text', baseline: 'top', dy: 6, fontSize: 11, color: MUTED }, encoding: { x: { field: 'middle', type: 'quantitative' }, y: { value: 0 }, text: { field: 'label' } } },
      ],
    })
  }
  layers.push({
    data: { values: points },
    layer: [
      {
        mark: { type: 'line', strokeJoin: 'round' },
        encoding: { x, y: { field: 'value', type: 'quantitative', title: panel.yTitle, ...yScale }, ...series, detail: { field: 'series' } },
      },
      {
        transform: [{ filter: 'datum.dots' }],
        mark: { type: 'circle', size: 14, opacity: 1 },
        encoding: { x, y: { field: 'value', type: 'quantitative' }, color: { field: 'series', type: 'nominal' }, description: { field: 'description' } },
      },
    ],
  })
  return {
    title: { text: panel.title, fontSize: 13, anchor: 'start', offset: 8 },
    width: 700,
    height: 190,
    layer: layers,
  } as ConcatItem
}

function soakChartSpec (results: SoakResults): TopLevelSpec {
  const windows = results.windows
  // The time axis ends on a tick: 4.9998 or 15.003 min of windows are drawn to 5 and 15.
  const xMax = niceMax(0.995 * Math.max(0.1, ...windows.map((w) => w.endSeconds / 60)))
  const lastWarmUp = windows.filter((w) => w.warmUp).at(-1)
  const warmUpEnd = lastWarmUp === undefined ? 0 : lastWarmUp.endSeconds / 60
  const points = (value: (w: SoakWindow) => number | null): Array<[number, number]> => series(windows, value)
  const memory = panelSpec({
    title: 'Resident memory and V8 heap of the server process (MB)',
    lines: [
      { label: 'RSS, window mean', color: '#0072B2', width: 2.5, points: points((w) => w.server.rssMb) },
      { label: 'RSS, every second', color: '#56B4E9', width: 1, dots: false, points: results.rssSamples.map(([seconds, value]) => [seconds / 60, value]) },
      { label: 'V8 heap used', color: '#009E73', width: 2, points: points((w) => w.server.heapUsedMb) },
      { label: 'V8 heap total', color: '#009E73', width: 1.2, dash: DASHED, points: points((w) => w.server.heapTotalMb) },
      { label: 'live heap (after each full GC)', color: '#D55E00', width: 1.5, points: results.fullGcs.filter(([seconds]) => seconds >= 0).map(([seconds, , after]) => [seconds / 60, after]) },
    ],
    log: false,
    yTitle: 'MB',
    xTitle: null,
  }, xMax, warmUpEnd)
  const latency = panelSpec({
    title: 'p99 latency per window (ms, log scale)',
    lines: [
      { label: 'all routes', color: INK, width: 2.5, points: points((w) => w.overall.p99) },
      { label: 'core routes', color: INK, width: 2.5, dash: [6, 3], points: points((w) => w.core.p99) },
      ...results.mix.map((route, i): Line => ({
        label: route.name,
        color: ROUTE_COLORS[i % ROUTE_COLORS.length]!,
        width: 1.2,
        dash: i >= 5 ? DASHED : undefined,
        points: points((w) => w.routes[route.name]?.p99 ?? null),
      })),
    ],
    log: true,
    yTitle: 'ms',
    xTitle: 'minutes since the first request',
  }, xMax, warmUpEnd)
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: {
      text: 'data-api soak: memory and p99 over time',
      subtitle: `${formatShort(results.options.minutes)} min of a mixed workload at ${formatShort(results.options.rate)} req/s, ${formatShort(results.options.windowSeconds)} s windows · ${describeVerdict(results.verdict).split(':')[0]!}`,
      offset: 16,
    },
    vconcat: [memory, latency, footerSpec(`data-api bench:soak, ${formatTimestamp(results.startedAt)} · ${machineLine(results)}`, 120)],
    spacing: 28,
    resolve: { scale: { color: 'independent', strokeDash: 'independent', strokeWidth: 'independent', y: 'independent' }, legend: { color: 'independent', strokeDash: 'independent', strokeWidth: 'independent' } },
  }
}

export async function renderSoakChart (results: SoakResults): Promise<string> {
  return await renderVegaLite(soakChartSpec(results))
}

if (import.meta.main) {
  // Re-renders the chart of a stored soak run: node bench/soak-report.ts bench/results/soak-<time>.json [out.svg]
  const [file, out = path.join(import.meta.dirname, 'charts', 'soak.svg')] = process.argv.slice(2)
  if (file === undefined) {
    console.error('usage: node bench/soak-report.ts bench/results/soak-<time>.json [chart.svg]')
    process.exit(2)
  }
  await fs.writeFile(out, await renderSoakChart(JSON.parse(await fs.readFile(file, 'utf8')) as SoakResults))
  console.log(`chart of ${file} written to ${out}`)
}
