// Runs the service: open the database (embedded or DATABASE_URL), migrate, build the app, listen;
// and take it down in order on SIGTERM/SIGINT. buildApp knows nothing of processes or signals.
// `serve --workers N` (src/cluster.ts) runs startServer in each of its worker processes.
import cluster from 'node:cluster'
import type { Logger } from 'pino'
import { buildApp, type App } from './app.ts'
import type { Config } from './config.ts'
import { openDatabase, type Database } from './db/database.ts'
import { migrate } from './db/migrate.ts'
import { seedDemo } from './db/seed.ts'
import { createComputePools } from './compute/pools.ts'
import { startJobQueue, type JobQueue } from './jobs/queue.ts'
import { openCatalogStore } from './stores/catalog.ts'
import { createConfiguredMailer, startWorker } from './jobs/worker.ts'
import { seedDemoDataset } from './routes/datasets/sample.ts'
import { createConfiguredDatasetService } from './routes/datasets/service.ts'
import { createUpstreams } from './upstream/upstreams.ts'

// How often a shutting-down server looks for keep-alive connections whose request is done.
const IDLE_CHECK_MS = 50

export interface RunningServer {
  readonly app: App
  readonly database: Database
  readonly url: string
  /** Stops accepting, lets in-flight requests and jobs finish within SHUTDOWN_GRACE_MS, closes everything. */
  close: () => Promise<void>
}

/**
 * Opens each resource in dependency order and registers its closing on a stack, so that shutdown
 * (or a failed start) closes them in reverse: HTTP server, job queue, mailer, catalog store, thread
 * pools, database.
 */
export async function startServer (config: Config, logger: Logger, { worker = true } = {}): Promise<RunningServer> {
  await using resources = new AsyncDisposableStack()
  const database = await openDatabase(config, logger, { requests: { queueTimeoutMs: config.DATABASE_POOL_WAIT_MS, statementTimeoutMs: config.QUERY_TIMEOUT_MS } })
  resources.defer(async () => { await database.close() })
  const compute = createComputePools(config)
  resources.defer(async () => { await compute.close() })

  await migrateLogged(database, logger)
  const catalog = await openCatalogStore(config, database.sql, logger)
  resources.defer(async () => { await catalog.close() })
  logger.info({ store: catalog.kind }, 'catalog store opened')

  const jobs = await startJobs(resources, config, logger, database, { worker })
  await seedDemoData(database, jobs, config, logger)

  const upstreams = createUpstreams(config)
  resources.defer(async () => { await upstreams.close() })

  const app = await buildApp(config, { sql: database.sql, compute, jobs, catalog, upstreams, logger })
  resources.defer(async () => { await closeApp(app, config.SHUTDOWN_GRACE_MS, logger) })
  const url = await app.listen({ port: config.PORT, host: config.HOST })

  const owned = resources.move() // started: from here on, closing is the caller's call
  return { app, database, url, close: async () => { await owned.disposeAsync() } }
}

/** Applies pending migrations (under an advisory lock: processes starting together are safe). */
export async function migrateLogged (database: Database, logger: Logger): Promise<void> {
  const applied = await migrate(database.sql)
  if (applied.length > 0) logger.info({ applied }, 'migrations applied')
}

/**
 * The demo data, into a database we started ourselves (never into a DATABASE_URL one), once: a
 * seed_log row guards each part. `serve --workers` runs this in the primary, before forking.
 */
export async function seedDemoData (database: Database, jobs: JobQueue, config: Config, logger: Logger): Promise<void> {
  if (!database.isEmbedded || !config.SEED_DEMO) return
  if (await seedDemo(database.sql)) logger.info('demo data loaded (SEED_DEMO=false turns this off)')
  if (await seedDemoDataset(database.sql, createConfiguredDatasetService(config, { sql: database.sql, jobs }))) logger.info('demo data set loaded: GET /datasets')
}

async function closeApp (app: App, graceMs: number, logger: Logger): Promise<void> {
  // app.close() stops accepting, answers 503 to new requests on open keep-alive connections and
  // waits for in-flight ones; past the grace period their connections are cut. It closes only the
  // connections idle when it is called: one whose request is answered later would stay open, and
  // the shutdown wait for it the whole grace period, so idle ones are closed as they appear.
  const closeIdle = setInterval(() => { app.server.closeIdleConnections() }, IDLE_CHECK_MS)
  const forceClose = setTimeout(() => {
    logger.warn({ graceMs }, 'grace period over; closing the remaining connections')
    app.server.closeAllConnections()
  }, graceMs)
  try {
    await app.close()
  } finally {
    clearInterval(closeIdle)
    clearTimeout(forceClose)
  }
}

