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
