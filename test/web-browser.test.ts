// The web interface in a real browser (headless Chromium): a new user's path through it on a
// served data-api with the demo data. Upload a CSV through the form, open it, sort, filter, facet,
// page forward and back, export the view, delete it; each time the page must show exactly what
// the API answers for the same query (read here with app.inject: the oracle is the API itself,
// which its own tests check against PostgreSQL). Throughout: no CSP violation, no console error,
// no request leaving 127.0.0.1, no serious accessibility violation (axe-core), and a screenshot
// of each page in test-results/screenshots/.
import assert from 'node:assert/strict'
import fs from 'node:fs/promises'
import { after, before, describe, it } from 'node:test'
import { createApiKeysRepository } from '../src/auth/api-keys.ts'
import { seedDemo } from '../src/resources.ts'
import { buildTestApp, listen } from './helpers/app.ts'
import { axeViolations, openWatchedBrowser, screenshot, seriousViolations, skipWithoutChromium, type WatchedBrowser } from './helpers/browser.ts'
import { until } from './helpers/http.ts'

const CITIES = ['Bergen', 'Oslo', 'Tromsø', 'Bodø', 'Stavanger']
/** 150 rows: ages 18–80 and cities in a fixed pattern, so filters select more than one page. */
const CSV = ['id,name,city,age,joined,active', ...Array.from({ length: 150 }, (_, index) => {
  const i = index + 1
  return `${i},Person ${i},${CITIES[(i * 7) % CITIES.length]},${18 + ((i * 37) % 63)},2025-${String(1 + (i % 12)).padStart(2, '0')}-${String(1 + (i % 28)).padStart(2, '0')},${i % 3 === 0}`
})].join('\n') + '\n'

