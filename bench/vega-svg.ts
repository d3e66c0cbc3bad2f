// Charts as data: a Vega-Lite spec, compiled to Vega and rendered to an SVG string in Node (no
// browser, no canvas). Nothing is fetched: the data is inline, the loader refuses every URL, and
// the fonts are named for the viewer's browser, not embedded. Same spec, same bytes.
import * as vega from 'vega'
import { compile, type Config, type TopLevelSpec } from 'vega-lite'

export const INK = '#1f2328'
export const MUTED = '#59636e'
export const GRID = '#d1d9e0'
const FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, Helvetica, Arial, sans-serif"

/** Axis ticks: 25000 → '25k', 2.5 → '2.5', 0.1 → '0.1' (a Vega expression, for `axis.labelExpr`). */
export const TICK_LABEL = "datum.value >= 1000 ? format(datum.value / 1000, '~r') + 'k' : format(datum.value, '~r')"

/** One chart of a vconcat. */
export type ConcatItem = Extract<TopLevelSpec, { vconcat: unknown }>['vconcat'][number]

/** The look every bench chart shares: GitHub's text colours on an opaque white background. */
const CONFIG: Config = {
  // Opaque: on a dark page (GitHub's dark theme) dark text on transparent vanishes.
  background: '#ffffff',
  padding: 16,
  font: FONT,
  view: { stroke: null },
  title: { anchor: 'start', color: INK, fontSize: 17, fontWeight: 600, subtitleColor: MUTED, subtitleFontSize: 12, subtitlePadding: 6 },
  axis: { labelColor: MUTED, labelFontSize: 11, titleColor: MUTED, titleFontSize: 12, titleFontWeight: 'normal', domainColor: MUTED, tickColor: MUTED, gridColor: GRID, labelLimit: 0 },
  header: { labelColor: INK, labelFontSize: 13, labelFontWeight: 600, titleFontSize: 13 },
  legend: { labelColor: INK, labelFontSize: 12, titleColor: MUTED, titleFontSize: 11, labelLimit: 0, symbolStrokeWidth: 0 },
  text: { color: INK, fontSize: 11 },
}

/** The spec's inline data only: a chart that names a URL (data, an image) is a mistake, not a download. */
const refuse = async (uri: string): Promise<never> => {
  throw new Error(`bench charts are rendered offline; refusing to load ${uri}`)
}
const OFFLINE_LOADER: vega.Loader = { load: refuse, sanitize: refuse, http: refuse, file: refuse }

/**
 * Without a canvas (the native `canvas` package, which we do not install), vega estimates a text's
 * width as 0.8 em per character: so wide that labels are pushed apart and long ones cut short.
 * This estimate follows the widths of a common sans-serif (Helvetica/Arial metrics, with a little
 * to spare for wider system fonts). vega uses it only to lay out (where titles, labels and legends
 * go); the viewer's font draws the text. vega reads it from its shared textMetrics, which
 * vl-convert replaces the same way; in this process only the bench renders charts.
 */
const NARROW = new Set("iljI.,:;|!'`")
const SEMI = new Set('ftr()[]/\\- ')
const WIDE = new Set('mwMW@%')
function emWidth (ch: string): number {
  if (NARROW.has(ch)) return 0.29
  if (SEMI.has(ch)) return 0.34
  if (WIDE.has(ch)) return 0.86
  if (/[A-Z]/.test(ch)) return 0.68
  return 0.57
}
interface TextItem { text?: string | number | string[], fontSize?: number, fontWeight?: string | number, limit?: number }
const textMetrics = (vega as unknown as { textMetrics: { width: (item: TextItem, text?: string | number) => number } }).textMetrics
textMetrics.width = (item, text) => {
  const value = text ?? item.text
  const line = value === null || value === undefined ? '' : String(value).trim()
  const size = item.fontSize ?? 11
  const bold = item.fontWeight === 'bold' || Number(item.fontWeight) >= 600 ? 1.06 : 1
  let em = 0
  for (const ch of line) em += emWidth(ch)
  const width = em * size * bold * 1.04
  // A limited text is cut to its limit (with an ellipsis) when drawn.
  return item.limit !== undefined && item.limit > 0 ? Math.min(width, item.limit) : width
}

/**
 * Vega-Lite's warnings, less one: a faceted layer with an independent scale (a band per scenario,
 * each with only its own servers) warns that it assumes the layers' fields come from one data
 * source, which is what they do here.
 */
const compileLogger = vega.logger(vega.Warn)
const warn = compileLogger.warn.bind(compileLogger)
compileLogger.warn = (...args: readonly unknown[]) => {
  if (!String(args[0]).startsWith('Detected faceted independent scales that union domain of the same fields')) warn(...args)
  return compileLogger
}

/** The SVG document of a Vega-Lite spec. */
export async function renderVegaLite (spec: TopLevelSpec): Promise<string> {
  const { spec: compiled } = compile(spec, { config: CONFIG, logger: compileLogger })
  // vega logs a failed load and draws the chart without its data: refuse such a spec outright.
  const urls = (compiled.data ?? []).flatMap((data) => 'url' in data ? [JSON.stringify(data.url)] : [])
  if (urls.length > 0) throw new Error(`bench charts are rendered offline, from inline data; this spec loads ${urls.join(', ')}`)
  const view = new vega.View(vega.parse(compiled), { renderer: 'none', loader: OFFLINE_LOADER, logLevel: vega.Warn })
  try {
    return `${numberIdsInOrder(await view.toSVG())}\n`
  } finally {
    view.finalize()
  }
}

/**
 * vega numbers the clip paths and gradients it defines with a counter of the process (clip7,
 * clip8, …), so the same chart rendered second would differ: number them per document instead.
 */
function numberIdsInOrder (svg: string): string {
  const ids = new Map<string, string>()
  for (const [, id, kind] of svg.matchAll(/ id="((clip|gradient|pattern)\d+)"/g)) {
    if (!ids.has(id!)) ids.set(id!, `${kind!}${ids.size + 1}`)
  }
  if (ids.size === 0) return svg
  return svg.replace(/\b(?:clip|gradient|pattern)\d+\b/g, (id) => ids.get(id) ?? id)
}

/** Greedy word wrap at `maxChars` characters a line. */
function wrapText (text: string, maxChars: number): string[] {
  const lines: string[] = []
  let line = ''
  for (const word of text.split(' ')) {
    const candidate = line === '' ? word : `${line} ${word}`
    if (line !== '' && candidate.length > maxChars) {
      lines.push(line)
      line = word
    } else {
      line = candidate
    }
  }
  if (line !== '') lines.push(line)
  return lines
}

/** A line or two of small muted text, to stack under a chart (vconcat): what was measured, where. */
export function footerSpec (text: string, maxChars = 110): ConcatItem {
  const lines = wrapText(text, maxChars)
  return {
    data: { values: [{}] },
    width: 1,
    height: lines.length * 14,
    mark: { type: 'text', align: 'left', baseline: 'top', fontSize: 11, color: MUTED, lineHeight: 14 },
    encoding: { text: { value: lines }, x: { value: 0 }, y: { value: 0 } },
  }
}
