// /external, /data, /data-timeout and /multiple against real HTTP upstreams on 127.0.0.1 that
// misbehave on demand: each fault gives its documented status and problem, aborted work reaches
// the upstream, and connections are reused.
import assert from 'node:assert/strict'
import { after, describe, it } from 'node:test'
import { buildTestApp, listen } from './helpers/app.ts'
import { startFakeUpstream } from './helpers/fake-upstream.ts'
import { getAndDisconnect, json, timed } from './helpers/http.ts'

const fake = await startFakeUpstream()
after(async () => { await fake.close() })

/** An app whose upstreams are the given fake paths, listening on a free port. */
async function appWithUpstreams (paths: string[], env: Record<string, string> = {}): Promise<string> {
  const { app } = await buildTestApp({ after }, { UPSTREAM_URLS: paths.map((path) => `${fake.origin}${path}`).join(','), ...env })
  return await listen(app)
}

async function expectProblem (response: Response, status: number, fields: Record<string, unknown>): Promise<Record<string, unknown>> {
  assert.equal(response.status, status)
  assert.equal(response.headers.get('content-type'), 'application/problem+json; charset=utf-8')
  const body = await json(response) as Record<string, unknown>
  for (const [key, value] of Object.entries(fields)) assert.deepEqual(body[key], value, `${key} of ${JSON.stringify(body)}`)
  // Nothing internal leaks: no undici codes, no upstream body, no stack.
  assert.doesNotMatch(JSON.stringify(body), /UND_ERR|ECONN|internal detail|stack|at \w+\.js/)
  return body
}

describe('/external and /data', () => {
  it('return the upstream JSON and pass the request id on', async () => {
    const base = await appWithUpstreams(['/json/0'])
    for (const path of ['/external', '/data', '/data-timeout']) {
      const response = await fetch(`${base}${path}`, { headers: { 'x-request-id': `req-${path.slice(1)}` } })
      assert.equal(response.status, 200)
      assert.deepEqual(await json(response), { path: '/json/0', ok: true })
      assert.match(response.headers.get('server-timing') ?? '', /^upstream-1;dur=\d+\.\d$/)
      assert.ok(fake.stats.requestIds.includes(`req-${path.slice(1)}`))
    }
  })

  const faults: Array<[string, string, number, string, Record<string, unknown>?]> = [
    // Upstreams slower than any test: an answer at all means the timeout fired, not the upstream.
    ['headers arrive late', '/delay-headers/60000', 504, 'headers-timeout'],
    ['the body stalls', '/delay-body/60000', 504, 'body-timeout'],
    ['the upstream answers 500', '/status/500', 502, 'bad-status', { upstream_status: 500 }],
    ['the upstream answers 404', '/status/404', 502, 'bad-status', { upstream_status: 404 }],
    ['the connection is reset', '/reset/0', 502, 'connection-reset'],
    ['the body is not JSON', '/invalid-json/0', 502, 'invalid-json'],
    ['the body is too large', '/big/65536', 502, 'too-large'],
  ]
  for (const [when, path, status, reason, extra = {}] of faults) {
    it(`answer ${status} ${reason} when ${when}`, async () => {
      const base = await appWithUpstreams([path], { UPSTREAM_HEADERS_TIMEOUT_MS: '300', UPSTREAM_BODY_TIMEOUT_MS: '300', UPSTREAM_MAX_BYTES: '10000' })
      const response = await fetch(`${base}/data`)
      const body = await expectProblem(response, status, { upstream: 'upstream-1', reason, type: `/problems/${status === 504 ? 'gateway-timeout' : 'bad-gateway'}`, ...extra })
      assert.match(String(body.detail), /^upstream-1 failed: /)
    })
  }

  it('answer 502 connection-refused when nothing listens', async () => {
    const closed = await startFakeUpstream()
    await closed.close()
    const { app } = await buildTestApp({ after }, { UPSTREAM_URLS: `${closed.origin}/json/0` })
    const base = await listen(app)
    await expectProblem(await fetch(`${base}/external`), 502, { upstream: 'upstream-1', reason: 'connection-refused' })
  })

  it('/data-timeout gives up at DATA_TIMEOUT_MS with 504 deadline and aborts the upstream request', async () => {
    const base = await appWithUpstreams(['/json/3000'], { DATA_TIMEOUT_MS: '300' })
    fake.reset()
    const { value: response, ms } = await timed(async () => await fetch(`${base}/data-timeout`))
    await expectProblem(response, 504, { upstream: 'upstream-1', reason: 'deadline', timeout_ms: 300 })
    assert.ok(ms >= 280, `took ${ms.toFixed(0)} ms: not before its deadline`)
    await fake.waitForAborts(1, 20_000)
    // /data has the longer UPSTREAM_TIMEOUT_MS: the same upstream succeeds there.
    assert.equal((await fetch(`${base}/data`)).status, 200)
  })

  it('aborts the upstream request when the client disconnects', async (t) => {
    // The upstream would answer after a minute: an abort it sees before then came from us.
    const base = await appWithUpstreams(['/json/60000'])
    fake.reset()
    await getAndDisconnect(`${base}/external`, 300)
    const disconnectedAt = performance.now()
    const [aborted] = await fake.waitForAborts(1, 30_000)
    assert.equal(aborted!.path, '/json/60000')
    t.diagnostic(`the upstream saw the abort ${(aborted!.at - disconnectedAt).toFixed(0)} ms after the client left`)
  })

  it('reuses keep-alive connections: 200 sequential requests, a handful of connections', async () => {
    const base = await appWithUpstreams(['/json/0'])
    fake.reset()
    for (let index = 0; index < 200; index++) assert.equal((await fetch(`${base}/external`)).status, 200)
    assert.equal(fake.stats.requests, 200)
    assert.ok(fake.stats.connections <= 3, `${fake.stats.connections} connections for 200 requests`)
  })
})

