// What protects the service from its clients: rate limits on writes and /compute (per API key or
// client address), load shedding (concurrency limit, event-loop delay), the body size limit and the
// server's deadline for slow request headers.
import assert from 'node:assert/strict'
import net from 'node:net'
import { after, describe, it } from 'node:test'
import { createApiKeysRepository } from '../src/auth/api-keys.ts'
import { buildTestApp, listen } from './helpers/app.ts'
import { delay, json } from './helpers/http.ts'

// One app per concern, each with its limit set low; built at file level so that `after` closes them
// even when a name pattern skips their tests. The test that saturates the event loop saturates it for
// every app of this process: only `shedding` watches it.
const limited = await buildTestApp({ after }, { RATE_LIMIT_COMPUTE: '3', RATE_LIMIT_WRITES: '2', OVERLOAD_EVENT_LOOP_DELAY_MS: '0' })
const shedding = await buildTestApp({ after }, { CONCURRENCY_LIMIT: '3', OVERLOAD_EVENT_LOOP_DELAY_MS: '150' })
const strict = await buildTestApp({ after }, { HEADERS_TIMEOUT_MS: '500', OVERLOAD_EVENT_LOOP_DELAY_MS: '0' })

describe('rate limits', async () => {
  const { app, sql } = limited
  const keyA = await createApiKeysRepository(sql).create('rate limit A')
  const keyB = await createApiKeysRepository(sql).create('rate limit B')

  it('counts /compute per client address and answers 429 with RateLimit headers past the limit', async () => {
    const compute = async (remoteAddress: string) => await app.inject({ url: '/compute?n=10', remoteAddress })
    for (const remaining of [2, 1, 0]) {
      const response = await compute('192.0.2.1')
      assert.equal(response.statusCode, 200)
      assert.equal(response.headers['ratelimit-limit'], '3')
      assert.equal(response.headers['ratelimit-remaining'], String(remaining))
      assert.ok(Number(response.headers['ratelimit-reset']) > 0)
    }
    const limited = await compute('192.0.2.1')
    assert.equal(limited.statusCode, 429)
    assert.equal(limited.headers['content-type'], 'application/problem+json; charset=utf-8')
    assert.ok(Number(limited.headers['retry-after']) >= 1 && Number(limited.headers['retry-after']) <= 60, `Retry-After ${limited.headers['retry-after']}`)
    const body = limited.json()
    assert.equal(body.type, '/problems/rate-limited')
    assert.match(body.detail, /At most 3 requests per minute to this route from one client address/)
    // Another client is not affected.
    assert.equal((await compute('192.0.2.2')).statusCode, 200)
  })

  it('counts writes per API key, whatever the address', async () => {
    const remove = async (key: string, remoteAddress: string) => await app.inject({ method: 'DELETE', url: '/datasets/987654', remoteAddress, headers: { authorization: `Bearer ${key}` } })
    assert.equal((await remove(keyA.key, '198.51.100.1')).statusCode, 404)
    assert.equal((await remove(keyA.key, '198.51.100.2')).statusCode, 404)
    const limited = await remove(keyA.key, '198.51.100.3')
    assert.equal(limited.statusCode, 429)
    assert.match(limited.json().detail, /from one API key/)
    assert.equal((await remove(keyB.key, '198.51.100.3')).statusCode, 404, 'another key has its own count')
  })

  it('does not limit reads, and lists 429 in the OpenAPI document where it applies', async () => {
    for (let i = 0; i < 5; i++) {
      const response = await app.inject({ url: '/healthz', remoteAddress: '192.0.2.1' })
      assert.equal(response.statusCode, 200)
      assert.equal(response.headers['ratelimit-limit'], undefined)
    }
    const spec = (await app.inject('/openapi.json')).json()
    assert.ok(spec.paths['/compute'].get.responses['429'])
    assert.ok(spec.paths['/register'].post.responses['429'])
    assert.ok(spec.paths['/datasets/{dataset_id}'].delete.responses['429'])
    assert.equal(spec.paths['/datasets/{dataset_id}'].get.responses['429'], undefined)
  })
})

