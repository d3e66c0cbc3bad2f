import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { after, describe, it } from 'node:test'
import { Validator } from '@seriousme/openapi-schema-validator'
import { FILTER_OPERATORS } from '../src/routes/datasets/view.ts'
import { buildTestApp } from './helpers/app.ts'

const { app } = await buildTestApp({ after })

interface Operation { security?: unknown[], responses: Record<string, unknown>, parameters?: Array<{ name: string, in: string, schema: Record<string, unknown>, description?: string }>, requestBody?: { content: Record<string, { example?: unknown, examples?: Record<string, { value: unknown }> }> } }
type Document = { paths: Record<string, Record<string, Operation>> } & Record<string, any>

async function documentOf (target = app): Promise<Document> {
  const response = await target.inject({ url: '/openapi.json' })
  return response.json<Document>()
}

function operations (spec: Document): Array<[string, Operation]> {
  return Object.entries(spec.paths).flatMap(([path, methods]) => Object.entries(methods).map(([method, operation]) => [`${method.toUpperCase()} ${path}`, operation] as [string, Operation]))
}

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

  it('describes the writes of data sets, their parameters and bodies, with examples', async () => {
    const spec = (await app.inject({ url: '/openapi.json' })).json()
    const append = spec.paths['/datasets/{dataset_id}/rows'].post
    const replace = spec.paths['/datasets/{dataset_id}/data'].put
    const key = spec.paths['/datasets/{dataset_id}/key'].put
    for (const operation of [append, replace, key]) {
      assert.ok(operation.description.length > 100, 'each says what it guarantees')
      assert.ok(operation.responses['200'], 'and what it answers')
      const bodies = Object.values<{ example?: unknown, examples?: unknown }>(operation.requestBody.content)
      assert.ok(bodies.some((body) => body.example !== undefined || body.examples !== undefined), `${operation.summary}: a body example`)
    }
    assert.ok(append.responses['202'] && replace.responses['202'], 'large bodies go to a job')
    for (const name of ['on_conflict', 'columns']) {
      const parameter = append.parameters.find((candidate: { name: string }) => candidate.name === name)
      assert.ok(parameter?.description !== undefined || parameter?.schema.description !== undefined, `${name} is described`)
      assert.match(JSON.stringify(parameter), /"examples?"/, `${name} has an example`)
    }
    const keyParameter = spec.paths['/datasets'].post.parameters.find((candidate: { name: string }) => candidate.name === 'key')
    assert.match(JSON.stringify(keyParameter), /"examples?"/, 'POST /datasets?key= has an example')
  })

  it('documents the writes of data sets and their history, with examples', async () => {
    const spec = (await app.inject({ url: '/openapi.json' })).json()
    const patch = spec.paths['/datasets/{dataset_id}'].patch
    assert.match(patch.description, /admin key/)
    assert.ok(patch.responses['403'], 'PATCH declares its 403')
    const media = patch.requestBody.content['application/json']
    assert.ok(Object.keys(media.examples).length >= 2, 'the PATCH body has examples')
    assert.ok(media.schema.properties.columns.description.length > 0)
    const deleteRows = spec.paths['/datasets/{dataset_id}/rows'].delete
    assert.ok(deleteRows.responses['403'] && deleteRows.responses['400'])
    assert.deepEqual(deleteRows.responses['200'].content['application/json'].example, { deleted: 42 })
    assert.ok(deleteRows.parameters.some((parameter: { name: string }) => parameter.name === '_q'))
    const changes = spec.paths['/datasets/{dataset_id}/changes'].get
    assert.ok(changes.responses['200'].content['application/json'].schema.properties.changes.items.examples.length > 0)
    assert.ok(spec.paths['/datasets/{dataset_id}'].delete.responses['403'], 'DELETE declares its 403')
  })

  it('names the API key\'s bearer scheme, and asks for it exactly on the routes that check a key', async () => {
    const spec = await documentOf()
    const { apiKey } = spec.components.securitySchemes
    assert.equal(apiKey.type, 'http')
    assert.equal(apiKey.scheme, 'bearer')
    assert.match(apiKey.description, /data-api keys create/)
    const secured = operations(spec).filter(([, operation]) => operation.security !== undefined).map(([name]) => name)
    for (const name of ['POST /datasets', 'POST /datasets/{dataset_id}/rows', 'PUT /datasets/{dataset_id}/data', 'DELETE /datasets/{dataset_id}', 'PATCH /datasets/{dataset_id}', 'PUT /datasets/{dataset_id}/key']) {
      assert.ok(secured.includes(name), `${name} asks for the key`)
    }
    for (const name of ['GET /healthz', 'GET /users/{user_id}', 'GET /datasets', 'GET /datasets/{dataset_id}/rows', 'POST /register', 'GET /metrics']) {
      assert.ok(!secured.includes(name), `${name} is public (REQUIRE_KEY_FOR_READS is off)`)
    }
    for (const [name, operation] of operations(spec)) {
      if (operation.security !== undefined) assert.deepEqual(operation.security, [{ apiKey: [] }], name)
      // What the route checks and what it declares agree: a key check can answer 401.
      assert.equal(operation.security !== undefined, operation.responses['401'] !== undefined, `${name}: security and its 401 go together`)
    }
  })

  it('asks for the key on reads too when REQUIRE_KEY_FOR_READS is on', async () => {
    const { app: guarded } = await buildTestApp({ after }, { REQUIRE_KEY_FOR_READS: 'true' })
    const spec = await documentOf(guarded)
    for (const name of ['GET /datasets', 'GET /datasets/{dataset_id}/rows', 'GET /datasets/{dataset_id}/export', 'GET /metrics']) {
      assert.deepEqual(Object.fromEntries(operations(spec))[name]?.security, [{ apiKey: [] }], name)
    }
    assert.equal(Object.fromEntries(operations(spec))['GET /healthz']?.security, undefined)
  })

  it('has a relative server, so that snippets name the host the document was read from', async () => {
    const spec = await documentOf()
    assert.deepEqual(spec.servers.map((server: { url: string }) => server.url), ['/'])
  })

  it('gives every body example a value, and the uploads a CSV and a JSON one', async () => {
    const spec = await documentOf()
    for (const name of ['POST /datasets', 'POST /datasets/{dataset_id}/rows', 'PUT /datasets/{dataset_id}/data']) {
      const content = Object.fromEntries(operations(spec))[name]!.requestBody!.content
      assert.match(String(content['text/csv']?.example), /^country,year,value\n/, `${name}: a CSV example`)
      const json = content['application/json']?.example
      // POST /datasets shows the JSON object that asks for a URL import; the writes a JSON array.
      assert.ok(name === 'POST /datasets' ? typeof (json as { url?: unknown }).url === 'string' : Array.isArray(json), `${name}: a JSON example`)
    }
    let examples = 0
    for (const [name, operation] of operations(spec)) {
      for (const [type, media] of Object.entries(operation.requestBody?.content ?? {})) {
        const values = [...('example' in media ? [media.example] : []), ...Object.values(media.examples ?? {}).map((example) => example.value)]
        for (const value of values) assert.ok(value !== null && value !== undefined, `${name} ${type}: an example that is null`)
        examples += values.length
        if (type === 'application/json' && media.example === undefined && media.examples === undefined) {
          // A JSON body without its own example is shown as its schema's: it must be an object schema.
          assert.ok((media as { schema?: { type?: string } }).schema?.type === 'object', `${name}: a JSON body needs an example or an object schema`)
        }
      }
    }
    assert.ok(examples >= 10, `bodies have examples (${examples})`)
  })

  it('describes the free-form filters of the data-set reads, with every operator of the code', async () => {
    const spec = await documentOf()
    for (const name of ['GET /datasets/{dataset_id}/rows', 'GET /datasets/{dataset_id}/export', 'GET /datasets/{dataset_id}/aggregate', 'DELETE /datasets/{dataset_id}/rows']) {
      const filters = Object.fromEntries(operations(spec))[name]!.parameters!.find((parameter) => parameter.name === 'filters')
      assert.ok(filters !== undefined, `${name} documents its filters`)
      assert.equal(filters.in, 'query')
      assert.equal(filters.schema.type, 'object')
      assert.ok(typeof filters.schema.additionalProperties === 'object', 'each property is a parameter of its own')
      for (const operator of FILTER_OPERATORS) assert.ok(filters.description!.includes(`\`${operator}\``), `${name}: ${operator} is described`)
    }
    assert.equal(Object.fromEntries(operations(spec))['GET /datasets']!.parameters!.find((parameter) => parameter.name === 'filters'), undefined, 'only routes that take them')
  })

  it('gives each pattern its own message, so that a refusal never quotes a regex', async () => {
    const patterns: Array<{ pattern: string, errorMessage?: string }> = []
    const walk = (node: unknown): void => {
      if (typeof node !== 'object' || node === null) return
      if (typeof (node as { pattern?: unknown }).pattern === 'string') patterns.push(node as { pattern: string })
      for (const child of Object.values(node)) walk(child)
    }
    walk((await documentOf()).paths)
    assert.ok(patterns.length > 0)
    for (const schema of patterns) assert.equal(typeof schema.errorMessage, 'string', `pattern ${schema.pattern} has an errorMessage`)
  })

  it('titles the /docs page data-api', async () => {
    const response = await app.inject({ url: '/docs/' })
    assert.match(/<title>([^<]*)<\/title>/.exec(response.body)?.[1] ?? '', /data-api/)
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

  it('sends security headers with the /docs HTML: a CSP allowing its inline script by hash', async () => {
    const response = await app.inject({ url: '/docs/' })
    assert.match(String(response.headers['content-type']), /^text\/html/)
    const csp = String(response.headers['content-security-policy'])
    const directives = new Map(csp.split(';').map((directive) => {
      const [name = '', ...sources] = directive.trim().split(/\s+/)
      return [name, sources]
    }))
    const inlineScripts = [...response.body.matchAll(/<script(?![^>]*\bsrc=)[^>]*>([\s\S]*?)<\/script>/g)].map(([, body]) => body!)
    assert.equal(inlineScripts.length, 1, 'the page has one inline script')
    const hash = createHash('sha256').update(inlineScripts[0]!).digest('base64')
    assert.deepEqual(directives.get('script-src'), ["'self'", `'sha256-${hash}'`], 'scripts: ours, and the inline one by its hash only')
    assert.deepEqual(directives.get('default-src'), ["'self'"])
    assert.deepEqual(directives.get('connect-src'), ["'self'"])
    assert.deepEqual(directives.get('frame-ancestors'), ["'none'"])
    assert.deepEqual(directives.get('object-src'), ["'none'"])
    assert.ok(!csp.includes('unsafe-eval'))
    assert.equal(response.headers['x-content-type-options'], 'nosniff')
    assert.equal(response.headers['x-frame-options'], 'DENY')
    assert.equal(response.headers['referrer-policy'], 'no-referrer')
    assert.equal(response.headers['cross-origin-opener-policy'], 'same-origin')
    assert.equal(response.headers['strict-transport-security'], undefined, 'HSTS is left to the TLS terminator')
    const script = await app.inject({ url: '/docs/js/scalar.js' })
    assert.equal(script.headers['x-content-type-options'], 'nosniff', 'the docs script is covered too')
    assert.equal((await app.inject({ url: '/favicon.ico' })).statusCode, 204)
  })

  it('leaves the JSON API\'s responses alone: only the HTML pages (/docs, the web interface) run helmet\'s hooks', async () => {
    // printRoutes draws the radix tree (a path is split anywhere: `/data` + `sets`), each node's
    // other methods and hooks below it: the full path of a line is its segments along the branches.
    const withHelmet = new Set<string>()
    const segments: string[] = []
    let current = ''
    for (const line of app.printRoutes({ includeHooks: true, commonPrefix: false }).split('\n')) {
      const node = /^([│ ]*)(?:├── |└── )(\S+) \(/.exec(line)
      if (node !== null) {
        const depth = node[1]!.length / 4
        segments.length = depth
        segments.push(node[2]!)
        current = segments.join('')
      }
      if (/helmet/i.test(line)) withHelmet.add(current)
    }
    const pages = [...withHelmet].sort()
    for (const page of ['/', '/docs', '/docs/', '/docs/js/scalar.js', '/ui/lab', '/ui/datasets/:dataset_id(^\\d{1,16}$)', '/ui/assets/app.js', '/ui/vendor/lit-html/lit-html.js']) assert.ok(pages.includes(page), `${page} runs helmet's hooks`)
    assert.deepEqual(pages.filter((path) => !/^\/(|favicon\.ico|docs.*|ui\/.*)$/.test(path)), [], 'no JSON route runs them')
    // The shell answers a data set's page only for an id that can be one; anything else is a 404 problem.
    assert.equal((await app.inject({ url: '/ui/datasets/7' })).statusCode, 200)
    for (const url of ['/ui/datasets/abc', '/ui/datasets/%00', '/ui/datasets/12345678901234567890', '/ui/nope']) {
      const response = await app.inject({ url })
      assert.equal(response.statusCode, 404, url)
      assert.match(String(response.headers['content-type']), /^application\/problem\+json/, url)
    }
    for (const url of ['/healthz', '/openapi.json', '/users/1']) {
      const response = await app.inject({ url })
      for (const header of ['content-security-policy', 'x-content-type-options', 'x-frame-options', 'referrer-policy', 'cross-origin-opener-policy', 'cross-origin-resource-policy']) {
        assert.equal(response.headers[header], undefined, `${url} has no ${header}`)
      }
    }
  })
})
