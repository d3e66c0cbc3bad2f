// Every error response is an RFC 9457 problem: unknown routes, validation failures and unexpected
// exceptions (which must not leak their message or stack).
import assert from 'node:assert/strict'
import { after, describe, it } from 'node:test'
import type { InjectOptions } from 'fastify'
import { createApiKeysRepository } from '../src/auth/api-keys.ts'
import { buildTestApp } from './helpers/app.ts'

const { app, sql } = await buildTestApp({ after }, {}, { ready: false })
// A route that fails the way a bug would, to exercise the error handler of the real app.
app.get('/test-only/crash', async () => { throw new Error('secret internal detail: password=hunter2') })
await app.ready()
const apiKey = (await createApiKeysRepository(sql).create('errors')).key
const auth = { authorization: `Bearer ${apiKey}` }
type Request = InjectOptions & { url: string, payload?: string | Record<string, unknown> }
const described = (request: Request): string => `${request.method ?? 'GET'} ${request.url} ${typeof request.payload === 'string' ? request.payload : JSON.stringify(request.payload ?? '')}`.slice(0, 300)

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
    assert.deepEqual(body.errors, [{ in: 'params', pointer: '/code', detail: 'must be at most 64 characters long' }])
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

// What Ajv and TypeBox say in their own words, which a client should never have to read.
const JARGON = /must match a schema in anyOf|must match pattern|must be equal to (constant|one of the allowed values)|must NOT|must be [<>]=?|must have required propert|must (be|have) (integer|string|number|boolean|object|array)\b|must not have additional|schema is false|Expected (required|union|string|integer|number)|must match format|must match exactly one|"\^/

