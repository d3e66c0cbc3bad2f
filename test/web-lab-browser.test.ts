// /ui/lab in a real browser: Debian's chromium driven by playwright-core, against the real app on
// a loopback port. Runs two of the lesson's panels and reads their verdicts' numbers from the page
// (ordering facts, never an absolute time), checks the waterfall draws one bar per request, that
// the page stays on this origin under its CSP with no console error, and that axe-core finds
// no serious or critical accessibility violation. Leaves a full-page screenshot in
// test-results/screenshots/lab.png (kept by CI).
// Needs /usr/bin/chromium (tools/install-chromium.sh): skipped without it, except in CI.
// Below, the bench-results route through app.inject, with and without a run in its directory.
import assert from 'node:assert/strict'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { after, before, describe, it } from 'node:test'
import { seedUsersAndOrders } from '../src/routes/users/seed.ts'
import { benchResultsRoute } from '../src/web/routes.ts'
import { buildTestApp, listen } from './helpers/app.ts'
import { axeViolations, openWatchedBrowser, screenshot, SCREENSHOTS_DIR, seriousViolations, skipWithoutChromium, type WatchedBrowser } from './helpers/browser.ts'

/** A duration as the page writes it (lab-measure.js formatMs: `850 ms`, `2.03 s`), in ms. */
function readMs (text: string): number {
  const match = /(\d+(?:\.\d+)?)\s*(ms|s)\b/.exec(text)
  assert.ok(match !== null, `no duration in ${JSON.stringify(text)}`)
  return Number(match[1]) * (match[2] === 's' ? 1000 : 1)
}

describe('/ui/lab in a real browser', { skip: skipWithoutChromium, timeout: 90_000 }, () => {
  const cleanups: Array<() => Promise<void>> = []
  let origin: string
  let watched: WatchedBrowser
  let page: WatchedBrowser['page']

  before(async () => {
    const { app, sql } = await buildTestApp({ after: (fn) => { cleanups.push(fn) } })
    await seedUsersAndOrders(sql, { users: 3, ordersPerUser: 4 })
    origin = await listen(app)
    watched = await openWatchedBrowser(origin, {
      // A checkout without `npm run bench` results answers the lab's request for them with its
      // documented 404, which the page shows as a sentence (the browser logs it all the same).
      allowConsoleError: (text, url) => url === `${origin}/ui/bench/latest.json` && text.includes('404'),
    })
    cleanups.push(watched.close)
    page = watched.page
    page.setDefaultTimeout(20_000)
  })

  after(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup()
  })

  it('opens the lab under its Content-Security-Policy', async () => {
    const response = await page.goto(`${origin}/ui/lab`)
    assert.equal(response?.status(), 200)
    assert.match(response.headers()['content-security-policy'] ?? '', /default-src 'self'/)
    await page.getByRole('heading', { name: 'Lesson lab', level: 1 }).waitFor()
    // The bench section settles (results or the sentence saying how to make them).
    await page.locator('section[aria-labelledby="lab-bench"]').getByText(/npm run bench|Run of /).first().waitFor()
  })

  it('runs /slow vs /fast and reports /fast shorter than /slow', async () => {
    const panel = page.locator('#lab-slow-fast')
    await panel.getByRole('button', { name: 'Run' }).click()
    await panel.getByRole('status').getByText(/^Done/).waitFor()
    const slow = readMs(await panel.locator('dd[data-measure="slow-total"]').innerText())
    const fast = readMs(await panel.locator('dd[data-measure="fast-total"]').innerText())
    assert.ok(fast < slow, `the page says /fast ${fast} ms, /slow ${slow} ms`)
    assert.equal(await panel.locator('svg.lab-waterfall g.lab-bar').count(), 2)
    // Each bar is split into the route's Server-Timing parts.
    assert.equal(await panel.locator('svg.lab-waterfall rect.lab-part-0').count(), 2, 'a user part in each bar')
    assert.equal(await panel.locator('svg.lab-waterfall rect.lab-part-1').count(), 2, 'an orders part in each bar')
    assert.match(await panel.locator('.lab-verdict').innerText(), /quicker than \/slow/)
  })

  it('runs 10 × /sync vs 10 × /async: both totals and one bar per request', async () => {
    const panel = page.locator('#lab-sync-async')
    await panel.getByRole('button', { name: 'Run' }).click()
    await panel.getByRole('status').getByText(/^Done/).waitFor({ timeout: 30_000 })
    const sync = readMs(await panel.locator('dd[data-measure="sync-total"]').innerText())
    const awaited = readMs(await panel.locator('dd[data-measure="async-total"]').innerText())
    // Each group waits at least one 0.5 s sleep: a total below it was not measured.
    assert.ok(sync >= 450 && awaited >= 450, `totals ${sync} and ${awaited} ms`)
    const bars = panel.locator('svg.lab-waterfall g.lab-bar')
    assert.equal(await bars.count(), 20)
    assert.match(await bars.first().getAttribute('aria-label') ?? '', /^\/sync #1: HTTP 200/)
    assert.equal(await panel.locator('.lab-numbers tbody tr').count(), 20, 'the table has the same requests')
  })

  it('has no serious or critical accessibility violation (axe-core)', async () => {
    // Open the tables too, so they are checked.
    for (const summary of await page.locator('details.lab-numbers summary').all()) await summary.click()
    assert.deepEqual(seriousViolations(await axeViolations(page)), [])
  })

  it('saves a full-page screenshot', async () => {
    await screenshot(page, 'lab')
    assert.ok((await fs.stat(path.join(SCREENSHOTS_DIR, 'lab.png'))).size > 10_000)
  })

  it('made no request beyond this origin and met no CSP violation or console error', () => {
    assert.deepEqual(watched.offOrigin(), [], 'every request stays on the API\'s own origin')
    assert.ok(watched.requested.some((url) => url.startsWith(`${origin}/sync?`)), 'the requests were seen')
    assert.deepEqual(watched.violations, [])
    assert.deepEqual(watched.consoleErrors, [])
  })
})

