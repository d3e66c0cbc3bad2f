// @ts-check
// /ui/datasets/{id}: one data set. The table of a page of rows (click a header to sort), filters
// typed by column, facets beside it (a value clicked becomes a filter), the total, keyset pages
// forward and back, each column's statistics with a histogram, exports and "copy as curl" of the
// view on screen, and delete. The view is the API's own query: the page's URL carries the same
// parameters `GET /datasets/{id}/rows` takes, so a view can be bookmarked, and what the table
// shows is exactly what that request answers. Only one page of rows is ever loaded: it works the
// same on ten million rows.
import { html, render, svg } from 'lit-html'
import { apiKey, asCurl, followDataset, onKeyChange, queryString, request } from './api.js'
import { navigate } from './app.js'
import { count, errorBox, isAbort, size, when } from './ui.js'

/** @typedef {import('./types.js').DatasetDetail} DatasetDetail */
/** @typedef {import('./types.js').Field} Field */
/** @typedef {import('./types.js').RowsPage} RowsPage */
/** @typedef {import('./types.js').ColumnType} ColumnType */
/** @typedef {{ column: string, op: string, value: string }} Filter */

const PAGE_SIZE = 50
const FACET_SIZE = 10

/** The operators of each column type, with their words (GET /datasets/{id}/rows). */
const OPERATORS = /** @type {Record<string, string>} */ ({
  eq: '=', ne: '≠', gt: '>', gte: '≥', lt: '<', lte: '≤', contains: 'contains', startswith: 'starts with', in: 'is one of (a,b,…)', search: 'has the words', isnull: 'is missing',
})
/** @type {Record<ColumnType, string[]>} */
const OPERATORS_OF = {
  text: ['contains', 'eq', 'ne', 'startswith', 'search', 'in', 'gt', 'gte', 'lt', 'lte', 'isnull'],
  integer: ['eq', 'ne', 'gt', 'gte', 'lt', 'lte', 'in', 'isnull'],
  numeric: ['eq', 'ne', 'gt', 'gte', 'lt', 'lte', 'in', 'isnull'],
  date: ['eq', 'ne', 'gt', 'gte', 'lt', 'lte', 'isnull'],
  timestamp: ['gte', 'lt', 'gt', 'lte', 'eq', 'ne', 'isnull'],
  boolean: ['eq', 'ne', 'isnull'],
}
const NUMERIC = new Set(['integer', 'numeric'])

/**
 * The view in the page's URL: filters (`column__op=value`, `column=value`), `_q`, `_sort`,
 * `_facet`, `_cursor`; the rest is the page's own.
 * @param {URLSearchParams} search
 */
function viewOf (search) {
  /** @type {Filter[]} */
  const filters = []
  for (const [name, value] of search) {
    if (name.startsWith('_')) continue
    const split = name.lastIndexOf('__')
    filters.push(split === -1 ? { column: name, op: 'eq', value } : { column: name.slice(0, split), op: name.slice(split + 2), value })
  }
  return { filters, q: search.get('_q'), sort: search.get('_sort'), facets: search.getAll('_facet'), cursor: search.get('_cursor') }
}

/** @typedef {ReturnType<typeof viewOf>} View */

/** @param {View} view @returns {Array<[string, string]>} the view's filters and sort, as the API takes them */
function viewPairs (view) {
  /** @type {Array<[string, string]>} */
  const pairs = view.filters.map((filter) => [filter.op === 'eq' ? filter.column : `${filter.column}__${filter.op}`, filter.value])
  if (view.q !== null) pairs.push(['_q', view.q])
  if (view.sort !== null) pairs.push(['_sort', view.sort])
  return pairs
}

