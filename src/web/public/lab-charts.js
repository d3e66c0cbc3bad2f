// @ts-check
// The lab's drawings, as lit-html SVG templates: a request waterfall (one bar per request on a
// shared time axis, split into the route's Server-Timing parts) and a horizontal bar chart for the
// bench results. Sizes are in the SVG's own units with a viewBox as wide as the container was
// when drawn (so text reads at its CSS size), scaled to the container's width by CSS after that.
// Colours come from classes in app.css: the page's CSP refuses style attributes.
import { html, svg } from 'lit-html'
import { formatMs } from './lab-measure.js'

/** @typedef {import('./lab-measure.js').Measured} Measured */

const PART_COLOURS = 6

/** A step of 1, 2 or 5 × 10ⁿ that cuts `max` into about `count` ticks. */
function niceStep (/** @type {number} */ max, count = 5) {
  const raw = max / count
  const power = 10 ** Math.floor(Math.log10(raw))
  const step = [1, 2, 5, 10].map((factor) => factor * power).find((candidate) => candidate >= raw) ?? 10 * power
  return step
}

/** Ticks from 0 to at least `max`: [values, the axis' end]. */
function ticks (/** @type {number} */ max) {
  const top = max > 0 ? max : 1
  const step = niceStep(top)
  const end = Math.ceil(top / step) * step
  /** @type {number[]} */
  const values = []
  for (let value = 0; value <= end + step / 1000; value += step) values.push(value)
  return { values, end }
}

