// GET /metrics in the Prometheus text format (prom-client): request durations by route and status,
// the process (CPU, memory, heap, event-loop delay, GC), and the state of what the service leans on,
// read at scrape time: worker-thread pools, upstream connection pools, PostgreSQL connections, the
// job queue and data set imports. One registry per app, so that tests can build many apps.
import type { preHandlerAsyncHookHandler } from 'fastify'
import fp from 'fastify-plugin'
import { collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client'
import type { ComputePools } from '../compute/pools.ts'
import type { DatabaseActivityRepository } from '../db/activity.ts'
import type { JobQueue } from '../jobs/queue.ts'
import { withDeadline } from '../lib/concurrency.ts'
import { problemResponses } from '../lib/schemas.ts'
import type { Upstreams } from '../upstream/upstreams.ts'

export interface MetricsOptions {
  database: DatabaseActivityRepository
  compute: ComputePools
  jobs: JobQueue
  upstreams: Upstreams
  /** Data sets by status, with their rows (the data-set area answers it). */
  datasets: { countsByStatus: (signal: AbortSignal) => Promise<Array<{ status: string, count: number, rows: number }>> }
  /** When reads need an API key, so does /metrics (Prometheus sends one as `authorization: credentials`). */
  requireKey?: preHandlerAsyncHookHandler
}

// Reading the database for a scrape must never hang the scrape: past this, those gauges are stale.
const SCRAPE_QUERY_TIMEOUT_MS = 1_000

// fastify-plugin: the onResponse hook must see every route of the app, not only this plugin's.
export const metrics = fp<MetricsOptions>(async (app, { database, compute, jobs, upstreams, datasets, requireKey }) => {
  const registry = new Registry()
  collectDefaultMetrics({ register: registry, eventLoopMonitoringPrecision: 10 })

  const duration = new Histogram({
    name: 'http_request_duration_seconds',
    help: 'Time from request to response, by route (the pattern, not the URL) and status.',
    labelNames: ['method', 'route', 'status_code'],
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  })
  // One child per (method, route, status), kept: prom-client would otherwise build and hash the
  // label set on every request, a measurable share of a small route's time.
  const children = new Map<string, { observe: (value: number) => void }>()
  app.addHook('onResponse', (request, reply, done) => {
    const route = request.routeOptions.url ?? 'unmatched'
    const key = `${request.method} ${reply.statusCode} ${route}`
    let child = children.get(key)
    if (child === undefined) {
      child = duration.labels({ method: request.method, route, status_code: reply.statusCode })
      children.set(key, child)
    }
    child.observe(reply.elapsedTime / 1000)
    done()
  })

  new Gauge({
    name: 'data_api_pool_threads',
    help: 'Worker threads alive, queued tasks and completed tasks of each thread pool.',
    labelNames: ['pool', 'measure'],
    registers: [registry],
    collect () {
      for (const [pool, stats] of Object.entries(compute.stats())) {
        this.set({ pool, measure: 'threads' }, stats.threads)
        this.set({ pool, measure: 'queued' }, stats.queued)
        this.set({ pool, measure: 'completed' }, stats.completed)
      }
    },
  })
  new Gauge({
    name: 'data_api_upstream_connections',
    help: 'Connections of the keep-alive pool of each upstream origin, by state; pending counts requests waiting for one.',
    labelNames: ['origin', 'state'],
    registers: [registry],
    collect () {
      this.reset()
      for (const { origin, ...states } of upstreams.stats()) {
        for (const [state, value] of Object.entries(states)) this.set({ origin, state }, value)
      }
    },
  })
  new Gauge({
    name: 'data_api_database_connections',
    help: 'PostgreSQL connections of data-api processes (all of them, from pg_stat_activity), by state.',
    labelNames: ['state'],
    registers: [registry],
    async collect () {
      const rows = await withDeadline(SCRAPE_QUERY_TIMEOUT_MS, undefined, async (signal) => await database.connectionsByState(signal))
      this.reset()
      for (const { state, count } of rows) this.set({ state }, count)
    },
  })
  new Gauge({
    name: 'data_api_jobs',
    help: 'Jobs of the durable queue: queued (including retries waiting), active, failed.',
    labelNames: ['state'],
    registers: [registry],
    async collect () {
      const { queued, active, failed } = await jobs.counts()
      this.set({ state: 'queued' }, queued)
      this.set({ state: 'active' }, active)
      this.set({ state: 'failed' }, failed)
    },
  })
  new Gauge({
    name: 'data_api_datasets',
    help: 'Data sets by status (importing, ready, failed) and their rows.',
    labelNames: ['status', 'measure'],
    registers: [registry],
    async collect () {
      const rows = await withDeadline(SCRAPE_QUERY_TIMEOUT_MS, undefined, datasets.countsByStatus)
      this.reset()
      for (const { status, count, rows: total } of rows) {
        this.set({ status, measure: 'datasets' }, count)
        this.set({ status, measure: 'rows' }, total)
      }
    },
  })

  app.get('/metrics', {
    config: { alwaysAnswer: true },
    ...(requireKey !== undefined && { preHandler: requireKey }),
    schema: {
      tags: ['health'],
      summary: 'Prometheus metrics',
      response: {
        200: { description: 'Prometheus text format', content: { 'text/plain': { schema: { type: 'string' } } } },
        ...(requireKey !== undefined && problemResponses(401)),
      },
    },
  }, async (_request, reply) => {
    const text = await registry.metrics()
    return await reply.type(registry.contentType).send(text)
  })
}, { name: 'data-api-metrics' })