/** @type {import('./ui.js').Page} */
export async function datasetPage (root, { params, signal }) {
  const id = Number(params[0])
  /** @type {DatasetDetail | undefined} */
  let detail
  /** @type {unknown} */
  let detailError
  /** @type {RowsPage | undefined} */
  let page
  /** @type {unknown} */
  let rowsError
  let loading = false
  /** The cursors of the pages before this one, for "Previous" (keyset pages go forward only). @type {Array<string | null>} */
  let previous = []
  let view = viewOf(new URLSearchParams(location.search))
  let filterColumn = ''
  let copied = ''
  /** @type {unknown} */
  let deleteError
  let rowsRequest = new AbortController()
  signal.addEventListener('abort', () => { rowsRequest.abort() }, { once: true })

  const draw = () => { if (!signal.aborted) render(template(), root) }
  signal.addEventListener('abort', onKeyChange(draw), { once: true })

  const rowsUrl = () => `/datasets/${id}/rows${queryString([
    ...viewPairs(view),
    ['_limit', String(PAGE_SIZE)],
    ...view.facets.flatMap((facet) => /** @type {Array<[string, string]>} */ ([['_facet', facet]])),
    ...(view.facets.length === 0 ? [] : /** @type {Array<[string, string]>} */ ([['_facet_size', String(FACET_SIZE)]])),
    ...(view.cursor === null ? [] : /** @type {Array<[string, string]>} */ ([['_cursor', view.cursor]])),
  ])}`
  const exportUrl = (/** @type {string} */ format) => `/datasets/${id}/export${queryString([['_format', format], ...viewPairs(view)])}`

  async function loadDetail () {
    try {
      detail = /** @type {{ body: DatasetDetail }} */ (await request(`/datasets/${id}`, { signal })).body
      detailError = undefined
      document.title = `${detail.dataset.name} · data-api`
    } catch (error) {
      if (!isAbort(error)) detailError = error
    }
  }

  async function loadRows () {
    rowsRequest.abort()
    const controller = new AbortController()
    rowsRequest = controller
    loading = true
    draw()
    try {
      page = /** @type {{ body: RowsPage }} */ (await request(rowsUrl(), { signal: controller.signal })).body
      rowsError = undefined
    } catch (error) {
      if (isAbort(error)) return
      rowsError = error
    }
    loading = false
    draw()
  }

  /**
   * A new view: kept in the page's URL (replaceState: paging and refining a view is not a new
   * page in the history), then its first page, or the page of `cursor`.
   * @param {Partial<View>} change
   * @param {{ keepPages?: boolean }} [options]
   */
  function setView (change, options = {}) {
    view = { ...view, cursor: null, ...change }
    // Best matches first means nothing without a search.
    if (view.q === null && view.sort === '_rank') view.sort = null
    if (options.keepPages !== true) previous = []
    history.replaceState(null, '', `${location.pathname}${queryString([
      ...viewPairs(view),
      ...view.facets.map((facet) => /** @type {[string, string]} */ (['_facet', facet])),
      ...(view.cursor === null ? [] : /** @type {Array<[string, string]>} */ ([['_cursor', view.cursor]])),
    ])}`)
    void loadRows()
  }

  /** @param {Filter} filter */
  const addFilter = (filter) => {
    if (view.filters.some((other) => other.column === filter.column && other.op === filter.op && other.value === filter.value)) return
    setView({ filters: [...view.filters, filter] })
  }

  /** Header click: ascending, then descending, then the row order. @param {string} column */
  const toggleSort = (column) => {
    setView({ sort: view.sort === column ? `-${column}` : view.sort === `-${column}` ? null : column })
  }

  /** @param {SubmitEvent} event */
  const submitFilter = (event) => {
    event.preventDefault()
    const data = new FormData(/** @type {HTMLFormElement} */ (event.target))
    const text = (/** @type {string} */ field) => { const value = data.get(field); return typeof value === 'string' ? value.trim() : '' }
    const column = text('column')
    const op = text('op')
    let value = text('value')
    const field = detail?.schema.fields.find((candidate) => candidate.name === column)
    if (field === undefined || op === '') return
    // <input type=datetime-local> has no zone: the API reads a timestamp without one as UTC.
    if (field.type === 'timestamp' && /^\d{4}-\d\d-\d\dT\d\d:\d\d(:\d\d)?$/.test(value)) value = `${value}${value.length === 16 ? ':00' : ''}Z`
    if (value === '' && op !== 'isnull') return
    addFilter({ column, op, value: op === 'isnull' ? (value === '' ? 'true' : value) : value })
  }

  /** A facet's value clicked: the filter selecting its rows. @param {string} column @param {import('./types.js').Facet} facet @param {number} index */
  const facetFilters = (column, facet, index) => {
    if ('timed_out' in facet) return []
    const entry = /** @type {import('./types.js').FacetValue} */ (facet.values[index])
    const value = String(entry.value)
    if (facet.by === 'value') return [{ column, op: 'eq', value }]
    if (facet.by === 'bins') {
      const last = index === facet.values.length - 1
      return [{ column, op: 'gte', value }, { column, op: last ? 'lte' : 'lt', value: String(entry.to) }]
    }
    return [{ column, op: 'gte', value }, { column, op: 'lt', value: nextBucket(value, facet.by) }]
  }

  async function remove () {
    const dialog = /** @type {HTMLDialogElement | null} */ (root.querySelector('#delete-dialog'))
    try {
      await request(`/datasets/${id}`, { method: 'DELETE', signal })
      dialog?.close()
      navigate('/ui/datasets')
    } catch (error) {
      if (isAbort(error)) return
      deleteError = error
      draw()
    }
  }

  /** @param {string} text @param {string} what */
  async function copy (text, what) {
    try {
      await navigator.clipboard.writeText(text)
      copied = `${what} copied.`
    } catch {
      copied = 'The browser refused the clipboard: select the command below and copy it.'
    }
    draw()
  }

  const template = () => {
    if (detailError !== undefined) return html`<h1>Data set ${id}</h1>${errorBox(detailError)}<p><a href="/ui/datasets">All data sets</a></p>`
    if (detail === undefined) return html`<h1>Data set ${id}</h1><p role="status">Loading…</p>`
    const { dataset, schema, stats } = detail
    const fields = schema.fields
    return html`
      <p><a href="/ui/datasets">← Data sets</a></p>
      <h1>${dataset.name}</h1>
      ${dataset.description === null ? '' : html`<p class="lead">${dataset.description}</p>`}
      <p class="muted">
        <span class=${`badge ${dataset.status}`}>${dataset.status}</span>
        ${count(dataset.rows)} rows · ${fields.length} columns · ${size(dataset.bytes)}${dataset.format === null ? '' : ` ${dataset.format}`} · created ${when(dataset.created_at)} · updated ${when(dataset.updated_at)}${dataset.key === null ? '' : html` · key <code>${dataset.key.join(', ')}</code>`}
      </p>
      ${dataset.status === 'importing' ? html`<p class="notice" role="status">Importing: ${count(dataset.rows)} rows so far. This page shows them once the import is done.</p>` : ''}
      ${dataset.status === 'failed' ? html`<p class="error" role="alert">The import failed: ${dataset.error?.detail ?? 'no reason given'}</p>` : ''}
      ${dataset.status === 'ready' ? rowsSection(fields) : ''}
      ${dataset.status === 'ready' ? statsSection(fields, stats) : ''}
      ${deleteSection(dataset)}`
  }

  /** @param {Field[]} fields */
  const rowsSection = (fields) => {
    const field = fields.find((candidate) => candidate.name === filterColumn) ?? fields[0]
    const curl = asCurl(rowsUrl())
    return html`
      <div class="layout">
        <section aria-labelledby="rows-title">
          <h2 id="rows-title">Rows</h2>
          ${fields.some((candidate) => candidate.type === 'text') ? html`<form class="filter" role="search" aria-label="Search the text" @submit=${(/** @type {SubmitEvent} */ event) => {
            event.preventDefault()
            const value = new FormData(/** @type {HTMLFormElement} */ (event.target)).get('q')
            const q = typeof value === 'string' && value.trim() !== '' ? value.trim() : null
            setView({ q })
          }}>
            <label for="search-q">Search</label>
            <input id="search-q" name="q" type="search" .value=${view.q ?? ''} placeholder='words, "a phrase", or, -word'>
            <button type="submit">Search</button>
            ${view.q === null ? '' : html`<button type="button" ?disabled=${view.sort === '_rank'} @click=${() => { setView({ sort: '_rank' }) }}>Best matches first</button>`}
          </form>` : ''}
          <form class="filter" aria-label="Add a filter" @submit=${submitFilter}>
            <label for="filter-column">Filter</label>
            <select id="filter-column" name="column" @change=${(/** @type {Event} */ event) => { filterColumn = /** @type {HTMLSelectElement} */ (event.target).value; draw() }}>
              ${fields.map((candidate) => html`<option value=${candidate.name} ?selected=${candidate === field}>${candidate.name}</option>`)}
            </select>
            <label class="visually-hidden" for="filter-op">Operator</label>
            <select id="filter-op" name="op" @change=${draw}>
              ${(field === undefined ? [] : OPERATORS_OF[field.type]).map((op) => html`<option value=${op}>${OPERATORS[op]}</option>`)}
            </select>
            <label class="visually-hidden" for="filter-value">Value</label>
            ${valueInput(field)}
            <button type="submit">Add filter</button>
          </form>
          ${view.filters.length === 0 ? '' : html`<ul class="chips" aria-label="Filters">
            ${view.filters.map((filter) => html`<li><span>${filter.column} ${OPERATORS[filter.op] ?? filter.op} ${filter.op === 'isnull' ? (filter.value === 'true' ? '' : '(no: has a value)') : filter.value}</span>
              <button type="button" aria-label=${`Remove the filter ${filter.column} ${OPERATORS[filter.op] ?? filter.op} ${filter.value}`} @click=${() => { setView({ filters: view.filters.filter((other) => other !== filter) }) }}>×</button></li>`)}
            <li><button type="button" @click=${() => { setView({ filters: [] }) }}>Clear filters</button></li>
          </ul>`}
          ${rowsError === undefined ? '' : errorBox(rowsError)}
          <p class="muted" role="status" aria-live="polite">${loading ? 'Loading…' : page === undefined ? '' : totalText(page)}</p>
          ${page === undefined ? '' : rowsTable(fields, page)}
          <div class="pager">
            <button type="button" ?disabled=${previous.length === 0 || loading} @click=${() => { const cursor = previous.pop() ?? null; setView({ cursor }, { keepPages: true }) }}>← Previous</button>
            <button type="button" ?disabled=${(page?.next_cursor ?? null) === null || loading} @click=${() => { previous.push(view.cursor); setView({ cursor: page?.next_cursor ?? null }, { keepPages: true }) }}>Next →</button>
            <span class="muted">page ${previous.length + 1}</span>
          </div>
          <div class="toolbar">
            <a class="button" href=${exportUrl('csv')} download>Export CSV</a>
            <a class="button" href=${exportUrl('ndjson')} download>Export NDJSON</a>
            <button type="button" @click=${() => { void copy(curl, 'The curl command') }}>Copy as curl</button>
            <span role="status">${copied}</span>
          </div>
          <details><summary>This view as a request</summary><pre class="curl"><code>${curl}</code></pre></details>
        </section>
        <aside class="side" aria-labelledby="facets-title">
          <h2 id="facets-title">Facets</h2>
          <form class="row" aria-label="Add a facet" @submit=${(/** @type {SubmitEvent} */ event) => {
            event.preventDefault()
            const value = new FormData(/** @type {HTMLFormElement} */ (event.target)).get('facet')
            if (typeof value === 'string' && value !== '' && !view.facets.includes(value)) setView({ facets: [...view.facets, value], cursor: view.cursor }, { keepPages: true })
          }}>
            <label class="visually-hidden" for="facet-column">Column to facet</label>
            <select id="facet-column" name="facet">
              ${fields.filter((candidate) => !view.facets.includes(candidate.name)).map((candidate) => html`<option value=${candidate.name}>${candidate.name}</option>`)}
            </select>
            <button type="submit">Add facet</button>
          </form>
          ${view.facets.length === 0 ? html`<p class="muted">The most common values of a column under the filters, with their counts.</p>` : ''}
          ${view.facets.map((column) => facetPanel(column, page?.facets?.[column]))}
        </aside>
      </div>`
  }

  /** @param {Field | undefined} field */
  const valueInput = (field) => {
    const op = /** @type {HTMLSelectElement | null} */ (root.querySelector('#filter-op'))?.value
    if (field === undefined) return ''
    if (field.type === 'boolean' || op === 'isnull') {
      return html`<select id="filter-value" name="value"><option value="true">true</option><option value="false">false</option></select>`
    }
    const type = field.type === 'date' ? 'date' : field.type === 'timestamp' ? 'datetime-local' : 'text'
    const mode = NUMERIC.has(field.type) ? (field.type === 'integer' ? 'numeric' : 'decimal') : 'text'
    return html`<input id="filter-value" name="value" type=${type} inputmode=${mode} step=${field.type === 'timestamp' ? '1' : ''} placeholder=${field.type}>`
  }

  /** @param {RowsPage} rows */
  const totalText = (rows) => {
    const from = previous.length * PAGE_SIZE
    const shown = rows.rows.length === 0 ? 'No rows' : `Rows ${count(from + 1)}–${count(from + rows.rows.length)}`
    if (rows.total === undefined) return shown
    return `${shown} of ${rows.total_is_estimate === true ? '≈ ' : ''}${count(rows.total)}${rows.total_is_estimate === true ? ' (an estimate)' : ''}`
  }

  /** @param {Field[]} fields @param {RowsPage} rows */
  const rowsTable = (fields, rows) => html`
    <div class="table-wrap">
      <table>
        <caption class="visually-hidden">Rows of the data set, ${view.sort === null ? 'in row order' : `sorted by ${view.sort.replace(/^-/, '')}${view.sort.startsWith('-') ? ', descending' : ''}`}</caption>
        <thead><tr>${fields.map((field) => {
          const sorted = view.sort === field.name ? 'ascending' : view.sort === `-${field.name}` ? 'descending' : 'none'
          return html`<th scope="col" class=${NUMERIC.has(field.type) ? 'num' : ''} aria-sort=${sorted}>
            <button type="button" class="sort" @click=${() => { toggleSort(field.name) }}>${field.name}${sorted === 'ascending' ? ' ▲' : sorted === 'descending' ? ' ▼' : ''}</button>
            <span class="type">${field.type}</span></th>`
        })}</tr></thead>
        <tbody>${rows.rows.map((row) => html`<tr>${fields.map((field) => cell(field, row[field.name]))}</tr>`)}</tbody>
      </table>
    </div>`

  /** @param {string} column @param {import('./types.js').Facet | undefined} facet */
  const facetPanel = (column, facet) => html`
    <section class="facet" aria-label=${`Facet ${column}`}>
      <h3>${column} <button type="button" aria-label=${`Remove the facet ${column}`} @click=${() => { setView({ facets: view.facets.filter((other) => other !== column), cursor: view.cursor }, { keepPages: true }) }}>×</button></h3>
      ${facet === undefined
        ? html`<p class="muted">Loading…</p>`
        : 'timed_out' in facet
          ? html`<p class="muted">Took too long under these filters (FACET_TIMEOUT_MS).</p>`
          : html`<ul>${facet.values.map((entry, index) => html`<li><button type="button" @click=${() => { setView({ filters: [...view.filters, ...facetFilters(column, facet, index)] }) }}>
              <span>${facetLabel(facet.by, entry)}</span><span>${count(entry.count)}</span></button></li>`)}</ul>
            ${facet.other > 0 ? html`<p class="muted">other values: ${count(facet.other)}</p>` : ''}
            ${facet.nulls > 0 ? html`<p class="muted">missing: ${count(facet.nulls)}</p>` : ''}`}
    </section>`

  /** @param {import('./types.js').Dataset} dataset */
  const deleteSection = (dataset) => html`
    <section aria-labelledby="danger-title">
      <h2 id="danger-title">Delete</h2>
      <p><button type="button" class="danger" ?disabled=${apiKey() === null} @click=${() => { deleteError = undefined; draw(); /** @type {HTMLDialogElement | null} */ (root.querySelector('#delete-dialog'))?.showModal() }}>Delete this data set…</button>
        ${apiKey() === null ? html`<span class="muted">needs the API key that created it (or an admin key)</span>` : ''}</p>
      <dialog id="delete-dialog" aria-labelledby="delete-title">
        <h2 id="delete-title">Delete ${dataset.name}?</h2>
        <p>Its ${count(dataset.rows)} rows and its history are removed at once, for every client. This cannot be undone.</p>
        ${deleteError === undefined ? '' : errorBox(deleteError)}
        <div class="row">
          <button type="button" class="danger" @click=${() => { void remove() }}>Delete</button>
          <button type="button" autofocus @click=${() => { /** @type {HTMLDialogElement | null} */ (root.querySelector('#delete-dialog'))?.close() }}>Keep it</button>
        </div>
      </dialog>
    </section>`

  draw()
  await loadDetail()
  draw()
  if (detail?.dataset.status === 'importing') {
    // Followed to its end; then the rows.
    const following = new AbortController()
    signal.addEventListener('abort', () => { following.abort() }, { once: true })
    followDataset(id, (state) => {
      if (state === undefined) { following.abort(); navigate('/ui/datasets'); return }
      if (detail !== undefined) detail = { ...detail, dataset: { ...detail.dataset, ...state.dataset } }
      if (state.dataset.status !== 'importing') {
        following.abort()
        void loadDetail().then(async () => { draw(); if (detail?.dataset.status === 'ready') await loadRows() })
      }
      draw()
    }, following.signal)
  } else if (detail?.dataset.status === 'ready') {
    await loadRows()
  }
}

