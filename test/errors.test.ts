// Every error response is an RFC 9457 problem: unknown routes, validation failures and unexpected
// exceptions (which must not leak their message or stack).
import assert from 'node:assert/strict'
import { after, describe, it } from 'node:test'
import { buildTestApp } from './helpers/app.ts'

const { app } = await buildTestApp({ after }, {}, { ready: false })
// A route that fails the way a bug would, to exercise the error handler of the real app.
app.get('/test-only/crash', async () => { throw new Error('secret internal detail: password=hunter2') })
await app.ready()

function assertProblem (response: { headers: Record<string, unknown>, json: () => unknown }, status: number): Record<string, unknown> {
  assert.match(String(response.headers['content-type']), /^application\/problem\+json/)
  const body = response.json() as Record<string, unknown>
  assert.equal(body.status, status)
  for (const field of ['type', 'title', 'detail']) assert.equal(typeof body[field], 'string', `${field} is a string`)
  return body
}

describe('problem responses', () => {
  // Ajv coerced these to ±Infinity, which skipped every minimum and maximum (patches/ajv): a
  // /sync?seconds=Infinity hung and the others answered 500.
  for (const url of ['/sync?seconds=Infinity', '/async?seconds=1e400', '/users?after=Infinity', '/users/1e400', '/datasets/1e400', '/datasets/1/rows?_limit=1e400',
    '/compute?n=1e400', '/slow?delay_ms=-Infinity', '/users?limit=-1e400']) {
    it(`answers the non-finite number of ${url} with a 400 naming the field`, async () => {
      const response = await app.inject({ url })
      const body = assertProblem(response, 400)
      assert.equal(body.type, '/problems/validation-error')
      const field = /[?&]([a-z_]+)=/.exec(url)?.[1] ?? (url.startsWith('/users/') ? 'user_id' : 'dataset_id')
      assert.equal((body.errors as Array<{ pointer: string }>)[0]!.pointer, `/${field}`)
    })
  }

  it('answers an unknown route with a 404 problem', async () => {
    const response = await app.inject({ url: '/no/such/route?x=1' })
    assert.equal(response.statusCode, 404)
    const body = assertProblem(response, 404)
    assert.equal(body.type, '/problems/not-found')
    assert.equal(body.detail, 'No route answers GET /no/such/route.')
  })

  it('answers a path that exists, with a method it does not take, with 405 and Allow', async () => {
    const response = await app.inject({ method: 'PUT', url: '/datasets/12?x=1' })
    const body = assertProblem(response, 405)
    assert.equal(body.type, '/problems/method-not-allowed')
    assert.equal(response.headers.allow, 'GET, HEAD, PATCH, DELETE')
    assert.equal(body.detail, '/datasets/12 does not answer PUT; it answers GET, HEAD, PATCH, DELETE.')
    assert.equal((await app.inject({ method: 'DELETE', url: '/healthz' })).headers.allow, 'GET, HEAD')
    assert.equal((await app.inject({ method: 'DELETE', url: '/no/such/route' })).statusCode, 404)
    // A body that cannot be read does not turn a miss into a 400.
    assert.equal((await app.inject({ method: 'QUERY', url: '/healthz' })).statusCode, 405)
  })

  it('answers invalid parameters with a 400 naming the field', async () => {
    const response = await app.inject({ url: `/problems/${'x'.repeat(65)}` })
    assert.equal(response.statusCode, 400)
    const body = assertProblem(response, 400)
    assert.equal(body.type, '/problems/validation-error')
    assert.deepEqual(body.errors, [{ in: 'params', pointer: '/code', detail: 'must NOT have more than 64 characters' }])
  })

  it('answers an unexpected error with a 500 that carries the request id and no internals', async () => {
    const response = await app.inject({ url: '/test-only/crash', headers: { 'x-request-id': 'req-abc.123' } })
    assert.equal(response.statusCode, 500)
    const body = assertProblem(response, 500)
    assert.equal(body.request_id, 'req-abc.123')
    assert.equal(response.headers['x-request-id'], 'req-abc.123')
    assert.doesNotMatch(response.body, /secret|hunter2|Error:|at .*\.ts/)
  })

  it('describes each problem type at its type URI', async () => {
    const response = await app.inject({ url: '/problems/validation-error' })
    assert.equal(response.statusCode, 200)
    assert.equal(response.json().status, 400)
    const list = await app.inject({ url: '/problems' })
    assert.ok(list.json<Array<{ type: string }>>().some((problem) => problem.type === '/problems/not-found'))
  })
})

describe('request ids', () => {
  it('generates one when none is sent', async () => {
    const response = await app.inject({ url: '/healthz' })
    assert.match(String(response.headers['x-request-id']), /^[0-9a-f-]{36}$/)
  })

  it('replaces an unsafe one instead of echoing it', async () => {
    const response = await app.inject({ url: '/healthz', headers: { 'x-request-id': 'bad id\twith spaces' } })
    assert.notEqual(response.headers['x-request-id'], 'bad id\twith spaces')
    assert.match(String(response.headers['x-request-id']), /^[0-9a-f-]{36}$/)
  })
})
