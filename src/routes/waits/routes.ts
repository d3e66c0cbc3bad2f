// The lesson's "when to use async" examples, made honest:
//  GET /sync        a 2 s blocking sleep. Like FastAPI's `def` route it runs in a thread pool
//                   (piscina), so it holds a thread, never the event loop.
//  GET /async       a 2 s awaited timer: holds nothing.
//  GET /sync-slow   ten 1 s blocking sleeps one after another in the pool: 10 s.
//  GET /async-fast  ten 1 s timers at once: 1 s.
//  GET /compute     CPU-bound work (counting primes) on the CPU pool; a full queue answers 503.
// All of them stop when the client disconnects: timers are cleared, queued tasks dropped, running
// CPU tasks terminated.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import Type from 'typebox'
import type { ComputePools } from '../../compute/pools.ts'
import { sleep } from '../../lib/concurrency.ts'
import { abortOnDisconnect } from '../../lib/request-signal.ts'
import { problemResponses } from '../../lib/schemas.ts'

const Done = Type.Object({ message: Type.Literal('Done') })
const DoneList = Type.Array(Type.Literal('done'))
const Seconds = (fallback: number, maximum: number) => Type.Number({ minimum: 0, maximum, default: fallback, description: 'How long each wait lasts, in seconds' })
const Repeat = Type.Integer({ minimum: 1, maximum: 20, default: 10, description: 'How many waits' })

export const waitRoutes: FastifyPluginAsyncTypebox<{ compute: ComputePools }> = async (app, { compute }) => {
  app.get('/sync', {
    schema: {
      tags: ['lesson'],
      summary: 'Blocking sleep in the worker-thread pool (FastAPI\'s `def` route)',
      querystring: Type.Object({ seconds: Seconds(2, 10) }),
      response: { 200: Done, ...problemResponses(400, 503) },
    },
  }, async (request, reply) => {
    await compute.blockingSleep(request.query.seconds * 1000, abortOnDisconnect(reply))
    return { message: 'Done' as const }
  })

  app.get('/async', {
    schema: {
      tags: ['lesson'],
      summary: 'Awaited timer: the event loop serves others meanwhile',
      querystring: Type.Object({ seconds: Seconds(2, 10) }),
      response: { 200: Done, ...problemResponses(400) },
    },
  }, async (request, reply) => {
    await sleep(request.query.seconds * 1000, abortOnDisconnect(reply))
    return { message: 'Done' as const }
  })

  app.get('/sync-slow', {
    schema: {
      tags: ['lesson'],
      summary: 'n blocking sleeps in sequence (in the pool): n × seconds',
      querystring: Type.Object({ n: Repeat, seconds: Seconds(1, 5) }),
      response: { 200: DoneList, ...problemResponses(400, 503) },
    },
  }, async (request, reply) => {
    const { n, seconds } = request.query
    const signal = abortOnDisconnect(reply)
    const results: Array<'done'> = []
    for (let i = 0; i < n; i++) {
      await compute.blockingSleep(seconds * 1000, signal)
      results.push('done')
    }
    return results
  })

  app.get('/async-fast', {
    schema: {
      tags: ['lesson'],
      summary: 'n timers at once: about one × seconds',
      querystring: Type.Object({ n: Repeat, seconds: Seconds(1, 5) }),
      response: { 200: DoneList, ...problemResponses(400) },
    },
  }, async (request, reply) => {
    const { n, seconds } = request.query
    const signal = abortOnDisconnect(reply)
    await Promise.all(Array.from({ length: n }, async () => { await sleep(seconds * 1000, signal) }))
    return Array.from({ length: n }, () => 'done' as const)
  })

  app.get('/compute', {
    schema: {
      tags: ['lesson'],
      summary: 'CPU-bound work (primes below n) on the CPU worker pool',
      description: 'The event loop stays free while this runs. When the pool\'s queue is full the answer is 503 with `Retry-After` at once.',
      querystring: Type.Object({ n: Type.Integer({ minimum: 2, maximum: 50_000_000, default: 1_000_000 }) }),
      response: {
        200: Type.Object({ n: Type.Integer(), result: Type.Integer({ description: 'How many primes are below n' }), duration_ms: Type.Number() }),
        ...problemResponses(400, 503),
      },
    },
  }, async (request, reply) => {
    const { n } = request.query
    const started = performance.now()
    const result = await compute.countPrimes(n, abortOnDisconnect(reply))
    return { n, result, duration_ms: Math.round((performance.now() - started) * 10) / 10 }
  })
}