/** @param {Field} field @param {unknown} value */
function cell (field, value) {
  if (value === null || value === undefined) return html`<td class=${NUMERIC.has(field.type) ? 'null num' : 'null'}>—</td>`
  // Values are JSON scalars (/rows sends numbers beyond 2^53 and numerics as text, dates as ISO text).
  const text = typeof value === 'string' ? value : JSON.stringify(value)
  return html`<td class=${NUMERIC.has(field.type) ? 'num' : field.type === 'text' && text.length > 40 ? 'long' : ''}>${text}</td>`
}

/** @param {string} by @param {import('./types.js').FacetValue} entry */
function facetLabel (by, entry) {
  if (by === 'bins') return `${String(entry.value)} – ${String(entry.to)}`
  if (by === 'month') return String(entry.value).slice(0, 7)
  if (by === 'year') return String(entry.value).slice(0, 4)
  if (by === 'day') return String(entry.value).slice(0, 10)
  return String(entry.value)
}

/**
 * The first instant after a day, month or year bucket that starts at `start` (a date, or a
 * timestamp in UTC), in the same format.
 * @param {string} start @param {string} by
 */
function nextBucket (start, by) {
  const date = new Date(start.length === 10 ? `${start}T00:00:00Z` : start)
  if (by === 'day') date.setUTCDate(date.getUTCDate() + 1)
  else if (by === 'month') date.setUTCMonth(date.getUTCMonth() + 1)
  else date.setUTCFullYear(date.getUTCFullYear() + 1)
  return start.length === 10 ? date.toISOString().slice(0, 10) : date.toISOString()
}

