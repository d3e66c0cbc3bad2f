// @ts-check
// How the lesson lab measures: real requests from this browser, timed by the browser's own
// Resource Timing entry of each (when it started, when it got a connection, when the first byte
// came back, when the last did) and split by the Server-Timing parts the route reports. The API
// client of the other pages (api.js `request`) throws on a problem and drops the headers; here a
// 404 or a 502 is a measurement like a 200, so this module calls fetch itself.

/** @typedef {{ name: string, durationMs: number, description?: string }} TimingPart */

/**
 * One request as measured: times in ms on the page's clock (performance.now()).
 * @typedef {object} Measured
 * @property {string} label       what the waterfall calls it (`/sync #3`)
 * @property {string} url         the path and query asked
 * @property {number} startMs     fetch() was called
 * @property {number} requestStartMs the request left on a connection (later than startMs when the browser had to wait for one)
 * @property {number} responseStartMs the first byte of the answer came back
 * @property {number} endMs       the last byte came back
 * @property {boolean} isResourceTimed whether the times are the browser's Resource Timing entry's (else: performance.now() around fetch)
 * @property {number} status      0: no answer (the request failed in the network)
 * @property {TimingPart[]} parts the route's Server-Timing entries
 * @property {boolean} [partsAtOnce] whether the route runs its parts at once (gather) or in turn, as
 *   its code does: the header carries each part's duration, not its start
 * @property {unknown} body       the parsed JSON answer (a problem document for a 4xx/5xx)
 * @property {string} [failure]   why there is no answer
 */

/** How long a request took, from fetch() to its last byte. */
export const durationMs = (/** @type {Measured} */ m) => m.endMs - m.startMs

/**
 * Reads a Server-Timing header (`user;dur=1001.2, orders;desc="x";dur=3.0`) as this service
 * writes it (lib/server-timing.ts: descriptions percent-encoded).
 * @param {string | null} header
 * @returns {TimingPart[]}
 */
export function parseServerTiming (header) {
  if (header === null || header.trim() === '') return []
  /** @type {TimingPart[]} */
  const parts = []
  for (const entry of header.split(',')) {
    const [name, ...params] = entry.trim().split(';')
    if (name === undefined || name === '') continue
    /** @type {TimingPart} */
    const part = { name, durationMs: 0 }
    for (const param of params) {
      const [key, ...rest] = param.split('=')
      const value = rest.join('=').trim().replace(/^"(.*)"$/, '$1')
      if (key?.trim() === 'dur') part.durationMs = Number(value)
      if (key?.trim() === 'desc') {
        try { part.description = decodeURIComponent(value) } catch { part.description = value }
      }
    }
    if (Number.isFinite(part.durationMs)) parts.push(part)
  }
  return parts
}

/**
 * Sends one GET and measures it; never throws but for an abort of `signal`.
 * @param {string} url a path of this origin
 * @param {string} label
 * @param {AbortSignal} signal
 * @returns {Promise<Measured>}
 */
export async function measure (url, label, signal) {
  const startMs = performance.now()
  /** @type {Measured} */
  const measured = { label, url, startMs, requestStartMs: startMs, responseStartMs: startMs, endMs: startMs, isResourceTimed: false, status: 0, parts: [], body: undefined }
  try {
    const response = await fetch(url, { headers: { accept: 'application/json, application/problem+json' }, signal, cache: 'no-store' })
    measured.responseStartMs = performance.now()
    measured.status = response.status
    measured.parts = parseServerTiming(response.headers.get('server-timing'))
    const text = await response.text()
    try { measured.body = JSON.parse(text) } catch { measured.body = text }
  } catch (error) {
    if (signal.aborted) throw error
    measured.failure = error instanceof Error ? error.message : String(error)
  }
  measured.endMs = performance.now()
  return measured
}

/**
 * Replaces the times of each measurement by its Resource Timing entry's, which knows when the
 * request got a connection and when its first byte came: the browser adds an entry as its
 * response ends, which may be a moment after fetch's body promise settled, so this waits a little
 * for them. Requests of the same URL are told apart by their start.
 * @param {Measured[]} batch
 */
