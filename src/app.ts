// buildApp(config, deps): the Fastify instance with every plugin and route registered, not yet
// listening. server.ts listens on it; tests build the same app and inject requests or listen on
// port 0. Registration is explicit so the order (error handling, docs, then routes) is visible.
import { randomUUID } from 'node:crypto'
import type { AddressInfo } from 'node:net'
import Fastify, { type FastifyBaseLogger, type FastifyInstance, type FastifyReply, type FastifyRequest, type RawReplyDefaultExpression, type RawRequestDefaultExpression, type RawServerDefault } from 'fastify'
import cors from '@fastify/cors'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import type { Config } from './config.ts'
import type { ComputePools } from './compute/pools.ts'
import type { Sql } from './db/pool.ts'
import type { JobQueue } from './jobs/queue.ts'
import type { Upstreams } from './upstream/upstreams.ts'
import type { CatalogStore } from './routes/products/schemas.ts'
import { answerClientError, asProblem, internalErrorBody, Problem, problemBody, ProblemSchema } from './lib/errors.ts'
import { createMethodIndex } from './lib/allowed-methods.ts'
import { createLoopWatchdog } from './lib/loop-watchdog.ts'
import { OneLinePerRequest } from './lib/request-log.ts'
import { metrics } from './plugins/metrics.ts'
import { overload } from './plugins/overload.ts'
import { rateLimits } from './plugins/rate-limits.ts'
import { openApi } from './plugins/openapi.ts'
import { healthRoutes } from './routes/health/routes.ts'
import { dashboardRoutes } from './routes/dashboard/routes.ts'
import { problemRoutes } from './routes/problems/routes.ts'
import { productRoutes } from './routes/products/routes.ts'
import { createRegistrationsRepository } from './routes/register/repository.ts'
import { registrationRoutes } from './routes/register/routes.ts'
import { datasetRoutes } from './routes/datasets/routes.ts'
import type { DatasetService } from './routes/datasets/service.ts'
import type { SqlQueries } from './routes/datasets/sql-queries.ts'
import { sqlQueryRoutes } from './routes/datasets/sql-routes.ts'
import { createApiKeysRepository } from './auth/api-keys.ts'
import { createDatabaseActivityRepository } from './db/activity.ts'
import { requireApiKey } from './auth/require-key.ts'
import { sampleRoutes } from './routes/sample-upstreams/routes.ts'
import { upstreamRoutes } from './routes/upstream/routes.ts'
import { createUsersRepository } from './routes/users/repository.ts'
import { userRoutes } from './routes/users/routes.ts'
import { waitRoutes } from './routes/waits/routes.ts'
import { webRoutes } from './web/routes.ts'

/** What the routes lean on, opened by the caller (resources.ts): the app opens and closes none of it. */
export interface AppDeps {
  sql: Sql
  compute: ComputePools
  jobs: JobQueue
  upstreams: Upstreams
  /** The product catalog (PostgreSQL or MongoDB). */
  catalog: CatalogStore
  datasets: DatasetService
  /** Read-only SQL over data sets; undefined when SQL_QUERIES is off. */
  sqlQueries?: SqlQueries
  logger: FastifyBaseLogger
}

export type App = FastifyInstance<RawServerDefault, RawRequestDefaultExpression, RawReplyDefaultExpression, FastifyBaseLogger, TypeBoxTypeProvider>

// A client-supplied request id is echoed only when it is short and plain, so it cannot forge or
// flood log lines.
const REQUEST_ID = /^[\w.:-]{1,128}$/
// Request bodies parsed in memory (JSON) are small in this API; the data set upload routes stream
// theirs and enforce DATASET_MAX_BYTES themselves.
const BODY_LIMIT_BYTES = 64 * 1024
// How often Node checks connections against the headers and request deadlines (its default, 30 s,
// would let a slow client outlive HEADERS_TIMEOUT_MS by that much).
const TIMEOUT_CHECK_INTERVAL_MS = 1_000