describe('GET /ui/bench/latest.json', () => {
  it('answers the newest run of the suite, and a 404 problem when there is none', async () => {
    const empty = await fs.mkdtemp(path.join(os.tmpdir(), 'data-api-bench-empty-'))
    const full = await fs.mkdtemp(path.join(os.tmpdir(), 'data-api-bench-'))
    after(async () => { await Promise.all([empty, full].map(async (dir) => { await fs.rm(dir, { recursive: true, force: true }) })) })
    const run = (startedAt: string) => JSON.stringify({ startedAt, lesson: [], throughput: [] })
    await fs.writeFile(path.join(full, '2026-11-25T14-53-02Z.json'), run('2026-11-25T14:53:02.000Z'))
    await fs.writeFile(path.join(full, '2026-12-01T09-00-00Z.json'), run('2026-12-01T09:00:00.000Z'))
    // Newer, but another bench's files: not the suite's.
    await fs.writeFile(path.join(full, 'soak-2026-12-09T00-00-00Z.json'), run('soak'))
    await fs.writeFile(path.join(full, 'datasets-2026-12-09T00-00-00-000Z.json'), run('datasets'))

    const { app } = await buildTestApp({ after }, {}, { ready: false })
    await app.register(benchResultsRoute, { prefix: '/empty', dir: empty })
    await app.register(benchResultsRoute, { prefix: '/missing', dir: path.join(empty, 'no-such-dir') })
    await app.register(benchResultsRoute, { prefix: '/full', dir: full })
    await app.ready()

    const found = await app.inject({ url: '/full/ui/bench/latest.json' })
    assert.equal(found.statusCode, 200)
    assert.match(found.headers['content-type'] ?? '', /^application\/json/)
    assert.equal(found.json().startedAt, '2026-12-01T09:00:00.000Z')

    for (const prefix of ['/empty', '/missing']) {
      const none = await app.inject({ url: `${prefix}/ui/bench/latest.json` })
      assert.equal(none.statusCode, 404, prefix)
      assert.equal(none.headers['content-type'], 'application/problem+json; charset=utf-8')
      assert.match(none.json().detail, /npm run bench/)
    }

    // The app's own route is there, and hidden from the OpenAPI document.
    assert.ok(app.hasRoute({ method: 'GET', url: '/ui/bench/latest.json' }))
    const spec = (await app.inject({ url: '/openapi.json' })).json()
    assert.ok(!Object.keys(spec.paths).some((key) => key.includes('/ui/bench')), 'not in /openapi.json')
  })
})