export async function applyResourceTiming (batch) {
  const names = new Set(batch.map(({ url }) => new URL(url, location.href).href))
  /** @returns {PerformanceResourceTiming[]} */
  const entriesNow = () => /** @type {PerformanceResourceTiming[]} */ (performance.getEntriesByType('resource'))
    .filter((entry) => names.has(entry.name) && entry.startTime >= Math.min(...batch.map(({ startMs }) => startMs)) - 1)
  const answered = batch.filter(({ status }) => status !== 0).length
  for (let waited = 0; entriesNow().length < answered && waited < 1000; waited += 25) {
    await new Promise((resolve) => { setTimeout(resolve, 25) })
  }
  const unused = new Set(entriesNow())
  for (const measured of [...batch].sort((a, b) => a.startMs - b.startMs)) {
    if (measured.status === 0) continue
    const href = new URL(measured.url, location.href).href
    let best
    for (const entry of unused) {
      if (entry.name !== href || entry.responseEnd > measured.endMs + 5) continue
      if (best === undefined || Math.abs(entry.startTime - measured.startMs) < Math.abs(best.startTime - measured.startMs)) best = entry
    }
    if (best === undefined) continue
    unused.delete(best)
    measured.startMs = best.startTime
    // 0 when the browser hides the detail (cross-origin without Timing-Allow-Origin): not here, but keep what fetch saw.
    measured.requestStartMs = best.requestStart > 0 ? best.requestStart : best.startTime
    measured.responseStartMs = best.responseStart > 0 ? best.responseStart : measured.responseStartMs
    measured.endMs = best.responseEnd
    measured.isResourceTimed = true
    if (measured.parts.length === 0) measured.parts = best.serverTiming.map(({ name, duration, description }) => ({ name, durationMs: duration, ...(description !== '' && { description }) }))
  }
}

/**
 * The browser keeps 250 Resource Timing entries by default and drops later ones: room for a
 * session of runs (a run of every panel adds about 70). Called by the page once.
 */
export function keepResourceTimings () {
  performance.setResourceTimingBufferSize(5000)
}

/**
 * Runs `count` identical requests at once and measures them.
 * @param {number} count @param {string} url @param {string} label @param {AbortSignal} signal
 */
export async function measureConcurrently (count, url, label, signal) {
  const batch = await Promise.all(Array.from({ length: count }, async (_, index) => await measure(url, `${label} #${index + 1}`, signal)))
  await applyResourceTiming(batch)
  return batch
}

/** The time from the first start to the last end of a batch, in ms. */
export function spanMs (/** @type {Measured[]} */ batch) {
  if (batch.length === 0) return 0
  return Math.max(...batch.map(({ endMs }) => endMs)) - Math.min(...batch.map(({ startMs }) => startMs))
}

/** The most requests of a batch that were at the server at one time (between request start and first byte). */
export function peakConcurrency (/** @type {Measured[]} */ batch) {
  const events = batch.flatMap(({ requestStartMs, responseStartMs }) => [[requestStartMs, 1], [responseStartMs, -1]])
  events.sort((a, b) => (a[0] ?? 0) - (b[0] ?? 0) || (a[1] ?? 0) - (b[1] ?? 0))
  let current = 0
  let peak = 0
  for (const [, delta] of events) { current += delta ?? 0; peak = Math.max(peak, current) }
  return peak
}

/** The median of some numbers (0 for none). */
export function median (/** @type {number[]} */ values) {
  if (values.length === 0) return 0
  const sorted = [...values].sort((a, b) => a - b)
  const middle = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1 ? sorted[middle] ?? 0 : ((sorted[middle - 1] ?? 0) + (sorted[middle] ?? 0)) / 2
}

/** A duration as it reads: `850 ms`, `2.03 s`. */
export function formatMs (/** @type {number} */ ms) {
  if (ms < 10) return `${ms.toFixed(1)} ms`
  if (ms < 1000) return `${ms.toFixed(0)} ms`
  return `${(ms / 1000).toFixed(2)} s`
}
