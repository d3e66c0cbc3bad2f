// OpenAPI 3.1 generated from the route schemas (/openapi.json) and a browsable reference (/docs)
// served from the installed @scalar package: no CDN, no fonts or telemetry fetched from elsewhere.
// Like the web interface's pages (web/), it carries browser security headers (lib/page-security.ts:
// Content-Security-Policy and the rest, via @fastify/helmet), registered in a context of their own
// holding just the /docs routes: the JSON routes run no hook for them.
import { createRequire } from 'node:module'
import Fastify, { type FastifySchema } from 'fastify'
import helmet from '@fastify/helmet'
import swagger from '@fastify/swagger'
import scalar, { type FastifyApiReferenceOptions } from '@scalar/fastify-api-reference'
import fp from 'fastify-plugin'
import { needsApiKey } from '../auth/require-key.ts'
import { PROBLEM_TYPES } from '../lib/errors.ts'
import { inlineScriptHashes, pageSecurityHeaders } from '../lib/page-security.ts'

const { version, description } = createRequire(import.meta.url)('../../package.json') as { version: string, description: string }

// fastify-plugin: the document must see the routes of the whole app, registered after it.
export const openApi = fp(async (app) => {
  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: { title: 'data-api', version, description },
      // Relative: a client resolves it against the URL it read the document from (OpenAPI 3.1,
      // 4.8.5.1), so the snippets /docs shows name http://127.0.0.1:8000 under `npm start` and the
      // public https host behind a proxy. Built from the request's Host or the configured HOST/PORT,
      // it would name the proxy's inner address, or 0.0.0.0, instead.
      servers: [{ url: '/', description: 'This server' }],
      components: {
        securitySchemes: {
          [API_KEY_SCHEME]: { type: 'http', scheme: 'bearer', description: 'An API key, made by `npx data-api keys create` (shown once), sent as `Authorization: Bearer <key>`.' },
        },
      },
    },
    transform: documentRoute,
    transformObject: (document) => 'openapiObject' in document ? refineSpec(document.openapiObject) : document.swaggerObject,
    // Shared schemas (Problem) become named components instead of def-0, def-1…
    refResolver: { buildLocalReference: (json, _baseUri, _fragment, index) => (json.$id as string | undefined) ?? `def-${index}` },
  })
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger())
  const scriptHashes = inlineScriptHashes(await renderDocsPage(DOCS))
  // Encapsulated: both plugins use fastify-plugin, so their hooks and routes land in this context.
  // (Registered at the root, helmet would run two onRequest hooks, one async, on every request.)
  await app.register(async function docs (context) {
    // Its one inline script (Scalar.createApiReference with our configuration) by its hash. Inline
    // styles: scalar.js injects <style> elements and Vue sets style attributes at run time, which
    // cannot be hashed ahead. No 'unsafe-eval': Zod, inside scalar.js, probes for eval once and
    // works without it.
    await context.register(helmet, pageSecurityHeaders({ scriptHashes, inlineStyles: true }))
    await context.register(scalar, DOCS)
    // Browsers ask for it with every page: without it /docs would log a 404 (here and in the
    // browser console) on each visit.
    context.get('/favicon.ico', { schema: { hide: true }, logLevel: 'warn' }, async (_request, reply) => await reply.code(204).send())
  })
}, { name: 'data-api-openapi' })

const API_KEY_SCHEME = 'apiKey'

/**
 * What the document says of a route beyond its schema: that it needs an API key when it runs the
 * key check (so /docs asks for the key and sends it), and a query string's free-form parameters
 * (a data set's filters, its `additionalProperties`), which @fastify/swagger leaves out: as one
 * object parameter, whose each property is a parameter of its own (style form, exploded: the
 * default of a query parameter).
 */
