// @ts-check
// The shell's script: chooses the page for the path, keeps links inside the app without a full
// reload (history.pushState), and draws the API key field of the header.
import { html, render } from 'lit-html'
import { apiKey, onKeyChange, setApiKey } from './api.js'

/** @typedef {import('./ui.js').Page} Page */

/** @type {Array<[RegExp, () => Promise<{ page: Page, title: string }>]>} */
const ROUTES = [
  [/^\/$/, async () => ({ page: (await import('./home.js')).homePage, title: 'data-api' })],
  [/^\/ui\/datasets\/?$/, async () => ({ page: (await import('./datasets.js')).datasetsPage, title: 'Data sets · data-api' })],
  [/^\/ui\/datasets\/(\d+)\/?$/, async () => ({ page: (await import('./dataset.js')).datasetPage, title: 'Data set · data-api' })],
  [/^\/ui\/lab\/?$/, async () => ({ page: (await import('./lab.js')).labPage, title: 'Lesson lab · data-api' })],
]

const main = /** @type {HTMLElement} */ (document.getElementById('main'))
/** @type {AbortController | undefined} */
let current

async function show () {
  current?.abort()
  const controller = new AbortController()
  current = controller
  const path = location.pathname
  for (const link of document.querySelectorAll('header nav a')) {
    const href = link.getAttribute('href') ?? ''
    if (path === href || path.startsWith(`${href}/`)) link.setAttribute('aria-current', 'page')
    else link.removeAttribute('aria-current')
  }
  const route = ROUTES.find(([pattern]) => pattern.test(path))
  if (route === undefined) {
    document.title = 'Not found · data-api'
    render(html`<h1>Not found</h1><p>No page at <code>${path}</code>. <a href="/">Home</a>.</p>`, main)
    return
  }
  const { page, title } = await route[1]()
  if (controller.signal.aborted) return
  document.title = title
  // A fresh element per page: lit-html keeps what it rendered in a container, and one page's
  // parts must not be patched into the next one's.
  const root = document.createElement('div')
  root.className = 'page'
  main.replaceChildren(root)
  await page(root, { params: route[0].exec(path)?.slice(1) ?? [], signal: controller.signal })
}

/** Goes to `url` inside the app (a link, a redirect after an upload or a delete). */
export function navigate (/** @type {string} */ url) {
  history.pushState(null, '', url)
  void show().then(() => { main.focus({ preventScroll: true }); scrollTo(0, 0) })
}

document.addEventListener('click', (event) => {
  if (event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return
  const link = event.target instanceof Element ? event.target.closest('a') : null
  if (link === null || link.target !== '' || link.hasAttribute('download')) return
  const url = new URL(link.href, location.href)
  if (url.origin !== location.origin || !ROUTES.some(([pattern]) => pattern.test(url.pathname))) return
  event.preventDefault()
  if (url.pathname + url.search !== location.pathname + location.search) navigate(url.pathname + url.search)
})
addEventListener('popstate', () => { void show() })

// The key field: entered once, kept for this tab only (api.js).
const keyRoot = /** @type {HTMLElement} */ (document.getElementById('key'))
let editingKey = false
function drawKey () {
  const key = apiKey()
  const save = (/** @type {SubmitEvent} */ event) => {
    event.preventDefault()
    const input = /** @type {HTMLInputElement} */ (/** @type {HTMLFormElement} */ (event.target).elements.namedItem('api-key'))
    editingKey = false
    setApiKey(input.value)
  }
  render(editingKey
    ? html`<form class="key-form" @submit=${save}>
        <label for="api-key">API key</label>
        <input id="api-key" name="api-key" type="password" autocomplete="off" spellcheck="false" required placeholder="from npx data-api keys create">
        <button type="submit">Use</button>
        <button type="button" @click=${() => { editingKey = false; drawKey() }}>Cancel</button>
      </form>`
    : key === null
      ? html`<button type="button" @click=${() => { editingKey = true; drawKey(); document.getElementById('api-key')?.focus() }}>Enter API key</button>`
      : html`<span class="key-set">API key set for this tab</span> <button type="button" @click=${() => { setApiKey(null) }}>Forget</button>`,
  keyRoot)
}
onKeyChange(drawKey)
drawKey()
void show()
