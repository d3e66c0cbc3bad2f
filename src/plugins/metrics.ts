// GET /metrics in the Prometheus text format (prom-client): request durations by route and status,
// the process (CPU, memory, heap, event-loop delay, GC), and the state of what the service leans on,
// read at scrape time: worker-thread pools, upstream connection pools, PostgreSQL connections, the
// job queue and data set imports. One registry per app, so that tests can build many apps.
import type { preHandlerAsyncHookHandler } from 'fastify'
import fp from 'fastify-plugin'
import { collectDefaultMetrics, Gauge, Registry, type Metric } from 'prom-client'
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

  const durations = new RequestDurations(
    'http_request_duration_seconds',
    'Time from request to response, by route (the pattern, not the URL) and status.',
    [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
  )
  // The registry reads a metric through get(); the type names prom-client's four classes only.
  registry.registerMetric(durations as unknown as Metric)
  app.addHook('onResponse', (request, reply, done) => {
    durations.observe(request.method, request.routeOptions.url ?? 'unmatched', reply.statusCode, reply.elapsedTime / 1000)
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

interface Series { labels: { method: string, route: string, status_code: number }, counts: Float64Array, sum: number, count: number }

/**
 * The request-duration histogram, counted here and read by prom-client's registry like any of its
 * metrics (get(): name, help, type, values). prom-client's own Histogram, on every observe(),
 * hashes the label set into a string, checks every label and looks the bucket up by a number turned
 * into a property name: a few hundred ns, a measurable share of a small route. Here a series is
 * found by three keys the request already has (route pattern, method, status; no string is built),
 * and observing is a bucket search and three additions. The exposition text is the same, line for line.
 */
export class RequestDurations {
  readonly type = 'histogram'
  readonly aggregator = 'sum'
  readonly name: string
  readonly help: string
  readonly buckets: readonly number[]
  readonly #series = new Map<string, Map<string, Map<number, Series>>>()

  constructor (name: string, help: string, buckets: readonly number[]) {
    this.name = name
    this.help = help
    this.buckets = buckets
  }

  observe (method: string, route: string, statusCode: number, seconds: number): void {
    let byMethod = this.#series.get(route)
    if (byMethod === undefined) this.#series.set(route, byMethod = new Map<string, Map<number, Series>>())
    let byStatus = byMethod.get(method)
    if (byStatus === undefined) byMethod.set(method, byStatus = new Map<number, Series>())
    let series = byStatus.get(statusCode)
    if (series === undefined) {
      series = { labels: { method, route, status_code: statusCode }, counts: new Float64Array(this.buckets.length), sum: 0, count: 0 }
      byStatus.set(statusCode, series)
    }
    const bounds = this.buckets
    let bucket = 0
    while (bucket < bounds.length && seconds > bounds[bucket]!) bucket++
    if (bucket < bounds.length) series.counts[bucket]!++
    series.sum += seconds
    series.count++
  }

  async get (): Promise<{ name: string, help: string, type: 'histogram', aggregator: 'sum', values: Array<{ labels: Record<string, string | number>, value: number, metricName: string }> }> {
    const values: Array<{ labels: Record<string, string | number>, value: number, metricName: string }> = []
    for (const byMethod of this.#series.values()) {
      for (const byStatus of byMethod.values()) {
        for (const { labels, counts, sum, count } of byStatus.values()) {
          let cumulative = 0
          this.buckets.forEach((bound, index) => {
            cumulative += counts[index]!
            values.push({ labels: { le: bound, ...labels }, value: cumulative, metricName: `${this.name}_bucket` })
          })
          values.push({ labels: { le: '+Inf', ...labels }, value: count, metricName: `${this.name}_bucket` })
          values.push({ labels, value: sum, metricName: `${this.name}_sum` })
          values.push({ labels, value: count, metricName: `${this.name}_count` })
        }
      }
    }
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values }
  }

  reset (): void {
    this.#series.clear()
  }
}
