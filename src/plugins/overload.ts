// Load shedding: when the process is past what it can serve well, a new request is answered at once
// with 503 `service-unavailable` and Retry-After, instead of joining a queue (the event loop's, the
// database pool's) where it would wait until its client gives up. Three signals:
// - requests in flight above CONCURRENCY_LIMIT (what bounds the wait for the database pool: the
//   pool takes them in turn, so the queue in front of it is never longer than this);
// - the mean event-loop delay over the last second (@fastify/under-pressure);
// - the V8 heap in use as a share of its limit (@fastify/under-pressure).
// Routes marked `config: { alwaysAnswer: true }` (/healthz, /readyz, /metrics) are never shed: an
// orchestrator must see a loaded process as alive, and /healthz does no work worth saving.
import { getHeapStatistics } from 'node:v8'
import underPressure from '@fastify/under-pressure'
import type { FastifyRequest } from 'fastify'
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
  const exempt = (request: FastifyRequest): boolean => request.routeOptions.config.alwaysAnswer === true
  app.addHook('onRoute', (route) => {
    if (route.config?.alwaysAnswer !== true) declareProblemResponse(route, 503)
  })

  if (concurrencyLimit > 0) {
    app.addHook('onRequest', (request, _reply, done) => {
      if (inFlight() > concurrencyLimit && !exempt(request)) {
        done(new Problem('service-unavailable', `The server is handling its limit of ${concurrencyLimit} requests at once; retry shortly.`, { retryAfterSeconds: RETRY_AFTER_SECONDS }))
        return
      }
      done()
    })
  }

  // The event-loop delay sampled while the app started (compiling every route's schemas, loading
  // modules) is start-up, not overload, and a process that says it listens must serve: that
  // signal counts from the first sample taken wholly after the app was ready.
  let loopDelayCountsFrom = Infinity
  app.addHook('onReady', async () => { loopDelayCountsFrom = performance.now() + 2 * SAMPLE_INTERVAL_MS })

  const reasons: Record<string, string> = {
    eventLoopDelay: 'its event loop is saturated',
    heapUsedBytes: 'its memory is nearly exhausted',
  }
  await app.register(underPressure, {
    maxEventLoopDelay: maxEventLoopDelayMs,
    sampleInterval: SAMPLE_INTERVAL_MS,
    maxHeapUsedBytes: maxHeapUsedPercent === 0 ? 0 : Math.floor(getHeapStatistics().heap_size_limit * maxHeapUsedPercent / 100),
    // Called only while a threshold is crossed. A rejected promise reaches the app's error handler
    // (problem+json, Retry-After); undefined lets the request through.
    pressureHandler: (request: FastifyRequest, _reply: unknown, type: string) => {
      if (exempt(request) || (type === 'eventLoopDelay' && performance.now() < loopDelayCountsFrom)) return undefined
      return Promise.reject(new Problem('service-unavailable', `The server is overloaded (${reasons[type] ?? type}); retry shortly.`, { retryAfterSeconds: RETRY_AFTER_SECONDS }))
    },
  })
})