describe('/multiple', () => {
  it('calls three upstreams concurrently: less than 0.75 × the sum of their latencies', async () => {
    const base = await appWithUpstreams(['/json/300', '/json/500', '/json/700'])
    await fetch(`${base}/multiple`) // warm the connections
    const { value: response, ms } = await timed(async () => await fetch(`${base}/multiple`))
    assert.equal(response.status, 200)
    assert.deepEqual((await json(response)).map((body: { path: string }) => body.path), ['/json/300', '/json/500', '/json/700'])
    assert.ok(ms < 0.75 * 1_500, `took ${ms.toFixed(0)} ms for 300 + 500 + 700 ms of upstream latency`)
    assert.ok(ms >= 690, 'cannot be faster than the slowest upstream')
    const timing = response.headers.get('server-timing') ?? ''
    assert.deepEqual(timing.split(', ').map((entry) => entry.split(';')[0]), ['upstream-1', 'upstream-2', 'upstream-3'])
  })

  it('fails as a whole with the failing upstream named, aborting the other two', async () => {
    // Siblings that would answer after a minute: an answer now means they were not waited for.
    const base = await appWithUpstreams(['/json/60000', '/status/503', '/json/60000'])
    fake.reset()
    const response = await fetch(`${base}/multiple`)
    await expectProblem(response, 502, { upstream: 'upstream-2', reason: 'bad-status', upstream_status: 503 })
    const aborted = await fake.waitForAborts(2, 30_000)
    assert.deepEqual(aborted.map(({ path }) => path), ['/json/60000', '/json/60000'])
  })

  it('with partial=true returns what succeeded, null for the failed and why', async () => {
    const base = await appWithUpstreams(['/json/0', '/reset/0', '/delay-headers/2000'], { UPSTREAM_HEADERS_TIMEOUT_MS: '300' })
    const response = await fetch(`${base}/multiple?partial=true`)
    assert.equal(response.status, 200)
    const body = await json(response)
    assert.deepEqual(body.results, [{ path: '/json/0', ok: true }, null, null])
    assert.deepEqual(body.errors, [
      { upstream: 'upstream-2', status: 502, reason: 'connection-reset' },
      { upstream: 'upstream-3', status: 504, reason: 'headers-timeout' },
    ])
  })

  it('refuses a malformed partial flag with a 400 problem', async () => {
    const base = await appWithUpstreams(['/json/0'])
    await expectProblem(await fetch(`${base}/multiple?partial=maybe`), 400, { type: '/problems/validation-error' })
  })
})

describe('sample upstreams (UPSTREAM_URLS unset)', () => {
  it('serves the three demo upstreams over real HTTP and calls them', async () => {
    const { app } = await buildTestApp({ after })
    const base = await listen(app)
    const response = await fetch(`${base}/multiple`)
    assert.equal(response.status, 200)
    assert.deepEqual((await json(response)).map((body: { source: string }) => body.source), ['inventory', 'pricing', 'reviews'])
  })

  it('with SAMPLE_UPSTREAMS=false there is no upstream: 503, and no /_sample routes', async () => {
    const { app } = await buildTestApp({ after }, { SAMPLE_UPSTREAMS: 'false' })
    const base = await listen(app)
    await expectProblem(await fetch(`${base}/external`), 503, { type: '/problems/service-unavailable' })
    await expectProblem(await fetch(`${base}/multiple`), 503, { type: '/problems/service-unavailable' })
    assert.equal((await fetch(`${base}/_sample/inventory`)).status, 404)
  })
})
