// Liveness and readiness. /healthz does no I/O, so it stays fast whatever the load; /readyz asks
// PostgreSQL and answers 503 when it does not reply within READY_TIMEOUT_MS.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import Type from 'typebox'
import type { Sql } from '../../db/pool.ts'
import { cancellable, describeFailure, withDeadline } from '../../lib/concurrency.ts'
import { Problem } from '../../lib/errors.ts'
import { problemResponses } from '../../lib/schemas.ts'

export const healthRoutes: FastifyPluginAsyncTypebox<{ sql: Sql, readyTimeoutMs: number }> = async (app, { sql, readyTimeoutMs }) => {
  app.get('/healthz', {
    schema: {
      tags: ['health'],
      summary: 'Liveness: the process is up and its event loop turns',
      response: { 200: Type.Object({ status: Type.Literal('ok') }) },
    },
  }, async () => ({ status: 'ok' as const }))

  app.get('/readyz', {
    schema: {
      tags: ['health'],
      summary: 'Readiness: the database answers',
      response: {
        200: Type.Object({ status: Type.Literal('ready'), checks: Type.Object({ database: Type.Object({ status: Type.Literal('up'), latency_ms: Type.Number() }) }) }),
        ...problemResponses(503),
      },
    },
  }, async () => {
    const started = performance.now()
    try {
      await withDeadline(readyTimeoutMs, undefined, async (signal) => await cancellable(sql`select 1`, signal))
    } catch (error) {
      throw new Problem('database-unavailable', `The database did not answer within ${readyTimeoutMs} ms (${describeFailure(error)}).`, {
        extra: { checks: { database: { status: 'down', reason: describeFailure(error) } } },
        cause: error,
      })
    }
    return { status: 'ready' as const, checks: { database: { status: 'up' as const, latency_ms: Math.round((performance.now() - started) * 10) / 10 } } }
  })
}