export async function buildApp (config: Config, deps: AppDeps): Promise<App> {
  const app = Fastify({
    loggerInstance: deps.logger,
    logController: new OneLinePerRequest(),
    genReqId: (request) => {
      const sent = request.headers['x-request-id']
      return typeof sent === 'string' && REQUEST_ID.test(sent) ? sent : randomUUID()
    },
    // verbose: each validation error carries the schema that failed, from which lib/errors.ts words
    // its message; errorMessage is that message where a schema gives its own (lib/schemas.ts).
    ajv: { customOptions: { removeAdditional: false, verbose: true, keywords: ['errorMessage'] } },
    clientErrorHandler: answerClientError,
    trustProxy: config.http.trustProxy.length === 0 ? false : config.http.trustProxy,
    bodyLimit: BODY_LIMIT_BYTES,
    http: { headersTimeout: config.http.headersTimeoutMs, connectionsCheckingInterval: Math.min(TIMEOUT_CHECK_INTERVAL_MS, config.http.headersTimeoutMs) },
    requestTimeout: config.http.requestTimeoutMs,
    keepAliveTimeout: config.http.keepAliveTimeoutMs,
    // The router's own errors (an undecodable URL, a path parameter over 100 characters) come
    // before any route and bypass setErrorHandler; they are bad input like any other.
    frameworkErrors: (error, request, untypedReply) => {
      const reply = untypedReply as FastifyReply // typed for the default route generics, which have no 400
      const detail = error.code === 'FST_ERR_MAX_PARAM_LENGTH' ? 'A path parameter is too long.' : 'The URL could not be decoded.'
      void reply.code(400).header('x-request-id', request.id).type('application/problem+json')
        .send(problemBody(new Problem('bad-request', detail), request.id, request.url))
    },
  }).withTypeProvider<TypeBoxTypeProvider>()

  app.addSchema(ProblemSchema)
  const watchdog = createLoopWatchdog<FastifyRequest>({
    thresholdMs: config.overload.eventLoopBlockWarnMs,
    log: deps.logger,
    describe: (request) => ({ request_id: request.id, method: request.method, route: request.routeOptions.url ?? 'unmatched' }),
  })
  // Compiling every route's schemas blocks the loop before the app is ready: start-up, not a block
  // any request suffers. The watch starts once that is done.
  app.addHook('onReady', async () => { watchdog.start() })
  app.addHook('onClose', async () => { watchdog.stop() })
  // A callback hook, not an async one: this runs on every request, and a promise per request shows.
  // Nothing here reads request.routeOptions (a getter that builds an object of 13 fields per call):
  // the watchdog describes a request only when it logs a block.
  app.addHook('onRequest', (request, reply, done) => {
    reply.header('x-request-id', request.id)
    // 'close' comes once the response is sent or the client is gone: the request is no longer a
    // suspect. A response closes once, so `on` will do (`once` wraps and later removes the listener).
    reply.raw.on('close', watchdog.track(request))
    done()
  })

  const methods = createMethodIndex()
  app.addHook('onRoute', (route) => { methods.add(route.method, route.url) })
  /** No route matched: 405 with Allow when the path exists for other methods, else 404. */
  const routeMiss = (request: FastifyRequest, reply: FastifyReply): Problem => {
    const path = request.url.split('?')[0]!
    const allowed = methods.allowed(path)
    if (allowed.length === 0) return new Problem('not-found', `No route answers ${request.method} ${path}.`)
    void reply.header('allow', allowed.join(', '))
    return new Problem('method-not-allowed', `${path} does not answer ${request.method}; it answers ${allowed.join(', ')}.`)
  }

  app.setErrorHandler(async (error, request, reply) => {
    // An unmatched request whose body could not be read (a QUERY without Content-Type…) is still a miss.
    const problem = request.is404 && !(error instanceof Problem) ? routeMiss(request, reply) : asProblem(error)
    // The path, not the whole URL: a query string may be 100 KB of hostile text, and echoing it in
    // every refusal only makes the answer larger (the request id names the occurrence).
    const instance = request.url.split('?')[0]!
    // The client went away first (its request's signal stopped the work): nobody reads this
    // answer, and it is no fault of the service, so no error or warning in the log.
    if (reply.raw.destroyed) {
      request.log.info({ err: error }, 'the client left before the response')
      return await reply.code(problem?.status ?? 500).type('application/problem+json').send(problem === undefined ? internalErrorBody(request.id, instance) : problemBody(problem, request.id, instance))
    }
    if (problem === undefined) {
      request.log.error({ err: error }, 'unhandled error')
      return await reply.code(500).type('application/problem+json').send(internalErrorBody(request.id, instance))
    }
    // Load shedding is expected under overload and counted in /metrics: a log line per shed request
    // would add to the overload it answers.
    if (problem.status >= 500 && problem.code !== 'service-unavailable') request.log.warn({ err: error }, problem.message)
    if (problem.retryAfterSeconds !== undefined) reply.header('retry-after', String(problem.retryAfterSeconds))
    if (problem.status === 401) reply.header('www-authenticate', 'Bearer realm="data-api"')
    return await reply.code(problem.status).type('application/problem+json').send(problemBody(problem, request.id, instance))
  })
  app.setNotFoundHandler(async (request, reply) => { throw routeMiss(request, reply) })

  const origins = config.http.corsOrigins
  if (origins.length > 0) {
    await app.register(cors, {
      origin: origins.includes('*') ? '*' : origins,
      methods: ['GET', 'HEAD', 'POST', 'PATCH', 'DELETE'],
      allowedHeaders: ['authorization', 'content-type', 'idempotency-key', 'x-request-id'],
      exposedHeaders: ['location', 'link', 'retry-after', 'server-timing', 'x-request-id'],
      maxAge: 600,
    })
  }
  await app.register(overload, {
    inFlight: watchdog.inFlight,
    concurrencyLimit: config.overload.concurrencyLimit,
    maxEventLoopDelayMs: config.overload.eventLoopDelayMs,
    maxHeapUsedPercent: config.overload.heapUsedPercent,
  })
  await app.register(rateLimits, config.rateLimits)
  await app.register(openApi)
  const requireKey = requireApiKey(createApiKeysRepository(deps.sql))
  await app.register(metrics, {
    database: createDatabaseActivityRepository(deps.sql),
    compute: deps.compute,
    jobs: deps.jobs,
    upstreams: deps.upstreams,
    datasets: deps.datasets,
    // What data sets exist is as private as the data sets themselves.
    requireKey: config.datasets.requireKeyForReads ? requireKey : undefined,
  })
  await app.register(healthRoutes, { sql: deps.sql, catalog: deps.catalog, readyTimeoutMs: config.readyTimeoutMs })
  await app.register(problemRoutes)
  const users = createUsersRepository(deps.sql)
  await app.register(userRoutes, { users })
  await app.register(dashboardRoutes, { sql: deps.sql, users, partTimeoutMs: config.dashboard.partTimeoutMs, poolSize: config.database.poolMax })
  await app.register(waitRoutes, { compute: deps.compute })
  await app.register(registrationRoutes, { registrations: createRegistrationsRepository(deps.sql, deps.jobs) })
  await app.register(datasetRoutes, { datasets: deps.datasets, requireKey, requireKeyForReads: config.datasets.requireKeyForReads, maxBytes: config.datasets.maxBytes })
  const { sqlQueries } = config.datasets
  await app.register(sqlQueryRoutes, { queries: deps.sqlQueries, requireKey, requireKeyForReads: config.datasets.requireKeyForReads, maxRows: sqlQueries.maxRows, maxBytes: sqlQueries.maxBytes })
  await app.register(upstreamRoutes, { upstreams: deps.upstreams, timeoutMs: config.upstreams.timeoutMs, dataTimeoutMs: config.upstreams.dataTimeoutMs })
  if (config.upstreams.urls === undefined && config.upstreams.sample) {
    await app.register(sampleRoutes)
    // The samples are called over real HTTP, so their origin is wherever this server listens.
    app.addHook('onListen', async () => { deps.upstreams.bindSelf(app.server.address() as AddressInfo) })
  }
  await app.register(productRoutes, { catalog: deps.catalog })
  await app.register(webRoutes)
  return app
}
