// Demo upstreams. With UPSTREAM_URLS unset, /external, /data and /multiple call these over real
// HTTP (through the same pools, timeouts and error mapping as any upstream), so `npm start` shows
// the upstream routes working with nothing else running. Each answers after a fixed latency,
// different per endpoint, so /multiple visibly takes the slowest of the three rather than the sum.
// SAMPLE_UPSTREAMS=false removes them.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import Type from 'typebox'
import { sleep } from '../../lib/concurrency.ts'
import { abortOnDisconnect } from '../../lib/request-signal.ts'
import { problemResponses } from '../../lib/schemas.ts'

const SAMPLES = {
  inventory: {
    latencyMs: 100,
    body: { source: 'inventory', warehouses: [{ id: 'ams-1', items: 1280 }, { id: 'fra-2', items: 934 }], updated_at: '2026-01-01T00:00:00.000Z' },
  },
  pricing: {
    latencyMs: 200,
    body: { source: 'pricing', currency: 'EUR', prices: [{ sku: 'A-100', price: 19.9 }, { sku: 'B-200', price: 4.5 }], updated_at: '2026-01-01T00:00:00.000Z' },
  },
  reviews: {
    latencyMs: 300,
    body: { source: 'reviews', average: 4.4, count: 2, latest: [{ sku: 'A-100', stars: 5 }, { sku: 'B-200', stars: 4 }] },
  },
} as const

export const sampleRoutes: FastifyPluginAsyncTypebox = async (app) => {
  for (const [name, { latencyMs, body }] of Object.entries(SAMPLES)) {
    app.get(`/_sample/${name}`, {
      schema: {
        tags: ['demo'],
        summary: `Demo upstream "${name}" (answers after ${latencyMs} ms)`,
        description: 'Demo data, served only while UPSTREAM_URLS is unset and SAMPLE_UPSTREAMS is true. `delay_ms` overrides the latency.',
        querystring: Type.Object({ delay_ms: Type.Integer({ minimum: 0, maximum: 10_000, default: latencyMs }) }),
        response: { 200: Type.Unknown(), ...problemResponses(400) },
      },
    }, async (request, reply) => {
      await sleep(request.query.delay_ms, abortOnDisconnect(reply))
      return body
    })
  }
}
