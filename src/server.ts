// Runs the service: open the database (embedded or DATABASE_URL), migrate, build the app, listen;
// and take it down in order on SIGTERM/SIGINT. buildApp knows nothing of processes or signals.
// `serve --processes N` (src/cluster.ts) runs startServer in each of its worker processes.
import cluster from 'node:cluster'
import type { Logger } from 'pino'
import { buildApp, type App } from './app.ts'
import type { Config } from './config.ts'
import { openResources } from './resources.ts'
import type { Database } from './db/database.ts'

// How often a shutting-down server looks for keep-alive connections whose request is done.
const IDLE_CHECK_MS = 50

export interface RunningServer {
  readonly app: App
  readonly database: Database
  readonly url: string
  /** Stops accepting, lets in-flight requests and jobs finish within SHUTDOWN_GRACE_MS, closes everything. */
  close: () => Promise<void>
}

/** Opens the resources (resources.ts), builds the app on them and listens; closing stops the app first. */
export async function startServer (config: Config, logger: Logger, { worker = true } = {}): Promise<RunningServer> {
  const resources = await openResources(config, logger, {
    worker,
    databaseOptions: { requests: { queueTimeoutMs: config.database.poolWaitMs, statementTimeoutMs: config.database.queryTimeoutMs } },
  })
  try {
    const app = await buildApp(config, resources)
    const url = await app.listen({ port: config.http.port, host: config.http.host })
    return {
      app,
      database: resources.database,
      url,
      close: async () => {
        try {
          await closeApp(app, config.shutdownGraceMs, logger)
        } finally {
          await resources.close()
        }
      },
    }
  } catch (error) {
    await resources.close()
    throw error
  }
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
  exitOnSignal(server.close, logger, config.shutdownGraceMs)
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
  // Each import holds two connections (its transaction, and reads of the stored upload).
  const resources = await openResources(config, logger, {
    worker: true,
    databaseOptions: { max: config.jobs.workerConcurrency + 2 * config.datasets.importConcurrency, attach: true },
  })
  exitOnSignal(resources.close, logger, config.shutdownGraceMs)
}