/** `text` cut to about `width` units of 12px system-ui text (the whole text is in the chart's title). */
function fit (/** @type {string} */ text, /** @type {number} */ width) {
  const max = Math.max(4, Math.floor(width / 6.6))
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`
}

/** The phases of a request that the waterfall draws and its legend names. */
export const PHASES = /** @type {const} */ ({
  queued: 'waiting in the browser for a connection',
  server: 'at the server (no Server-Timing part)',
  download: 'receiving the answer',
})

/**
 * How a request's Server-Timing parts are drawn: the header gives durations, not start times, so
 * as the route's code runs them (`partsAtOnce`): side by side, each from the start, or one after
 * the other. Unknown: side by side when their sum is longer than the server's time (they must
 * have overlapped), else one after the other.
 * @param {Measured} measured
 */
export function partsLayout (measured) {
  if (measured.partsAtOnce !== undefined) return measured.partsAtOnce && measured.parts.length > 1 ? 'side by side' : 'in sequence'
  const serverMs = measured.responseStartMs - measured.requestStartMs
  const sum = measured.parts.reduce((total, { durationMs }) => total + durationMs, 0)
  return measured.parts.length > 1 && sum > serverMs * 1.05 + 2 ? 'side by side' : 'in sequence'
}

/** What a screen reader and the tooltip say of one bar. */
export function describeRequest (/** @type {Measured} */ measured, /** @type {number} */ originMs) {
  const outcome = measured.status === 0 ? `no answer (${measured.failure ?? 'failed'})` : `HTTP ${measured.status}`
  const queued = measured.requestStartMs - measured.startMs
  const parts = measured.parts.length === 0 ? '' : `; Server-Timing ${measured.parts.map(({ name, durationMs }) => `${name} ${formatMs(durationMs)}`).join(', ')} (drawn ${partsLayout(measured)})`
  return `${measured.label}: ${outcome}, started at +${formatMs(measured.startMs - originMs)}, ` +
    `${queued >= 1 ? `waited ${formatMs(queued)} for a connection, ` : ''}` +
    `${formatMs(measured.responseStartMs - measured.requestStartMs)} until the first byte, ${formatMs(measured.endMs - measured.startMs)} in all${parts}`
}

/**
 * The waterfall of a run: every request on one time axis starting at the first request's start.
 * @param {object} options
 * @param {Measured[]} options.rows
 * @param {string[]} options.partNames the Server-Timing names this chart colours, in legend order
 * @param {number} options.width       the container's width in CSS pixels
 * @param {string} options.caption     what the chart shows, in words
 */
export function waterfall ({ rows, partNames, width, caption }) {
  const originMs = Math.min(...rows.map(({ startMs }) => startMs))
  const totalMs = Math.max(...rows.map(({ endMs }) => endMs)) - originMs
  const axis = ticks(totalMs)
  const labelWidth = width < 480 ? 96 : 124
  const right = width - 40
  const rowHeight = 20
  const barHeight = 14
  const top = 6
  const height = top + rows.length * rowHeight + 34
  const x = (/** @type {number} */ ms) => labelWidth + (Math.max(0, ms) / axis.end) * (right - labelWidth)
  const w = (/** @type {number} */ ms) => Math.max(0.5, (Math.max(0, ms) / axis.end) * (right - labelWidth))
  const unitIsSeconds = axis.end >= 2000
  const tickLabel = (/** @type {number} */ ms) => unitIsSeconds ? `${+(ms / 1000).toFixed(2)}` : `${+ms.toFixed(1)}`
  const partClass = (/** @type {string} */ name) => `lab-part-${Math.max(0, partNames.indexOf(name)) % PART_COLOURS}`

  const bar = (/** @type {Measured} */ measured, /** @type {number} */ index) => {
    const y = top + index * rowHeight
    const barTop = y + (rowHeight - barHeight) / 2
    const description = describeRequest(measured, originMs)
    const start = measured.startMs - originMs
    const requestStart = measured.requestStartMs - originMs
    const responseStart = measured.responseStartMs - originMs
    const end = measured.endMs - originMs
    const isFailed = measured.status === 0 || measured.status >= 400
    /** @type {unknown[]} */
    const parts = []
    if (partsLayout(measured) === 'side by side') {
      const lane = barHeight / measured.parts.length
      measured.parts.forEach(({ name, durationMs }, lanes) => {
        parts.push(svg`<rect class=${partClass(name)} x=${x(requestStart)} y=${barTop + lanes * lane} width=${w(Math.min(durationMs, responseStart - requestStart))} height=${Math.max(1, lane - 0.5)}></rect>`)
      })
    } else {
      let at = requestStart
      for (const { name, durationMs } of measured.parts) {
        const length = Math.min(durationMs, responseStart - at)
        if (length > 0) parts.push(svg`<rect class=${partClass(name)} x=${x(at)} y=${barTop} width=${w(length)} height=${barHeight}></rect>`)
        at += Math.max(0, length)
      }
    }
    return svg`<g class=${`lab-bar${isFailed ? ' lab-failed' : ''}`} role="img" aria-label=${description}>
      <title>${description}</title>
      <text class="lab-label" x="4" y=${y + rowHeight / 2 + 4}>${fit(measured.label, labelWidth - 8)}</text>
      ${requestStart - start >= 0.5 ? svg`<rect class="lab-queued" x=${x(start)} y=${barTop + barHeight / 4} width=${w(requestStart - start)} height=${barHeight / 2}></rect>` : ''}
      <rect class="lab-server" x=${x(requestStart)} y=${barTop} width=${w(responseStart - requestStart)} height=${barHeight}></rect>
      ${parts}
      <rect class="lab-download" x=${x(responseStart)} y=${barTop} width=${w(end - responseStart)} height=${barHeight}></rect>
      ${isFailed ? svg`<text class="lab-status" x=${x(end) + 4} y=${y + rowHeight / 2 + 4}>${measured.status === 0 ? '✕' : measured.status}</text>` : ''}
    </g>`
  }

  const axisY = top + rows.length * rowHeight + 4
  return html`<figure class="lab-figure">
    <svg class="lab-chart lab-waterfall" viewBox=${`0 0 ${width} ${height}`} role="group" aria-label=${caption}>
      ${axis.values.map((value) => svg`<line class="lab-grid" x1=${x(value)} x2=${x(value)} y1=${top} y2=${axisY}></line>
        <text class="lab-tick" x=${x(value)} y=${axisY + 13} text-anchor="middle">${tickLabel(value)}</text>`)}
      ${rows.map(bar)}
      <text class="lab-axis-title" x=${(labelWidth + right) / 2} y=${axisY + 28} text-anchor="middle">time since the first request started (${unitIsSeconds ? 's' : 'ms'})</text>
    </svg>
    <figcaption>
      ${legend(rows, partNames)}
      ${rows.some(({ parts }) => parts.length > 1) ? html`<p class="muted lab-note">Server-Timing gives each part's duration, not its start: the parts are drawn as the route runs them, side by side when at once, one after the other when in turn.</p>` : ''}
    </figcaption>
  </figure>`
}

/** The legend of a waterfall: the phases and parts that appear in it. */
function legend (/** @type {Measured[]} */ rows, /** @type {string[]} */ partNames) {
  const hasQueued = rows.some(({ startMs, requestStartMs }) => requestStartMs - startMs >= 0.5)
  const hasFailed = rows.some(({ status }) => status === 0 || status >= 400)
  const item = (/** @type {string} */ swatch, /** @type {string} */ text) => html`<li><span class=${`lab-swatch ${swatch}`} aria-hidden="true"></span>${text}</li>`
  return html`<ul class="lab-legend">
    ${hasQueued ? item('lab-queued', PHASES.queued) : ''}
    ${item('lab-server', PHASES.server)}
    ${partNames.map((name, index) => item(`lab-part-${index % PART_COLOURS}`, `Server-Timing: ${name}`))}
    ${item('lab-download', PHASES.download)}
    ${hasFailed ? html`<li><span class="lab-swatch lab-failed-swatch" aria-hidden="true"></span>outlined, with its status: a failed request</li>` : ''}
  </ul>`
}

/**
 * The same numbers as a table, for a screen reader or whoever wants them exact.
 * @param {Measured[]} rows
 */
export function timingTable (rows) {
  const originMs = Math.min(...rows.map(({ startMs }) => startMs))
  return html`<details class="lab-numbers">
    <summary>The numbers (${rows.length} request${rows.length === 1 ? '' : 's'})</summary>
    <div class="table-wrap" tabindex="0" role="region" aria-label="The numbers of each request">
      <table>
        <thead><tr><th scope="col">request</th><th scope="col">status</th><th scope="col" class="num">start</th><th scope="col" class="num">wait for a connection</th><th scope="col" class="num">to first byte</th><th scope="col" class="num">total</th><th scope="col">Server-Timing</th></tr></thead>
        <tbody>${rows.map((m) => html`<tr>
          <th scope="row">${m.label}</th>
          <td>${m.status === 0 ? `none (${m.failure ?? 'failed'})` : m.status}</td>
          <td class="num">+${formatMs(m.startMs - originMs)}</td>
          <td class="num">${formatMs(m.requestStartMs - m.startMs)}</td>
          <td class="num">${formatMs(m.responseStartMs - m.requestStartMs)}</td>
          <td class="num">${formatMs(m.endMs - m.startMs)}</td>
          <td>${m.parts.length === 0 ? '—' : m.parts.map(({ name, durationMs, description }) => `${name} ${formatMs(durationMs)}${description === undefined ? '' : ` (${description})`}`).join(', ')}</td>
        </tr>`)}</tbody>
      </table>
    </div>
    <p class="muted">${rows.every(({ isResourceTimed }) => isResourceTimed)
      ? 'Times from the browser\'s Resource Timing entries (performance.getEntriesByType(\'resource\')).'
      : 'Some times are performance.now() around fetch(): the browser gave no Resource Timing entry for them.'}</p>
  </details>`
}

/**
 * @typedef {object} BarRow
 * @property {string} label
 * @property {number} value
 * @property {'lesson' | 'ours' | 'theirs'} series who the number is from: the lesson, data-api, FastAPI
 */

/**
 * A horizontal bar chart with a value axis; every bar says its value at its end.
 * @param {object} options
 * @param {string} options.id        unique in the page (the chart's title element)
 * @param {string} options.title
 * @param {BarRow[]} options.rows
 * @param {string} options.unit      written after each value: 's', 'ms', 'req/s'
 * @param {string} options.axisTitle
 * @param {number} options.width
 */
export function barChart ({ id, title, rows, unit, axisTitle, width }) {
  const max = Math.max(...rows.map(({ value }) => value))
  const axis = ticks(max)
  const labelWidth = Math.min(width * 0.45, 230)
  const right = width - 78
  const rowHeight = 22
  const top = 4
  const axisY = top + rows.length * rowHeight + 4
  const height = axisY + 34
  const x = (/** @type {number} */ value) => labelWidth + (value / axis.end) * (right - labelWidth)
  const format = (/** @type {number} */ value) => `${value >= 1000 ? Math.round(value).toLocaleString('en') : +value.toFixed(value < 10 ? 2 : 1)} ${unit}`
  return svg`<svg class="lab-chart lab-bars" viewBox=${`0 0 ${width} ${height}`} role="img" aria-labelledby=${`${id}-title`}>
    <title id=${`${id}-title`}>${title}: ${rows.map(({ label, value }) => `${label} ${format(value)}`).join('; ')}</title>
    ${axis.values.map((value) => svg`<line class="lab-grid" x1=${x(value)} x2=${x(value)} y1=${top} y2=${axisY}></line>
      <text class="lab-tick" x=${x(value)} y=${axisY + 13} text-anchor="middle">${value >= 1000 ? `${+(value / 1000).toFixed(1)}k` : +value.toFixed(3)}</text>`)}
    ${rows.map(({ label, value, series }, index) => {
      const y = top + index * rowHeight
      return svg`<g>
        <text class="lab-label" x=${labelWidth - 6} y=${y + 15} text-anchor="end">${fit(label, labelWidth - 8)}</text>
        <rect class=${`lab-series-${series}`} x=${labelWidth} y=${y + 4} width=${Math.max(0.5, x(value) - labelWidth)} height="14"></rect>
        <text class="lab-value" x=${x(value) + 4} y=${y + 15}>${format(value)}</text>
      </g>`
    })}
    <text class="lab-axis-title" x=${(labelWidth + right) / 2} y=${axisY + 28} text-anchor="middle">${axisTitle}</text>
  </svg>`
}
