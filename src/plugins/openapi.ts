// OpenAPI 3.1 generated from the route schemas (/openapi.json) and a browsable reference (/docs)
// served from the installed @scalar package: no CDN, no fonts or telemetry fetched from elsewhere.
import { createRequire } from 'node:module'
import swagger from '@fastify/swagger'
import scalar from '@scalar/fastify-api-reference'
import type { App } from '../app.ts'

const { version, description } = createRequire(import.meta.url)('../../package.json') as { version: string, description: string }

export async function registerOpenApi (app: App): Promise<void> {
  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: { title: 'data-api', version, description },
    },
    transformObject: (document) => 'openapiObject' in document ? refineSpec(document.openapiObject) : document.swaggerObject,
    // Shared schemas (Problem) become named components instead of def-0, def-1…
    refResolver: { buildLocalReference: (json, _baseUri, _fragment, index) => (json.$id as string | undefined) ?? `def-${index}` },
  })
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger())
  await app.register(scalar, {
    routePrefix: '/docs',
    logLevel: 'warn',
    configuration: {
      url: '/openapi.json',
      title: 'data-api reference',
      withDefaultFonts: false,
      showDeveloperTools: 'never',
      telemetry: false,
      agent: { disabled: true },
    },
  })
}

interface Operation {
  parameters?: Array<{ required?: boolean, schema?: { default?: unknown } }>
  requestBody?: { required?: boolean }
  responses?: Record<string, { content?: Record<string, unknown> }>
  'x-body-optional'?: boolean
}
interface OpenApiDocument { paths?: Record<string, Record<string, Operation>> }

/**
 * What @fastify/swagger cannot know from the route schemas: errors are sent as
 * application/problem+json; a parameter with a default may be left out (Ajv fills it in, though the
 * JSON schema lists it as required); a route marked `x-body-optional` defaults its body itself.
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
      delete operation['x-body-optional']
    }
  }
  return document
}
