// @ts-check
// How the pages talk to the API: as any client does, with fetch and the API key as a bearer
// token. The key lives in this tab's sessionStorage only: never in a URL, never in a cookie (the
// server reads no cookie), gone when the tab closes.

const KEY_ITEM = 'data-api.key'
/** @type {Set<() => void>} */
const keyListeners = new Set()

/** @returns {string | null} */
export function apiKey () {
  return sessionStorage.getItem(KEY_ITEM)
}

/** @param {string | null} key */
export function setApiKey (key) {
  if (key === null || key.trim() === '') sessionStorage.removeItem(KEY_ITEM)
  else sessionStorage.setItem(KEY_ITEM, key.trim())
  for (const listener of keyListeners) listener()
}

/** @param {() => void} listener @returns {() => void} the unsubscribe */
export function onKeyChange (listener) {
  keyListeners.add(listener)
  return () => { keyListeners.delete(listener) }
}

/**
 * An answer that is not 2xx: the problem document the API sent (RFC 9457), or one made up for
 * an answer that is not one (a proxy's page, a dropped connection).
 */
/** @typedef {{ type?: string, title?: string, detail?: string, errors?: Array<{ detail: string }>, [key: string]: unknown }} Problem */
export class ApiError extends Error {
  /** @param {number} status @param {Problem} problem */
  constructor (status, problem) {
    super(problem.detail ?? problem.title ?? `HTTP ${status}`)
    this.status = status
    this.problem = problem
  }
}

/**
 * @typedef {object} RequestOptions
 * @property {string} [method]
 * @property {BodyInit | null} [body]
 * @property {Record<string, string>} [headers]
 * @property {AbortSignal} [signal]
 */

/**
 * Sends a request to the API with the key, if one is set; answers the parsed JSON body (undefined
 * for 204), as the caller says it is (`T`: the API's documented answer), and the response, or
 * throws an ApiError.
 * @template [T=unknown]
 * @param {string} url
 * @param {RequestOptions} [options]
 * @returns {Promise<{ body: T, response: Response }>}
 */
export async function request (url, options = {}) {
  /** @type {Record<string, string>} */
  const headers = { accept: 'application/json, application/problem+json', ...options.headers }
  const key = apiKey()
  if (key !== null) headers.authorization = `Bearer ${key}`
  const response = await fetch(url, { method: options.method ?? 'GET', body: options.body, headers, signal: options.signal })
  const type = response.headers.get('content-type') ?? ''
  /** @type {unknown} */
  const body = response.status === 204 ? undefined : /json/.test(type) ? await response.json() : await response.text()
  if (!response.ok) {
    throw new ApiError(response.status, typeof body === 'object' && body !== null ? /** @type {Problem} */ (body) : { title: `HTTP ${response.status}`, detail: String(body).slice(0, 200) })
  }
  return { body: /** @type {T} */ (body), response }
}

/**
 * A query string from pairs (a parameter may come more than once, as filters and facets do).
 * @param {Array<[string, string]>} pairs
 */
export function queryString (pairs) {
  const text = new URLSearchParams(pairs).toString()
  return text === '' ? '' : `?${text}`
}

/**
 * The same request as a curl command a user can paste into a shell (single-quoted, with the key
 * as a variable, never its value).
 * @param {string} url a path and query of this origin
 * @param {{ method?: string, withKey?: boolean }} [options]
 */
export function asCurl (url, options = {}) {
  const quote = (/** @type {string} */ text) => `'${text.replaceAll("'", "'\\''")}'`
  const parts = ['curl']
  if (options.method !== undefined && options.method !== 'GET') parts.push('-X', options.method)
  if (options.withKey === true) parts.push('-H', '"Authorization: Bearer $KEY"')
  parts.push(quote(new URL(url, location.origin).href))
  return parts.join(' ')
}

/**
 * Follows a data set's state (GET /datasets/{id}/events, server-sent events) until `signal`
 * aborts or the data set is deleted; `onState` gets each state, `undefined` once it is gone. An
 * EventSource cannot send the key: where reads need one (REQUIRE_KEY_FOR_READS) the stream is
 * refused, and the state is then read every 2 s with the key instead.
 * @param {number} id
 * @param {(state: import('./types.js').DatasetState | undefined) => void} onState
 * @param {AbortSignal} signal
 */
export function followDataset (id, onState, signal) {
  const source = new EventSource(`/datasets/${id}/events`)
  const stop = () => { source.close() }
  signal.addEventListener('abort', stop, { once: true })
  const handle = (/** @type {MessageEvent<string>} */ event) => {
    /** @type {unknown} */
    const state = JSON.parse(event.data)
    onState(/** @type {import('./types.js').DatasetState} */ (state))
  }
  for (const name of ['state', 'status', 'write', 'progress', 'change']) source.addEventListener(name, handle)
  source.addEventListener('deleted', () => { stop(); onState(undefined) })
  // An EventSource reconnects by itself after a dropped connection; CLOSED means it was refused.
  source.addEventListener('error', () => { if (source.readyState === EventSource.CLOSED && !signal.aborted) void poll() })
  async function poll () {
    while (!signal.aborted) {
      try {
        const { body } = /** @type {{ body: import('./types.js').DatasetDetail }} */ (await request(`/datasets/${id}`, { signal }))
        onState({ dataset: body.dataset, write: body.write ?? null })
      } catch (error) {
        if (error instanceof ApiError && error.status === 404) { onState(undefined); return }
      }
      await new Promise((resolve) => { setTimeout(resolve, 2000) })
    }
  }
}
