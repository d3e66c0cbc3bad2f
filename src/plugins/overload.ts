// Load shedding: when the process is past what it can serve well, a new request is answered at once
// with 503 `service-unavailable` and Retry-After, instead of joining a queue (the event loop's, the
// database pool's) where it would wait until its client gives up. Three signals:
// - requests in flight above CONCURRENCY_LIMIT (what bounds the wait for the database pool: the
//   pool takes them in turn, so the queue in front of it is never longer than this);
// - the mean event-loop delay over the last second (sampled by @fastify/under-pressure);
// - the V8 heap in use as a share of its limit (sampled by @fastify/under-pressure).
// Routes marked `config: { alwaysAnswer: true }` (/healthz, /readyz, /metrics) are never shed: an
// orchestrator must see a loaded process as alive, and /healthz does no work worth saving.
import { getHeapStatistics } from 'node:v8'
import underPressure from '@fastify/under-pressure'
import fp from 'fastify-plugin'
import { Problem } from '../lib/errors.ts'
import { declareProblemResponse } from '../lib/schemas.ts'

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Never shed this route under load. */
    alwaysAnswer?: boolean
  }
}

export interface OverloadOptions {
  /** Requests in flight in this process, the current one included. */
  inFlight: () => number
  concurrencyLimit: number
  maxEventLoopDelayMs: number
  maxHeapUsedPercent: number
}

const RETRY_AFTER_SECONDS = 1
// How often @fastify/under-pressure samples the event-loop delay and heap.
const SAMPLE_INTERVAL_MS = 1_000

export const overload = fp<OverloadOptions>(async (app, { inFlight, concurrencyLimit, maxEventLoopDelayMs, maxHeapUsedPercent }) => {
  app.addHook('onRoute', (route) => {
    if (route.config?.alwaysAnswer !== true) declareProblemResponse(route, 503)
  })

  // @fastify/under-pressure samples the event-loop delay and the heap; it is given no thresholds,
  // so it adds no hook of its own: that one read request.routeOptions (a getter that builds an
  // object per call) on every request. The one hook below checks all three signals and looks at
  // the route only for a request it is about to shed.
  await app.register(underPressure, { sampleInterval: SAMPLE_INTERVAL_MS })
  const maxHeapUsedBytes = maxHeapUsedPercent === 0 ? 0 : Math.floor(getHeapStatistics().heap_size_limit * maxHeapUsedPercent / 100)
  if (concurrencyLimit === 0 && maxEventLoopDelayMs === 0 && maxHeapUsedBytes === 0) return

  // The event-loop delay sampled while the app started (compiling every route's schemas, loading
  // modules) is start-up, not overload, and a process that says it listens must serve: that
  // signal counts from the first sample taken wholly after the app was ready.
  let loopDelayCountsFrom = Infinity
  app.addHook('onReady', async () => { loopDelayCountsFrom = performance.now() + 2 * SAMPLE_INTERVAL_MS })

  /** Why this process should not take a new request now, or undefined. */
  const reasonToShed = (): Problem | undefined => {
    if (concurrencyLimit > 0 && inFlight() > concurrencyLimit) {
      return new Problem('service-unavailable', `The server is handling its limit of ${concurrencyLimit} requests at once; retry shortly.`, { retryAfterSeconds: RETRY_AFTER_SECONDS })
    }
    const { eventLoopDelay, heapUsed } = app.memoryUsage()
    const overloaded = maxEventLoopDelayMs > 0 && eventLoopDelay > maxEventLoopDelayMs && performance.now() >= loopDelayCountsFrom
      ? 'its event loop is saturated'
      : maxHeapUsedBytes > 0 && heapUsed > maxHeapUsedBytes ? 'its memory is nearly exhausted' : undefined
    return overloaded === undefined ? undefined : new Problem('service-unavailable', `The server is overloaded (${overloaded}); retry shortly.`, { retryAfterSeconds: RETRY_AFTER_SECONDS })
  }
  // A callback hook: a rejected promise or an error reaches the app's error handler (problem+json, Retry-After).
  app.addHook('onRequest', (request, _reply, done) => {
    const problem = reasonToShed()
    if (problem !== undefined && request.routeOptions.config.alwaysAnswer !== true) done(problem)
    else done()
  })
})
