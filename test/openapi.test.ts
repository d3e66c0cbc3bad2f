import assert from 'node:assert/strict'
import { after, describe, it } from 'node:test'
import { Validator } from '@seriousme/openapi-schema-validator'
import { buildTestApp } from './helpers/app.ts'

const { app } = await buildTestApp({ after })

describe('OpenAPI and docs', () => {
  it('serves a valid OpenAPI 3.1 document that lists the routes', async () => {
    const response = await app.inject({ url: '/openapi.json' })
    assert.equal(response.statusCode, 200)
    const spec = response.json()
    assert.equal(spec.openapi, '3.1.0')
    const result = await new Validator().validate(spec)
    assert.equal(result.valid, true, JSON.stringify(result.errors, null, 2))
    for (const path of ['/healthz', '/readyz', '/problems/{code}', '/products', '/products/{id}']) assert.ok(spec.paths[path], `${path} documented`)
    assert.match(spec.paths['/products/{id}'].get.description, /malformed id is a 400/)
    assert.ok(spec.components.schemas.Problem, 'Problem is a named component')
  })

  it('says what the service really sends: problem+json errors, optional defaults, an optional /register body', async () => {
    const spec = (await app.inject({ url: '/openapi.json' })).json()
    const userNotFound = spec.paths['/users/{user_id}'].get.responses['404']
    assert.deepEqual(Object.keys(userNotFound.content), ['application/problem+json'])
    assert.deepEqual(Object.keys(spec.paths['/users/{user_id}'].get.responses['200'].content), ['application/json'])
    const userId = spec.paths['/dashboard'].get.parameters.find((parameter: { name: string }) => parameter.name === 'user_id')
    assert.equal(userId.required, false, 'user_id has a default')
    assert.equal(spec.paths['/users/{user_id}'].get.parameters[0].required, true, 'a path parameter stays required')
    assert.equal(spec.paths['/register'].post.requestBody.required, false)
    assert.equal(spec.paths['/datasets'].post.requestBody.required, true)
    assert.equal(spec.paths['/register'].post['x-body-optional'], undefined, 'the marker does not leak into the spec')
  })

  it('serves /docs from installed packages, with no external scripts, styles or fonts', async () => {
    const response = await app.inject({ url: '/docs/' })
    assert.equal(response.statusCode, 200)
    assert.match(String(response.headers['content-type']), /text\/html/)
    assert.doesNotMatch(response.body, /(src|href)="https?:\/\//)
    const script = /<script[^>]+src="([^"]+)"/.exec(response.body)?.[1]
    assert.ok(script !== undefined, 'the page loads a script')
    const js = await app.inject({ url: new URL(script, 'http://x/docs/').pathname })
    assert.equal(js.statusCode, 200)
  })
})