/** `data-api serve`: start, then shut down gracefully on SIGTERM/SIGINT. */
export async function serve (config: Config, logger: Logger, options: { worker?: boolean } = {}): Promise<void> {
  const server = await startServer(config, logger, options)
  logger.info({ url: server.url, docs: `${server.url}/docs` }, 'data-api listening')
  exitOnSignal(server.close, logger, config.SHUTDOWN_GRACE_MS)
}

/** Starts the shutdown of exitOnSignal for another reason; exits with `exitCode` once closed cleanly. */
export type ShutDown = (reason: Record<string, unknown>, exitCode: number, options?: { mayForce?: boolean }) => void

/**
 * The first SIGTERM/SIGINT (or a crash) closes everything and exits: 0 when clean, 1 otherwise.
 * npm passes a terminal's Ctrl-C on to its child, so one key press can arrive twice: only a signal
 * more than a second after the first means "stop now". A hard deadline bounds the whole shutdown.
 * Returns the same shutdown, for callers that have reasons of their own to stop.
 */
export function exitOnSignal (close: () => Promise<void>, logger: Logger, graceMs: number): ShutDown {
  let firstSignalAt: number | undefined
  const shutDown: ShutDown = (reason, exitCode, { mayForce = true } = {}) => {
    if (firstSignalAt !== undefined) {
      if (mayForce && Date.now() - firstSignalAt > 1000) {
        logger.warn(reason, 'second signal: exiting now')
        process.exit(1)
      }
      return
    }
    firstSignalAt = Date.now()
    logger.info(reason, 'shutting down')
    setTimeout(() => {
      logger.error('shutdown did not finish in time: exiting')
      process.exit(1)
    }, graceMs + 40_000).unref()
    close().then(() => {
      logger.info('shut down cleanly')
      process.exit(exitCode)
    }, (error: unknown) => {
      logger.error({ err: error }, 'shutdown failed')
      process.exit(1)
    })
  }
  process.on('SIGTERM', (signal) => { shutDown({ signal }, 0) })
  process.on('SIGINT', (signal) => { shutDown({ signal }, 0) })
  process.on('uncaughtException', (error) => {
    logger.fatal({ err: error }, 'uncaught exception')
    shutDown({ error: error.message }, 1)
  })
  // `npm start` does not pass a SIGTERM sent to npm on to us: npm exits and we are re-parented.
  // Treat losing the npm parent as the SIGTERM it swallowed, so no server (and no PostgreSQL)
  // outlives the `npm start` it belongs to. (A cluster worker's parent is the primary, not npm;
  // node:cluster ends the worker when the primary is gone.)
  if (process.env.npm_lifecycle_event !== undefined && cluster.isPrimary) {
    const npmPid = process.ppid
    setInterval(() => {
      if (process.ppid !== npmPid) shutDown({ reason: 'npm (the parent process) exited' }, 0, { mayForce: false })
    }, 250).unref()
  }
  return shutDown
}

/** `data-api worker`: the job worker alone, on DATABASE_URL or the embedded database. */
export async function work (config: Config, logger: Logger): Promise<void> {
  await using resources = new AsyncDisposableStack()
  // Each import holds two connections (its transaction, and reads of the stored upload).
  const database = await openDatabase(config, logger, { max: config.WORKER_CONCURRENCY + 2 * config.DATASET_IMPORT_CONCURRENCY, attach: true })
  resources.defer(async () => { await database.close() })
  await migrate(database.sql)
  await startJobs(resources, config, logger, database, { worker: true })
  const owned = resources.move()
  exitOnSignal(async () => { await owned.disposeAsync() }, logger, config.SHUTDOWN_GRACE_MS)
}

/** The job queue (enqueueing) and optionally a worker on it, their closing registered on `resources`. */
async function startJobs (resources: AsyncDisposableStack, config: Config, logger: Logger, database: Database, { worker }: { worker: boolean }): Promise<JobQueue> {
  const mailer = createConfiguredMailer(config, logger)
  resources.defer(() => { mailer.close() })
  const jobs = await startJobQueue(database.url, config, logger)
  // Deferred after the mailer, so it runs before it: running jobs finish before the mailer closes.
  resources.defer(async () => { await jobs.stop(config.SHUTDOWN_GRACE_MS) })
  if (worker) await startWorker(config, { sql: database.sql, jobs, mailer, logger })
  return jobs
}
