// @ts-check
// `/`: what data-api is, whether it is up (its own /readyz, asked now), and where to go.
import { html, render } from 'lit-html'
import { ApiError, request } from './api.js'
import { problemText } from './ui.js'

/** @typedef {{ status: 'up' | 'down', latency_ms?: number, reason?: string, store?: string }} Check */

/** @type {import('./ui.js').Page} */
export async function homePage (root, { signal }) {
  /** @type {{ database?: Check, catalog?: Check } | undefined} */
  let checks
  /** @type {string | undefined} */
  let unreachable
  const draw = () => { render(template(checks, unreachable), root) }
  draw()
  try {
    checks = (/** @type {{ body: { checks: typeof checks } }} */ (await request('/readyz', { signal }))).body.checks
  } catch (error) {
    // A 503 still says which part is down.
    if (error instanceof ApiError && typeof error.problem.checks === 'object') checks = /** @type {typeof checks} */ (error.problem.checks)
    else unreachable = problemText(error)
  }
  if (!signal.aborted) draw()
}

/** @param {{ database?: Check, catalog?: Check } | undefined} checks @param {string | undefined} unreachable */
function template (checks, unreachable) {
  /** @param {string} name @param {Check | undefined} check */
  const line = (name, check) => html`<li>
    <span class=${`badge ${check?.status ?? 'unknown'}`}>${check?.status ?? '…'}</span>
    ${name}${check?.store === undefined ? '' : html` (${check.store})`}${check?.latency_ms === undefined ? '' : html`, answered in ${check.latency_ms.toFixed(1)} ms`}${check?.reason === undefined ? '' : html`: ${check.reason}`}
  </li>`
  return html`
    <h1>data-api</h1>
    <p class="lead">Publish a data set from a CSV, JSON or Excel file and query it at once: filters, sorts, facets, full-text search and exports over HTTP, on PostgreSQL.
      Around it, every claim of a FastAPI lesson on async/await, built for real and measured.</p>
    <section aria-labelledby="health">
      <h2 id="health">Health</h2>
      ${unreachable === undefined
        ? html`<ul class="checks">${line('Database', checks?.database)}${line('Catalog store', checks?.catalog)}</ul>`
        : html`<p class="error" role="alert">${unreachable}</p>`}
    </section>
    <section aria-labelledby="go">
      <h2 id="go">Go to</h2>
      <ul class="cards">
        <li><a href="/ui/datasets"><strong>Data sets</strong><span>Browse, upload, filter, facet, export</span></a></li>
        <li><a href="/ui/lab"><strong>Lesson lab</strong><span>Run the lesson's claims and watch them as waterfalls</span></a></li>
        <li><a href="/docs"><strong>API reference</strong><span>Every route, with a client to try them</span></a></li>
        <li><a href="/openapi.json"><strong>/openapi.json</strong><span>The OpenAPI 3.1 document</span></a></li>
        <li><a href="/metrics"><strong>/metrics</strong><span>Prometheus metrics</span></a></li>
      </ul>
    </section>`
}