describe('load shedding', async () => {
  const base = await listen(shedding.app)

  it('answers 503 at once past CONCURRENCY_LIMIT, keeps /healthz answering, and recovers', async () => {
    let heldAnswered = false
    const held = Array.from({ length: 3 }, async () => await fetch(`${base}/async?seconds=2`))
    void Promise.all(held).then(() => { heldAnswered = true })
    await delay(200)
    const shed = await fetch(`${base}/users/1`)
    assert.equal(heldAnswered, false, 'shed while the three slots were still taken: it did not wait for one')
    assert.equal(shed.status, 503)
    assert.equal(shed.headers.get('retry-after'), '1')
    assert.equal(shed.headers.get('content-type'), 'application/problem+json; charset=utf-8')
    const body = await json(shed)
    assert.equal(body.type, '/problems/service-unavailable')
    assert.match(body.detail, /limit of 3 requests at once/)
    assert.equal((await fetch(`${base}/healthz`)).status, 200)
    assert.equal((await fetch(`${base}/metrics`)).status, 200)
    assert.ok((await Promise.all(held)).every((response) => response.status === 200))
    assert.equal((await fetch(`${base}/async?seconds=0`)).status, 200)
  })

  it('answers 503 while the event loop is saturated, and recovers', async () => {
    // Saturate this process's event loop (the app's too) for over two samples of the loop delay
    // (one per second): 200 ms busy turns, each letting the loop take one breath in between.
    const until = performance.now() + 2200
    while (performance.now() < until) {
      const turnEnds = performance.now() + 200
      while (performance.now() < turnEnds) { /* busy */ }
      await new Promise((resolve) => setImmediate(resolve))
    }
    const shed = await fetch(`${base}/async?seconds=0`)
    assert.equal(shed.status, 503)
    assert.match((await json(shed)).detail, /event loop is saturated/)
    assert.equal((await fetch(`${base}/healthz`)).status, 200)
    let status = 0
    for (let attempt = 0; attempt < 30 && status !== 200; attempt++) {
      await delay(200)
      status = (await fetch(`${base}/async?seconds=0`)).status
    }
    assert.equal(status, 200, 'answers again once the loop is free')
  })
})

describe('request limits', async () => {
  const base = await listen(strict.app)

  it('answers 413 to a JSON body over the limit', async () => {
    const response = await fetch(`${base}/register`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ email: 'big@example.com', name: 'x'.repeat(100_000) }) })
    assert.equal(response.status, 413)
    assert.equal((await json(response)).type, '/problems/payload-too-large')
  })

  it('closes a connection whose headers do not arrive within HEADERS_TIMEOUT_MS', async () => {
    const { port } = new URL(base)
    const socket = net.connect(Number(port), '127.0.0.1')
    const started = performance.now()
    let received = ''
    socket.on('data', (chunk: Buffer) => { received += chunk.toString() })
    socket.write('GET /healthz HTTP/1.1\r\nHost: localhost\r\n') // and never the blank line
    await new Promise((resolve) => socket.once('close', resolve))
    const ms = performance.now() - started
    assert.match(received, /^HTTP\/1\.1 408/)
    assert.match(received, /content-type: application\/problem\+json/i)
    assert.ok(ms >= 400, `closed after ${ms.toFixed(0)} ms, not before the headers timeout`)
  })

  it('answers 431 as a problem to headers over 16 KiB, and documents it on every operation', async () => {
    const response = await fetch(`${base}/datasets/1/rows?cursor=${'x'.repeat(20_000)}`)
    assert.equal(response.status, 431)
    assert.equal(response.headers.get('content-type'), 'application/problem+json')
    assert.equal((await json(response)).type, '/problems/headers-too-large')
    const spec = await json(await fetch(`${base}/openapi.json`))
    const problemRef = spec.paths['/users/{user_id}'].get.responses['404'].content['application/problem+json'].schema
    for (const [path, operations] of Object.entries(spec.paths as Record<string, Record<string, any>>)) {
      for (const [method, operation] of Object.entries(operations)) {
        assert.deepEqual(operation.responses['431']?.content['application/problem+json'].schema, problemRef, `${method} ${path}`)
      }
    }
  })
})