function documentRoute ({ schema, url, route }: { schema: FastifySchema, url: string, route: { preHandler?: unknown } }): { schema: FastifySchema, url: string } {
  // Typed as always there, but a route may declare none (swagger then documents the bare path).
  if ((schema as FastifySchema | undefined) === undefined) return { schema, url }
  const querystring = schema.querystring as { properties?: Record<string, unknown>, additionalProperties?: unknown } | undefined
  const { description, ...filters } = (querystring?.additionalProperties ?? {}) as { description?: string }
  return {
    url,
    schema: {
      ...schema,
      ...(needsApiKey(route) && { security: [{ [API_KEY_SCHEME]: [] }] }),
      ...(typeof querystring?.additionalProperties === 'object' && {
        querystring: { ...querystring, properties: { ...querystring.properties, [FREE_FORM_PARAMETER]: { type: 'object', additionalProperties: filters, description } } },
      }),
    },
  }
}
const FREE_FORM_PARAMETER = 'filters'

const DOCS = {
  routePrefix: '/docs',
  logLevel: 'warn',
  configuration: {
    url: '/openapi.json',
    title: 'data-api reference',
    pageTitle: 'data-api reference',
    withDefaultFonts: false,
    showDeveloperTools: 'never',
    telemetry: false,
    agent: { disabled: true },
    // The "Open API Client" link would send our spec URL to client.scalar.com; the built-in client
    // ("Test Request") works here, offline.
    hideClientButton: true,
  },
} satisfies FastifyApiReferenceOptions

/**
 * The /docs HTML exactly as the plugin serves it with these options, rendered once at start on a
 * scratch instance: the page depends on the options only, so its inline script's hash is fixed.
 */
async function renderDocsPage (options: typeof DOCS): Promise<string> {
  const scratch = Fastify()
  try {
    await scratch.register(scalar, options)
    const response = await scratch.inject({ url: `${options.routePrefix}/` })
    if (response.statusCode !== 200) throw new Error(`rendering ${options.routePrefix}/ for its CSP hashes answered ${response.statusCode}`)
    return response.body
  } finally {
    await scratch.close()
  }
}

// Answered by Node's HTTP parser (answerClientError) before any route: any operation may get them.
const ANSWERED_BEFORE_ROUTING = { 408: 'request-timeout', 431: 'headers-too-large' } as const

interface Operation {
  parameters?: Array<{ required?: boolean, schema?: { default?: unknown } }>
  requestBody?: { required?: boolean, content?: Record<string, { example?: unknown }> }
  responses?: Record<string, { description?: string, content?: Record<string, unknown> }>
  'x-body-optional'?: boolean
  /** An example body per media type (a body read as a stream has no schema to carry them). */
  'x-body-examples'?: Record<string, unknown>
}
interface OpenApiDocument { paths?: Record<string, Record<string, Operation>> }

/**
 * What @fastify/swagger cannot know from the route schemas: errors are sent as
 * application/problem+json; a parameter with a default may be left out (Ajv fills it in, though the
 * JSON schema lists it as required); a route marked `x-body-optional` defaults its body itself;
 * `x-body-examples` gives each media type of the body its own example.
 */
function refineSpec<T extends object> (document: T): T {
  for (const operations of Object.values((document as OpenApiDocument).paths ?? {})) {
    for (const operation of Object.values(operations)) {
      for (const parameter of operation.parameters ?? []) {
        if (parameter.schema?.default !== undefined) parameter.required = false
      }
      for (const [status, response] of Object.entries(operation.responses ?? {})) {
        const json = response.content?.['application/json']
        if (Number(status) >= 400 && json !== undefined) response.content = { 'application/problem+json': json }
      }
      if (operation['x-body-optional'] === true && operation.requestBody !== undefined) operation.requestBody.required = false
      for (const [status, code] of Object.entries(ANSWERED_BEFORE_ROUTING)) {
        operation.responses![status] ??= { description: PROBLEM_TYPES[code].description, content: { 'application/problem+json': { schema: { $ref: '#/components/schemas/Problem' } } } }
      }
      for (const [type, example] of Object.entries(operation['x-body-examples'] ?? {})) {
        const content = operation.requestBody?.content?.[type]
        // A copy: @fastify/swagger may share one object among the media types of a body.
        if (content !== undefined) operation.requestBody!.content![type] = { ...content, example }
      }
      delete operation['x-body-optional']
      delete operation['x-body-examples']
    }
  }
  return document
}
