// @ts-check
// What the pages share: number and size formats, how an error is shown, and the page contract.
import { html } from 'lit-html'
import { ApiError } from './api.js'

/**
 * A page draws itself into `root` and keeps it up to date until `signal` aborts (the user went to
 * another page): then it stops its timers, streams and requests.
 * @typedef {(root: HTMLElement, context: { params: string[], signal: AbortSignal }) => void | Promise<void>} Page
 */

const integer = new Intl.NumberFormat('en')
/** @param {number | null | undefined} n */
export const count = (n) => n === null || n === undefined ? '—' : integer.format(n)

/** @param {number} bytes */
export function size (bytes) {
  const units = ['B', 'KB', 'MB', 'GB', 'TB']
  let value = bytes
  let unit = 0
  while (value >= 1024 && unit < units.length - 1) { value /= 1024; unit++ }
  return `${unit === 0 ? value : value.toFixed(1)} ${units[unit]}`
}

/** @param {string} iso */
export const when = (iso) => new Date(iso).toLocaleString('en-GB', { dateStyle: 'medium', timeStyle: 'short' })

/**
 * What went wrong, in the API's words: its problem's detail, the fields it names, the line of a
 * file it refused.
 * @param {unknown} error
 */
export function problemText (error) {
  if (error instanceof ApiError) {
    const { problem } = error
    const fields = (problem.errors ?? []).map((issue) => issue.detail).filter((detail) => detail !== problem.detail)
    // An upload's `invalid-data` detail names its line already ("line 7: …").
    return [problem.detail ?? problem.title ?? `HTTP ${error.status}`, ...fields].join(' · ')
  }
  if (error instanceof Error) return error.name === 'TypeError' ? `The service did not answer (${error.message}).` : error.message
  return String(error)
}

/** @param {unknown} error */
export const errorBox = (error) => html`<p class="error" role="alert">${problemText(error)}</p>`

/** @param {unknown} error */
export const isAbort = (error) => error instanceof DOMException && error.name === 'AbortError'
