// Runs the service: open the database (embedded or DATABASE_URL), migrate, build the app, listen;
// and take it down in order on SIGTERM/SIGINT. buildApp knows nothing of processes or signals.
import type { Logger } from 'pino'
import { buildApp, type App } from './app.ts'
import type { Config } from './config.ts'
import { openDatabase, type Database } from './db/database.ts'
import { migrate } from './db/migrate.ts'
import { seedDemo } from './db/seed.ts'
import { createComputePools } from './compute/pools.ts'

export interface RunningServer {
  readonly app: App
  readonly database: Database
  readonly url: string
  /** Stops accepting, lets in-flight requests finish within SHUTDOWN_GRACE_MS, closes everything. */
  close: () => Promise<void>
}

export async function startServer (config: Config, logger: Logger): Promise<RunningServer> {
  const database = await openDatabase(config, logger)
  const compute = createComputePools(config)
  let app: App | undefined
  const closeAll = async (): Promise<void> => {
    await compute.close()
    await database.close()
  }
  try {
    const applied = await migrate(database.sql)
    if (applied.length > 0) logger.info({ applied }, 'migrations applied')
    if (database.isEmbedded && config.SEED_DEMO && await seedDemo(database.sql)) logger.info('demo data loaded (SEED_DEMO=false turns this off)')
    app = await buildApp(config, { sql: database.sql, compute, logger })
    const url = await app.listen({ port: config.PORT, host: config.HOST })
    const running = app
    return { app: running, database, url, close: async () => { await closeServer(running, closeAll, config.SHUTDOWN_GRACE_MS, logger) } }
  } catch (error) {
    await app?.close()
    await closeAll()
    throw error
  }
}

async function closeServer (app: App, closeDependencies: () => Promise<void>, graceMs: number, logger: Logger): Promise<void> {
  // app.close() stops accepting, answers 503 to new requests on open keep-alive connections and
  // waits for in-flight ones; past the grace period their connections are cut.
  const forceClose = setTimeout(() => {
    logger.warn({ graceMs }, 'grace period over; closing the remaining connections')
    app.server.closeAllConnections()
  }, graceMs)
  try {
    await app.close()
  } finally {
    clearTimeout(forceClose)
    await closeDependencies()
  }
}

/** `data-api serve`: start, then shut down gracefully on SIGTERM/SIGINT. */
export async function serve (config: Config, logger: Logger): Promise<void> {
  const server = await startServer(config, logger)
  logger.info({ url: server.url, docs: `${server.url}/docs` }, 'data-api listening')
  exitOnSignal(server.close, logger, config.SHUTDOWN_GRACE_MS)
}

/**
 * The first SIGTERM/SIGINT (or a crash) closes everything and exits: 0 when clean, 1 otherwise.
 * npm passes a terminal's Ctrl-C on to its child, so one key press can arrive twice: only a signal
 * more than a second after the first means "stop now". A hard deadline bounds the whole shutdown.
 */
export function exitOnSignal (close: () => Promise<void>, logger: Logger, graceMs: number): void {
  let firstSignalAt: number | undefined
  const shutDown = (reason: Record<string, unknown>, exitCode: number, { mayForce = true } = {}): void => {
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
  // outlives the `npm start` it belongs to.
  if (process.env.npm_lifecycle_event !== undefined) {
    const npmPid = process.ppid
    setInterval(() => {
      if (process.ppid !== npmPid) shutDown({ reason: 'npm (the parent process) exited' }, 0, { mayForce: false })
    }, 250).unref()
  }
}
