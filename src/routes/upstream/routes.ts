// The lesson's HTTP client examples, with timeouts, cancellation and honest errors:
//  GET /external       the first upstream's JSON (UPSTREAM_TIMEOUT_MS deadline)
//  GET /data           the same, the lesson's error-handling example: 504 on timeout, 502 on
//                      failure, never `str(e)`
//  GET /data-timeout   the same under DATA_TIMEOUT_MS (the lesson's `wait_for(..., 5.0)`)
//  GET /multiple       the first three upstreams at once: the time of the slowest, not the sum
// Every call stops when the client disconnects; Server-Timing has one entry per upstream.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { FastifyReply, FastifyRequest } from 'fastify'
import Type from 'typebox'
import { gather } from '../../lib/concurrency.ts'
import { asProblem, Problem } from '../../lib/errors.ts'
import { abortOnDisconnect } from '../../lib/request-signal.ts'
import { problemResponses } from '../../lib/schemas.ts'
import { withServerTiming } from '../../lib/server-timing.ts'
import type { Upstream, Upstreams } from '../../upstream/upstreams.ts'

export interface UpstreamRouteOptions { upstreams: Upstreams, timeoutMs: number, dataTimeoutMs: number }

const AnyJson = Type.Unknown({ description: 'The upstream\'s JSON body, as sent' })
const UpstreamError = Type.Object({
  upstream: Type.String({ description: '`upstream-N`: the N-th entry of UPSTREAM_URLS' }),
  status: Type.Integer({ description: 'The status this failure alone would have been answered with (502 or 504)' }),
  reason: Type.String({ description: 'connect-timeout, headers-timeout, body-timeout, deadline, connection-refused, connection-reset, bad-status, invalid-json, too-large…' }),
})

export const upstreamRoutes: FastifyPluginAsyncTypebox<UpstreamRouteOptions> = async (app, { upstreams, timeoutMs, dataTimeoutMs }) => {
  const first = (): Upstream => {
    const upstream = upstreams.list[0]
    if (upstream === undefined) throw new Problem('service-unavailable', 'No upstream is configured: set UPSTREAM_URLS (or SAMPLE_UPSTREAMS=true).')
    return upstream
  }

  /** One upstream call under `deadlineMs`, timed, aborted if the client leaves. */
  const fetchFirst = (deadlineMs: number) => async (request: FastifyRequest, reply: FastifyReply): Promise<unknown> =>
    await withServerTiming(reply, async (timing) => {
      const upstream = first()
      return await timing.measure(upstream.name, async () =>
        await upstreams.fetchJson(upstream, { signal: abortOnDisconnect(reply), timeoutMs: deadlineMs, requestId: request.id }))
    })

  const single = (summary: string, deadline: string, deadlineMs: number) => ({
    schema: {
      tags: ['lesson'],
      summary,
      description: `Calls the first entry of UPSTREAM_URLS through its keep-alive pool with a ${deadline} deadline (${deadlineMs} ms) and returns its JSON. ` +
        'A deadline or upstream timeout answers 504; a refused or reset connection, an error status, invalid JSON or an oversize body answers 502. ' +
        'Both are problems naming the `upstream` and a `reason`. If the client disconnects, the upstream request is aborted.',
      response: { 200: AnyJson, ...problemResponses(502, 503, 504) },
    },
  })

  app.get('/external', single('One upstream call through a shared keep-alive pool', 'UPSTREAM_TIMEOUT_MS', timeoutMs), fetchFirst(timeoutMs))
  app.get('/data', single('The lesson\'s error handling: 504 on timeout, 502 on upstream failure', 'UPSTREAM_TIMEOUT_MS', timeoutMs), fetchFirst(timeoutMs))
  app.get('/data-timeout', single('The lesson\'s asyncio.wait_for: an upstream call with a hard deadline', 'DATA_TIMEOUT_MS', dataTimeoutMs), fetchFirst(dataTimeoutMs))

  app.get('/multiple', {
    schema: {
      tags: ['lesson'],
      summary: 'Three upstream calls at once: the time of the slowest, not the sum',
      description: 'Calls the first three entries of UPSTREAM_URLS concurrently (fewer if fewer are configured), each with the UPSTREAM_TIMEOUT_MS deadline, ' +
        'and returns their JSON bodies in order. If one fails, the others are aborted and the answer is that failure\'s 502/504 problem. ' +
        'With `partial=true` the answer is instead 200 `{results, errors}` with `null` in place of each failed body.',
      querystring: Type.Object({ partial: Type.Boolean({ default: false, description: 'Return what succeeded instead of failing as a whole' }) }),
      response: {
        200: Type.Union([
          Type.Array(AnyJson),
          Type.Object({ results: Type.Array(AnyJson), errors: Type.Array(UpstreamError) }),
        ]),
        ...problemResponses(400, 502, 503, 504),
      },
    },
  }, async (request, reply) => await withServerTiming(reply, async (timing) => {
    const targets = upstreams.list.slice(0, 3)
    if (targets.length === 0) first()
    const branches = Object.fromEntries(targets.map((upstream) => [upstream.name, async (signal: AbortSignal) =>
      await upstreams.fetchJson(upstream, { signal, timeoutMs, requestId: request.id })]))
    const names = targets.map(({ name }) => name)
    const { values, errors } = await gather(branches, { signal: abortOnDisconnect(reply), timing, optional: request.query.partial ? names : [] })
    const results = names.map((name) => values[name] ?? null)
    if (!request.query.partial) return results
    return {
      results,
      errors: errors.map(({ part, error }) => ({ upstream: part, status: asProblem(error)?.status ?? 502, reason: (asProblem(error)?.extra.reason as string | undefined) ?? 'failed' })),
    }
  }))
}
