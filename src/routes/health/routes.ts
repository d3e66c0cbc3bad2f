// Liveness and readiness, never shed under load. /healthz does no I/O, so it stays fast whatever the load; /readyz asks
// PostgreSQL and the catalog store at once and answers 503 when either does not reply within
// READY_TIMEOUT_MS.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import Type from 'typebox'
import type { Sql } from '../../db/pool.ts'
import { cancellable, gather } from '../../lib/concurrency.ts'
import { Problem } from '../../lib/errors.ts'
import { problemResponses } from '../../lib/schemas.ts'
import type { CatalogStore } from '../products/schemas.ts'

export interface HealthOptions { sql: Sql, catalog: CatalogStore, readyTimeoutMs: number }

const StoreKind = Type.Union([Type.Literal('postgres'), Type.Literal('mongodb')])

export const healthRoutes: FastifyPluginAsyncTypebox<HealthOptions> = async (app, { sql, catalog, readyTimeoutMs }) => {
  app.get('/healthz', {
    config: { alwaysAnswer: true },
    schema: {
      tags: ['health'],
      summary: 'Liveness: the process is up and its event loop turns',
      response: { 200: Type.Object({ status: Type.Literal('ok') }) },
    },
  }, async () => ({ status: 'ok' as const }))

  app.get('/readyz', {
    config: { alwaysAnswer: true },
    schema: {
      tags: ['health'],
      summary: 'Readiness: the database and the catalog store answer',
      description: 'Both are asked at once, each within `READY_TIMEOUT_MS`. A 503 problem (`database-unavailable`, or ' +
        '`catalog-unavailable` when only the catalog store is down) carries the same `checks`, with `status: "down"` and a reason.',
      response: {
        200: Type.Object({
          status: Type.Literal('ready'),
          checks: Type.Object({
            database: Type.Object({ status: Type.Literal('up'), latency_ms: Type.Number() }),
            catalog: Type.Object({ status: Type.Literal('up'), store: StoreKind, latency_ms: Type.Number() }),
          }),
        }),
        ...problemResponses(503),
      },
    },
  }, async () => {
    const { values, errors } = await gather({
      database: async (signal) => await timed(async () => { await cancellable(sql`select 1`, signal) }),
      catalog: async (signal) => await timed(async () => { await catalog.ping(signal) }),
    }, { timeoutMs: readyTimeoutMs, optional: ['database', 'catalog'] })

    const reasons = new Map(errors.map((error) => [error.part, error.reason]))
    const check = (part: 'database' | 'catalog', latencyMs: number | null) =>
      latencyMs === null ? { status: 'down' as const, reason: reasons.get(part) ?? 'failed' } : { status: 'up' as const, latency_ms: latencyMs }
    const checks = {
      database: check('database', values.database),
      catalog: { ...check('catalog', values.catalog), store: catalog.kind },
    }
    if (checks.database.status === 'down') {
      throw new Problem('database-unavailable', `The database did not answer within ${readyTimeoutMs} ms (${checks.database.reason}).`, { extra: { checks } })
    }
    if (checks.catalog.status === 'down') {
      throw new Problem('catalog-unavailable', `The catalog store (${catalog.kind}) did not answer within ${readyTimeoutMs} ms (${checks.catalog.reason}).`, { extra: { checks } })
    }
    return { status: 'ready' as const, checks: { database: checks.database, catalog: checks.catalog } }
  })
}

/** Runs `work`; resolves with its duration in ms, to one decimal. */
async function timed (work: () => Promise<void>): Promise<number> {
  const started = performance.now()
  await work()
  return Math.round((performance.now() - started) * 10) / 10
}