describe('the web interface in a real browser', { skip: skipWithoutChromium, timeout: 120_000 }, () => {
  const cleanups: Array<() => Promise<void>> = []
  let origin: string
  let watched: WatchedBrowser
  let key: string
  let inject: (url: string) => Promise<{ statusCode: number, body: string, json: () => any }>

  before(async () => {
    // A sync limit below the upload's size: the form's upload is imported by a job, and the page
    // follows it to its end through the data set's events.
    const { app, sql, datasets } = await buildTestApp({ after: (fn) => { cleanups.push(fn) } }, { RATE_LIMIT_WRITES: '0', DATASET_SYNC_MAX_BYTES: '1024' }, { worker: true })
    await seedDemo(sql, datasets)
    key = (await createApiKeysRepository(sql).create('browser')).key
    inject = async (url) => await app.inject({ url })
    origin = await listen(app)
    watched = await openWatchedBrowser(origin)
    cleanups.push(watched.close)
  })

  after(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup()
  })

  /** The table's rows as the page shows them. */
  const shownRows = async (): Promise<string[][]> => await watched.page.locator('table tbody tr').evaluateAll((rows) =>
    rows.map((row) => [...row.querySelectorAll('td')].map((cell) => cell.textContent?.trim() ?? '')))
  /** A row of the API as the page writes it: text as it is, other values as JSON, a missing one as —. */
  const asShown = (fields: string[], row: Record<string, unknown>): string[] =>
    fields.map((field) => row[field] === null ? '—' : typeof row[field] === 'string' ? row[field] : JSON.stringify(row[field]))
  /** Waits until the table shows the API's answer to `query` (the page updates after its own request). */
  async function tableShows (id: number, query: string): Promise<any> {
    const answer = (await inject(`/datasets/${id}/rows?_limit=50${query === '' ? '' : `&${query}`}`)).json()
    const fields = Object.keys(answer.rows[0] ?? {})
    const expected = answer.rows.map((row: Record<string, unknown>) => asShown(fields, row))
    let shown: string[][] = []
    try {
      await until(`the table to show ${query}`, async () => { shown = await shownRows(); return JSON.stringify(shown) === JSON.stringify(expected) }, 10_000)
    } catch {
      assert.deepEqual(shown, expected, `the table shows what GET /datasets/${id}/rows?${query} answers`)
    }
    return answer
  }
  async function noSeriousViolations (what: string): Promise<void> {
    const serious = seriousViolations(await axeViolations(watched.page))
    assert.deepEqual(serious, [], `${what}: axe-core finds no serious or critical violation`)
  }

  it('serves the home page with the health and the links', async () => {
    const response = await watched.page.goto(`${origin}/`)
    assert.equal(response?.status(), 200)
    assert.match(response.headers()['content-security-policy'] ?? '', /script-src 'self' 'sha256-[^']+';style-src 'self';/)
    await watched.page.getByRole('heading', { name: 'data-api', level: 1 }).waitFor()
    await watched.page.getByText('Database, answered in').waitFor()
    for (const name of ['Data sets', 'Lesson lab', 'API reference', '/openapi.json', '/metrics']) {
      assert.equal(await watched.page.getByRole('main').getByRole('link', { name: new RegExp(`^${name.replace('.', '\\.')}`) }).count(), 1, name)
    }
    await noSeriousViolations('/')
    await screenshot(watched.page, 'home')
  })

  let id: number

  it('uploads a CSV through the form, with the key entered once, and shows its rows', async () => {
    const { page } = watched
    await page.getByRole('link', { name: 'Data sets' }).first().click()
    await page.getByRole('heading', { name: 'Data sets', level: 1 }).waitFor()
    assert.equal(await page.getByRole('button', { name: 'Upload' }).isDisabled(), true, 'no upload without a key')
    await page.getByRole('button', { name: 'Enter API key' }).click()
    await page.getByLabel('API key').fill(key)
    await page.getByRole('button', { name: 'Use' }).click()
    await page.getByText('API key set for this tab').waitFor()
    assert.equal(await page.evaluate('document.cookie'), '', 'the key is in no cookie')
    await page.getByLabel(/^File/).setInputFiles({ name: 'people.csv', mimeType: 'text/csv', buffer: Buffer.from(CSV) })
    await page.getByLabel('Name').fill('people')
    await page.getByRole('button', { name: 'Upload' }).click()
    // Imported by the job worker: on a busy machine (another test saturating the CPU) that may take
    // longer than a click does.
    await page.getByText('Imported people: 150 rows.').waitFor({ timeout: 60_000 })
    assert.ok(watched.requested.some((url) => /\/datasets\/\d+\/events$/.test(url)), 'the import was followed by its events')
    await noSeriousViolations('/ui/datasets')
    await screenshot(page, 'datasets')
    assert.ok(watched.requested.every((url) => !url.includes(key)), 'the key is in no URL')

    await page.getByRole('status').getByRole('link', { name: 'people' }).click()
    await page.getByRole('heading', { name: 'people', level: 1 }).waitFor()
    id = Number(/\/ui\/datasets\/(\d+)/.exec(page.url())?.[1])
    assert.ok(id > 0)
    await tableShows(id, '')
  })

  it('sorts by a clicked header, filters and facets as the API does', async () => {
    const { page } = watched
    await page.getByRole('button', { name: 'age', exact: true }).click()
    await tableShows(id, '_sort=age')
    assert.equal(await page.locator('th[aria-sort="ascending"]').count(), 1)
    await page.getByRole('button', { name: /^age/ }).click()
    await tableShows(id, '_sort=-age')

    await page.getByLabel('Filter', { exact: true }).selectOption('age')
    await page.getByLabel('Operator').selectOption('gte')
    await page.getByLabel('Value').fill('30')
    await page.getByRole('button', { name: 'Add filter' }).click()
    const filtered = await tableShows(id, 'age__gte=30&_sort=-age')
    assert.ok(filtered.next_cursor !== null, 'the filtered view has more than one page')
    await page.getByText(`of ${filtered.total}`).waitFor()

    await page.getByLabel('Column to facet').selectOption('city')
    await page.getByRole('button', { name: 'Add facet' }).click()
    const faceted = (await inject(`/datasets/${id}/rows?age__gte=30&_sort=-age&_limit=50&_facet=city&_facet_size=10`)).json()
    const facet = page.getByRole('region', { name: 'Facet city' })
    await facet.getByRole('button').nth(1).waitFor()
    const shownFacet = await facet.locator('li button').evaluateAll((buttons) => buttons.map((button) => [...button.querySelectorAll('span')].map((span) => span.textContent)))
    assert.deepEqual(shownFacet, faceted.facets.city.values.map((entry: { value: string, count: number }) => [entry.value, String(entry.count)]), 'the facet shows the API\'s values and counts')
    assert.equal(page.url(), `${origin}/ui/datasets/${id}?age__gte=30&_sort=-age&_facet=city`, 'the view is in the URL')
    await noSeriousViolations('/ui/datasets/{id}')
    await screenshot(page, 'dataset')
  })

  it('pages forward and back with the keyset cursor', async () => {
    const { page } = watched
    const first = (await inject(`/datasets/${id}/rows?_limit=50&age__gte=30&_sort=-age`)).json()
    await page.getByRole('button', { name: 'Next →' }).click()
    await tableShows(id, `age__gte=30&_sort=-age&_cursor=${encodeURIComponent(first.next_cursor)}`)
    await page.getByText('page 2').waitFor()
    await page.getByRole('button', { name: '← Previous' }).click()
    await tableShows(id, 'age__gte=30&_sort=-age')
    assert.equal(await page.getByRole('button', { name: '← Previous' }).isDisabled(), true)
  })

  it('narrows the view to a facet value clicked, and exports exactly that view', async () => {
    const { page } = watched
    const faceted = (await inject(`/datasets/${id}/rows?age__gte=30&_sort=-age&_limit=50&_facet=city`)).json()
    const top = faceted.facets.city.values[0].value as string
    await page.getByRole('region', { name: 'Facet city' }).getByRole('button', { name: new RegExp(`^${top}`) }).click()
    const narrowed = await tableShows(id, `age__gte=30&city=${encodeURIComponent(top)}&_sort=-age`)
    assert.ok(narrowed.rows.every((row: { city: string, age: number }) => row.city === top && row.age >= 30))

    const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('link', { name: 'Export CSV' }).click()])
    const file = await fs.readFile(await download.path())
    const exported = await inject(`/datasets/${id}/export?_format=csv&age__gte=30&city=${encodeURIComponent(top)}&_sort=-age`)
    assert.equal(exported.statusCode, 200)
    assert.equal(file.toString(), exported.body, 'the file downloaded is the export of the view')
    const curl = await page.locator('pre.curl').textContent()
    assert.equal(curl, `curl '${origin}/datasets/${id}/rows?age__gte=30&city=${encodeURIComponent(top)}&_sort=-age&_limit=50&_facet=city&_facet_size=10'`)
  })

  it('shows each column\'s statistics with a histogram once they are computed', async () => {
    const { page } = watched
    await until('the statistics job', async () => Object.keys((await inject(`/datasets/${id}`)).json().stats.columns).length > 0)
    await page.reload()
    const age = page.getByRole('article', { name: 'Column age' })
    await age.getByRole('img', { name: /^Histogram of age/ }).waitFor()
    const bins = (await inject(`/datasets/${id}`)).json().stats.columns.age.histogram.bins
    assert.equal(await age.locator('rect').count(), bins.length)
    await screenshot(page, 'dataset-stats')
  })

  it('searches the text, and puts the best matches first', async () => {
    const { page } = watched
    await page.getByRole('button', { name: 'Clear filters' }).click()
    await tableShows(id, '_sort=-age')
    await page.getByRole('searchbox', { name: 'Search' }).fill('"person 12"')
    await page.getByRole('button', { name: 'Search', exact: true }).click()
    const found = await tableShows(id, `_q=${encodeURIComponent('"person 12"')}&_sort=-age`)
    assert.deepEqual(found.rows.map((row: { name: string }) => row.name), ['Person 12'])
    await page.getByRole('searchbox', { name: 'Search' }).fill('person')
    await page.getByRole('button', { name: 'Search', exact: true }).click()
    await page.getByRole('button', { name: 'Best matches first' }).click()
    await tableShows(id, '_q=person&_sort=_rank')
  })

  it('deletes the data set after a confirmation', async () => {
    const { page } = watched
    await page.getByRole('button', { name: 'Delete this data set…' }).click()
    const dialog = page.getByRole('dialog', { name: 'Delete people?' })
    await dialog.getByRole('button', { name: 'Keep it' }).click()
    assert.equal((await inject(`/datasets/${id}`)).statusCode, 200, 'kept')
    await page.getByRole('button', { name: 'Delete this data set…' }).click()
    await dialog.getByRole('button', { name: 'Delete', exact: true }).click()
    await page.getByRole('heading', { name: 'Data sets', level: 1 }).waitFor()
    assert.equal((await inject(`/datasets/${id}`)).statusCode, 404)
    await page.getByRole('link', { name: 'weather' }).waitFor()
    assert.equal(await page.getByRole('link', { name: 'people' }).count(), 0)
  })

  it('works on a phone-sized screen', async () => {
    const { page } = watched
    await page.setViewportSize({ width: 390, height: 844 })
    await page.goto(`${origin}/ui/datasets/1?_facet=station`)
    await page.getByRole('region', { name: 'Facet station' }).getByRole('button').nth(1).waitFor()
    const overflow = await page.evaluate('document.documentElement.scrollWidth - document.documentElement.clientWidth')
    assert.equal(overflow, 0, 'no sideways scrolling of the page (the table scrolls in its own box)')
    await screenshot(page, 'dataset-phone')
  })

  it('saw no CSP violation, no console error and no request leaving the origin', () => {
    assert.deepEqual(watched.violations, [])
    assert.deepEqual(watched.consoleErrors, [])
    assert.deepEqual(watched.offOrigin(), [])
  })
})
