// @ts-check
// /ui/datasets: the data sets, newest first (an importing one shows its rows so far), and
// the upload form: a file (dropped or chosen) or a URL, sent as any client sends it (a
// multipart form to POST /datasets, or {"url"}), then the import followed to its end.
import { html, render } from 'lit-html'
import { apiKey, ApiError, followDataset, onKeyChange, queryString, request } from './api.js'
import { count, errorBox, isAbort, size, when } from './ui.js'

/** @typedef {import('./types.js').Dataset} Dataset */

const PAGE_SIZE = 50
const REFRESH_MS = 2_000

/**
 * Where an upload is: sending its bytes (with their share sent), importing (rows so far), done,
 * or failed with the API's words.
 * @typedef {{ phase: 'idle' } | { phase: 'sending', sent: number, total: number } | { phase: 'importing', id: number, rows: number } | { phase: 'done', dataset: Dataset } | { phase: 'failed', error: unknown }} Upload
 */

/** @type {import('./ui.js').Page} */
export async function datasetsPage (root, { signal }) {
  /** @type {Dataset[]} */
  let datasets = []
  /** @type {string | null} */
  let nextCursor = null
  /** @type {unknown} */
  let listError
  /** @type {Upload} */
  let upload = { phase: 'idle' }
  /** @type {File | null} */
  let file = null
  let dragging = false
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  let refresh

  const draw = () => { if (!signal.aborted) render(template(), root) }
  signal.addEventListener('abort', onKeyChange(draw), { once: true })
  signal.addEventListener('abort', () => { clearTimeout(refresh) }, { once: true })

  /**
   * Reads the first page (`cursor` null: again, as many data sets as are shown, up to 100) or the next
   * one. While a data set shown is importing, the rows shown are read again every REFRESH_MS: one
   * request for the whole list, where an event stream per import would take one of the six
   * connections a browser opens to a host for each.
   * @param {string | null} cursor
   */
  async function load (cursor) {
    clearTimeout(refresh)
    const limit = cursor === null ? Math.min(100, Math.max(PAGE_SIZE, datasets.length)) : PAGE_SIZE
    try {
      const { body } = /** @type {{ body: { datasets: Dataset[], next_cursor: string | null } }} */ (await request(`/datasets${queryString([['limit', String(limit)], ...(cursor === null ? [] : /** @type {Array<[string, string]>} */ ([['cursor', cursor]]))])}`, { signal }))
      datasets = cursor === null ? body.datasets : [...datasets, ...body.datasets]
      nextCursor = body.next_cursor
      listError = undefined
    } catch (error) {
      if (isAbort(error)) return
      listError = error
    }
    if (datasets.some((dataset) => dataset.status === 'importing')) refresh = setTimeout(() => { void load(null) }, REFRESH_MS)
    draw()
  }

  /** Follows the upload's import to its end, through the data set's events. @param {number} id */
  function follow (id) {
    const controller = new AbortController()
    signal.addEventListener('abort', () => { controller.abort() }, { once: true })
    followDataset(id, (state) => {
      if (state === undefined) {
        upload = { phase: 'failed', error: new Error('The data set was deleted during its import.') }
        controller.abort()
      } else if (state.dataset.status === 'importing') {
        upload = { phase: 'importing', id, rows: state.dataset.rows }
      } else {
        controller.abort()
        void finish(id)
      }
      draw()
    }, controller.signal)
  }

  /** The import of `id` ended: its result or its error. @param {number} id */
  async function finish (id) {
    try {
      const { body } = /** @type {{ body: import('./types.js').DatasetDetail }} */ (await request(`/datasets/${id}`, { signal }))
      upload = body.dataset.status === 'failed'
        ? { phase: 'failed', error: new Error(`The import failed: ${body.dataset.error?.detail ?? 'no reason given'}`) }
        : { phase: 'done', dataset: body.dataset }
      file = null
      const form = root.querySelector('form.upload')
      if (form instanceof HTMLFormElement) form.reset()
    } catch (error) {
      upload = { phase: 'failed', error }
    }
    await load(null)
  }

  /** @param {SubmitEvent} event */
  async function submit (event) {
    event.preventDefault()
    const form = /** @type {HTMLFormElement} */ (event.target)
    const data = new FormData(form)
    const text = (/** @type {string} */ field) => { const value = data.get(field); return typeof value === 'string' ? value.trim() : '' }
    const name = text('name')
    const description = text('description')
    const url = text('url')
    if (file === null && url === '') { upload = { phase: 'failed', error: new Error('Choose a file or give a URL.') }; draw(); return }
    try {
      /** @type {{ status: number, body: { dataset: Dataset } }} */
      let answer
      if (file !== null) {
        upload = { phase: 'sending', sent: 0, total: file.size }
        draw()
        const form = new FormData()
        if (name !== '') form.append('name', name)
        if (description !== '') form.append('description', description)
        form.append('file', file, file.name)
        answer = await send(form, (sent) => { upload = { phase: 'sending', sent, total: file?.size ?? sent }; draw() }, signal)
      } else {
        upload = { phase: 'sending', sent: 0, total: 0 }
        draw()
        const { body, response } = /** @type {{ body: { dataset: Dataset }, response: Response }} */ (await request('/datasets', {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ url, ...(name === '' ? {} : { name }), ...(description === '' ? {} : { description }) }),
          signal,
        }))
        answer = { status: response.status, body }
      }
      const { dataset } = answer.body
      if (answer.status === 202 || dataset.status === 'importing') {
        upload = { phase: 'importing', id: dataset.id, rows: dataset.rows }
        follow(dataset.id)
        await load(null)
      } else {
        upload = { phase: 'done', dataset }
        file = null
        form.reset()
        await load(null)
      }
    } catch (error) {
      if (isAbort(error)) return
      upload = { phase: 'failed', error }
    }
    draw()
  }

  /** @param {FileList | null | undefined} files */
  const choose = (files) => { file = files?.[0] ?? null; upload = { phase: 'idle' }; draw() }

  const uploadStatus = () => {
    switch (upload.phase) {
      case 'idle': return ''
      case 'sending': return upload.total === 0
        ? html`<p role="status">Sending…</p>`
        : html`<p role="status"><label for="sent">Sending ${size(upload.sent)} of ${size(upload.total)}</label><br><progress id="sent" max=${upload.total} value=${upload.sent}></progress></p>`
      case 'importing': return html`<p role="status">Importing: ${count(upload.rows)} rows so far… <a href=${`/ui/datasets/${upload.id}`}>open it</a></p>`
      case 'done': return html`<p class="notice" role="status">Imported <a href=${`/ui/datasets/${upload.dataset.id}`}>${upload.dataset.name}</a>: ${count(upload.dataset.rows)} rows.</p>`
      case 'failed': return errorBox(upload.error)
    }
  }

  const template = () => html`
    <h1>Data sets</h1>
    <section aria-labelledby="upload-title">
      <h2 id="upload-title">Upload</h2>
      ${apiKey() === null ? html`<p class="notice">Uploads need an API key (<code>npx data-api keys create --name me</code>): enter it with <strong>Enter API key</strong> at the top; it is kept for this tab only.</p>` : ''}
      <form class="upload" @submit=${submit} novalidate>
        <div class=${`drop${dragging ? ' over' : ''}`}
          @dragover=${(/** @type {DragEvent} */ event) => { event.preventDefault(); if (!dragging) { dragging = true; draw() } }}
          @dragleave=${() => { dragging = false; draw() }}
          @drop=${(/** @type {DragEvent} */ event) => { event.preventDefault(); dragging = false; choose(event.dataTransfer?.files) }}>
          <div class="field">
            <label for="file">File: CSV, TSV, JSON, NDJSON or Excel (.xlsx), gzip-compressed or not</label>
            <input id="file" name="file" type="file" accept=".csv,.tsv,.txt,.json,.ndjson,.jsonl,.xlsx,.gz,text/csv,application/json" @change=${(/** @type {Event} */ event) => { choose(/** @type {HTMLInputElement} */ (event.target).files) }}>
          </div>
          <p class="muted">${file === null ? 'or drop a file here' : `${file.name}, ${size(file.size)}`}</p>
        </div>
        <div class="field">
          <label for="url">or a URL to import from</label>
          <input id="url" name="url" type="url" placeholder="https://example.org/data.csv" ?disabled=${file !== null}>
        </div>
        <div class="field"><label for="name">Name</label><input id="name" name="name" maxlength="200" placeholder="the file's name"></div>
        <div class="field"><label for="description">Description</label><input id="description" name="description" maxlength="2000"></div>
        <button class="primary" type="submit" ?disabled=${apiKey() === null || upload.phase === 'sending' || upload.phase === 'importing'}>Upload</button>
      </form>
      ${uploadStatus()}
    </section>
    <section aria-labelledby="list-title">
      <h2 id="list-title">All data sets</h2>
      ${listError === undefined ? '' : errorBox(listError)}
      <div class="table-wrap">
        <table>
          <thead><tr><th scope="col">Name</th><th scope="col" class="num">Rows</th><th scope="col">Status</th><th scope="col">Created</th></tr></thead>
          <tbody>
            ${datasets.length === 0 ? html`<tr><td colspan="4" class="muted">${listError === undefined ? 'No data sets yet.' : ''}</td></tr>` : ''}
            ${datasets.map((dataset) => html`<tr>
              <td class="long"><a href=${`/ui/datasets/${dataset.id}`}>${dataset.name}</a>${dataset.description === null ? '' : html`<br><span class="muted">${dataset.description}</span>`}</td>
              <td class="num">${count(dataset.rows)}</td>
              <td><span class=${`badge ${dataset.status}`}>${dataset.status}</span>${dataset.status === 'importing' ? html` <span class="muted">${count(dataset.rows)} rows so far</span>` : ''}${dataset.error === null ? '' : html` <span class="muted">${dataset.error.detail}</span>`}</td>
              <td>${when(dataset.created_at)}</td>
            </tr>`)}
          </tbody>
        </table>
      </div>
      ${nextCursor === null ? '' : html`<p><button type="button" @click=${() => { void load(nextCursor) }}>More data sets</button></p>`}
    </section>`

  draw()
  await load(null)
}