/**
 * Each column's statistics (computed by a job after each change: empty until it has run), with
 * its histogram as bars.
 * @param {Field[]} fields @param {DatasetDetail['stats']} stats
 */
function statsSection (fields, stats) {
  const entries = fields.map((field) => /** @type {const} */ ([field, stats.columns[field.name]]))
  return html`
    <section aria-labelledby="stats-title">
      <h2 id="stats-title">Columns</h2>
      ${(stats.computed_at ?? null) === null ? html`<p class="muted">The statistics are being computed.</p>` : html`<p class="muted">Computed ${when(/** @type {string} */ (stats.computed_at))}.</p>`}
      <div class="stats">${entries.map(([field, column]) => html`
        <article class="stat" aria-label=${`Column ${field.name}`}>
          <h3>${field.name} <span class="muted">${field.type}</span></h3>
          ${column === undefined ? html`<p class="muted">—</p>` : html`
            <dl>
              <dt>values</dt><dd>${count(column.count)}</dd>
              <dt>missing</dt><dd>${count(column.nulls)}</dd>
              <dt>distinct</dt><dd>${column.distinct_estimated ? '≈ ' : ''}${count(column.distinct)}</dd>
              ${column.min === undefined || column.min === null ? '' : html`<dt>min</dt><dd>${String(column.min)}</dd>`}
              ${column.max === undefined || column.max === null ? '' : html`<dt>max</dt><dd>${String(column.max)}</dd>`}
              ${column.mean === undefined || column.mean === null ? '' : html`<dt>mean</dt><dd>${column.mean.toPrecision(4)}</dd>`}
              ${column.true_count === undefined ? '' : html`<dt>true / false</dt><dd>${count(column.true_count)} / ${count(column.false_count)}</dd>`}
              ${column.top === undefined || column.top.length === 0 ? '' : html`<dt>most common</dt><dd>${column.top.slice(0, 3).map((top) => `${top.value} (${count(top.count)})`).join(', ')}</dd>`}
            </dl>
            ${column.histogram === undefined || column.histogram.bins.length === 0 ? '' : histogram(field.name, column.histogram.bins)}`}
        </article>`)}
      </div>
    </section>`
}

/** @param {string} name @param {import('./types.js').Bin[]} bins */
function histogram (name, bins) {
  const most = Math.max(1, ...bins.map((bin) => bin.count))
  const width = 100 / bins.length
  return html`<svg class="histogram" viewBox="0 0 100 40" preserveAspectRatio="none" role="img" aria-label=${`Histogram of ${name}: ${bins.length} bins from ${String(bins[0]?.from)} to ${String(bins.at(-1)?.to)}`}>
    ${bins.map((bin, index) => {
      const height = bin.count === 0 ? 0 : Math.max(1, (bin.count / most) * 40)
      return svg`<rect x=${index * width + width * 0.08} y=${40 - height} width=${width * 0.84} height=${height}><title>${String(bin.from)} – ${String(bin.to)}: ${count(bin.count)}</title></rect>`
    })}
  </svg>`
}