describe('validation messages in plain words', () => {
  let datasetId: number
  it('names the field and says what it must be', async () => {
    const created = await app.inject({ method: 'POST', url: '/datasets', headers: { ...auth, 'content-type': 'text/csv' }, payload: 'country,year,value\nNO,2026,5.4\n' })
    assert.equal(created.statusCode, 201, created.body)
    datasetId = created.json().dataset.id
    const long = 'x'.repeat(2001)
    const cases: Array<[Request, string, Array<{ in: string, pointer: string, detail: string }>?]> = [
      [{ url: `/datasets/${datasetId}/export?_format=xml` }, '_format must be one of csv, ndjson', [{ in: 'querystring', pointer: '/_format', detail: 'must be one of csv, ndjson' }]],
      [{ url: `/datasets/${datasetId}/rows?_count=some` }, '_count must be one of exact, estimated, none'],
      [{ url: '/datasets/abc' }, 'dataset_id must be a positive whole number', [{ in: 'params', pointer: '/dataset_id', detail: 'must be a positive whole number' }]],
      [{ url: '/datasets/0/rows' }, 'dataset_id must be a positive whole number'],
      [{ url: '/users/-3' }, 'user_id must be a positive whole number'],
      [{ url: '/products/x1' }, 'id must be a positive whole number (at most 19 digits)'],
      [{ url: `/datasets/${datasetId}/rows?_limit=5000` }, '_limit must be at most 1000'],
      // A bare name is read by the service (view.ts), not the route's schema: the same words.
      [{ url: `/datasets/${datasetId}/rows?limit=5000` }, 'limit must be at most 1000', [{ in: 'querystring', pointer: '/limit', detail: 'must be at most 1000' }]],
      [{ url: `/datasets/${datasetId}/rows?_limit=many` }, '_limit must be a whole number'],
      [{ url: `/datasets/${datasetId}/rows?_select=` }, '_select must not be empty'],
      [{ url: '/datasets?limit=0' }, 'limit must be at least 1'],
      [{ url: '/datasets?cursor=abc' }, 'cursor must be the `next_cursor` of a previous page'],
      [{ url: `/problems/${'x'.repeat(65)}` }, 'code must be at most 64 characters long'],
      [{ method: 'POST', url: '/datasets', headers: { ...auth, 'content-type': 'application/json' }, payload: { name: '' } }, 'body.url is required; body.name must not be empty',
        [{ in: 'body', pointer: '/url', detail: 'is required' }, { in: 'body', pointer: '/name', detail: 'must not be empty' }]],
      [{ method: 'POST', url: '/datasets', headers: { ...auth, 'content-type': 'application/json' }, payload: { url: 'https://example.com/a.csv', color: 'red' } }, 'body.color is not allowed here (allowed: url, name, description, format)'],
      [{ method: 'PATCH', url: `/datasets/${datasetId}`, headers: auth, payload: { description: long } }, 'body.description must be at most 2000 characters long'],
      [{ method: 'PATCH', url: `/datasets/${datasetId}`, headers: auth, payload: { columns: { value: { type: 'blob' } } } }, 'body.columns.value.type must be one of integer, numeric, boolean, date, timestamp, text'],
      [{ method: 'PATCH', url: `/datasets/${datasetId}`, headers: auth, payload: {} }, 'body must not be empty'],
      [{ method: 'PUT', url: `/datasets/${datasetId}/key`, headers: auth, payload: {} }, 'body.key is required'],
      [{ method: 'PUT', url: `/datasets/${datasetId}/key`, headers: auth, payload: { key: ['country', 'country'] } }, 'body.key must not hold the same item twice'],
      [{ method: 'POST', url: '/register', payload: { email: 'not an address' } }, 'body.email must be an email address'],
      [{ url: '/sync?seconds=11' }, 'seconds must be at most 10'],
    ]
    for (const [request, detail, errors] of cases) {
      const response = await app.inject(request)
      const body = assertProblem(response, 400)
      assert.equal(body.type, '/problems/validation-error', response.body)
      assert.equal(body.detail, detail, described(request))
      if (errors !== undefined) assert.deepEqual(body.errors, errors)
    }
  })

  it('never speaks Ajv: a generator of bad requests from the document itself', async () => {
    // Every parameter of every operation, one at a time, given values its schema refuses or that
    // stretch it; every JSON body field likewise. Whatever a 400 says must be plain words.
    const document = await app.inject({ url: '/openapi.json' })
    assert.equal(document.statusCode, 200, document.body.slice(0, 500))
    const spec = document.json<{ paths: Record<string, Record<string, {
      parameters?: Array<{ name: string, in: string, schema: { type?: string } }>
      requestBody?: { content: Record<string, { schema?: { properties?: Record<string, unknown> } }> }
    }>> }>()
    const BAD_VALUES = ['x', '-1', '0', '1.5', '1e400', '', 'true', '99999999999999999999', 'x'.repeat(3000), '%00', '[]']
    const BAD_FIELDS: unknown[] = ['', 'x'.repeat(3000), -1, 1.5, [], {}, null, true, ['a', 'a']]
    const requests: Request[] = []
    const pathOf = (template: string, bad?: { name: string, value: string }): string =>
      template.replace(/\{(\w+)\}/g, (_, name: string) => name === bad?.name ? encodeURIComponent(bad.value) : String(datasetId))
    for (const [template, methods] of Object.entries(spec.paths)) {
      for (const [method, operation] of Object.entries(methods)) {
        if (template.endsWith('/events') && method === 'get') continue // a valid request stays open
        const base = { method: method.toUpperCase() as 'GET', headers: auth }
        for (const parameter of operation.parameters ?? []) {
          if (parameter.schema.type === 'object') continue // the free-form filters: any name goes
          for (const value of BAD_VALUES) {
            if (parameter.in === 'path') requests.push({ ...base, url: pathOf(template, { name: parameter.name, value }) })
            else if (parameter.in === 'query') requests.push({ ...base, url: `${pathOf(template)}?${encodeURIComponent(parameter.name)}=${encodeURIComponent(value)}` })
          }
        }
        const json = operation.requestBody?.content['application/json']
        if (json === undefined || method === 'get') continue
        const fields = Object.keys(json.schema?.properties ?? {}).concat(template === '/datasets' ? ['url', 'name', 'format'] : [])
        const bodies: unknown[] = [{}, { unknown_field: 1 }, ...fields.flatMap((field) => BAD_FIELDS.map((value) => ({ [field]: value })))]
        for (const payload of bodies) requests.push({ ...base, url: pathOf(template), headers: { ...auth, 'content-type': 'application/json' }, payload: JSON.stringify(payload) })
      }
    }
    let refusals = 0
    for (const request of requests) {
      const response = await app.inject(request)
      if (response.statusCode !== 400) continue
      const body = response.json<{ type: string, detail: string, errors?: Array<{ detail: string }> }>()
      if (body.type !== '/problems/validation-error') continue
      refusals++
      for (const text of [body.detail, ...(body.errors ?? []).map((error) => error.detail)]) {
        assert.doesNotMatch(text, JARGON, described(request))
      }
    }
    assert.ok(refusals >= 200, `the generator met enough refusals (${refusals} of ${requests.length})`)
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