/**
 * POSTs a form with XMLHttpRequest, the one browser API that reports an upload's progress.
 * @param {FormData} form
 * @param {(sent: number) => void} onProgress
 * @param {AbortSignal} signal
 * @returns {Promise<{ status: number, body: { dataset: Dataset } }>}
 */
function send (form, onProgress, signal) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest()
    xhr.open('POST', '/datasets')
    xhr.setRequestHeader('accept', 'application/json, application/problem+json')
    const key = apiKey()
    if (key !== null) xhr.setRequestHeader('authorization', `Bearer ${key}`)
    xhr.responseType = 'json'
    xhr.upload.addEventListener('progress', (event) => { onProgress(event.loaded) })
    xhr.addEventListener('load', () => {
      /** @type {unknown} */
      const body = xhr.response
      if (xhr.status >= 200 && xhr.status < 300) resolve({ status: xhr.status, body: /** @type {{ dataset: Dataset }} */ (body) })
      else reject(new ApiError(xhr.status, typeof body === 'object' && body !== null ? /** @type {import('./api.js').Problem} */ (body) : { title: `HTTP ${xhr.status}` }))
    })
    xhr.addEventListener('error', () => { reject(new Error('The upload did not reach the service.')) })
    xhr.addEventListener('abort', () => { reject(new DOMException('aborted', 'AbortError')) })
    signal.addEventListener('abort', () => { xhr.abort() }, { once: true })
    xhr.send(form)
  })
}

