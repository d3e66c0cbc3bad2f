// Builds the real app (buildApp) on the real resources (openResources) and a test database, and
// closes them after the test file in the order a server does: the app, then the resources, then
// the database (dropped).
import { Writable } from 'node:stream'
import { pino, type Logger } from 'pino'
import { buildApp, type App } from '../../src/app.ts'
import { loadConfig, type Config } from '../../src/config.ts'
import type { Database } from '../../src/db/database.ts'
import type { Sql } from '../../src/db/pool.ts'
import { openResources, type Resources } from '../../src/resources.ts'
import type { CatalogStore } from '../../src/routes/products/schemas.ts'
import { openTestDatabase, type Cleanup } from './database.ts'
import { TEST_DEFAULTS } from './defaults.ts'

export interface TestApp extends Omit<Resources, 'close'> { app: App, databaseUrl: string, config: Config }

export interface TestAppOptions {
  /** A database the caller owns (shared with another app of the file); else a fresh one, dropped after. */
  sql?: Sql
  databaseUrl?: string
  /** Run the job worker in the test process (imports, statistics, welcome emails). */
  worker?: boolean
  /** false: the caller adds routes before calling app.ready(). */
  ready?: boolean
  logger?: Logger
  /** A store the caller opened and closes (the MongoDB one); default: PostgreSQL on the test database. */
  catalog?: CatalogStore
}

export async function buildTestApp (t: Cleanup, env: Record<string, string> = {}, options: TestAppOptions = {}): Promise<TestApp> {
  // The test databases come migrated from the template; MONGODB_URL is the test's to give.
  const config = loadConfig({ LOG_LEVEL: 'silent', ...TEST_DEFAULTS, ...env })
  // Quiet, except for what a test run must show: an error no test expects (an unhandled one is a
  // 500 whose body only carries the request id) goes to stderr with its stack, so a failure seen
  // once in CI can be read there. TEST_LOG_LEVEL=debug shows more.
  const logger = options.logger ?? pino({ level: process.env.TEST_LOG_LEVEL ?? (config.logLevel === 'silent' ? 'error' : config.logLevel) }, pino.destination({ fd: 2, sync: true }))
  // The pool a server opens for requests (db/database.ts): the same bounded wait and statement timeout.
  const database: Database = options.sql === undefined
    ? await openTestDatabase({ max: config.database.poolMax, queueTimeoutMs: config.database.poolWaitMs, statementTimeoutMs: config.database.queryTimeoutMs })
    : { sql: options.sql, url: options.databaseUrl!, isEmbedded: false, close: async () => {}, [Symbol.asyncDispose]: async () => {} }
  const resources = await openResources(config, logger, { worker: options.worker ?? false, database, catalog: options.catalog, prepare: false })
  const app = await buildApp(config, resources)
  t.after(async () => {
    try {
      await app.close()
    } finally {
      await resources.close()
    }
  })
  if (options.ready !== false) await app.ready()
  return { ...resources, app, databaseUrl: database.url, config }
}

/** Listens on a free loopback port; returns the base URL. For tests that need real sockets. */
export async function listen (app: App): Promise<string> {
  return await app.listen({ port: 0, host: '127.0.0.1' })
}

/** A logger that keeps what it logs at info and above: for a test that nothing was logged as an error (warnings depend on the machine: a blocked event loop is one). */
export function recordingLogger (): { logger: Logger, errors: () => string[] } {
  const entries: Array<{ level: number, msg: string }> = []
  const logger = pino({ level: 'info' }, new Writable({ write (line: Buffer, _encoding, done) { entries.push(JSON.parse(line.toString())); done() } }))
  return { logger, errors: () => entries.filter((entry) => entry.level >= 50).map((entry) => entry.msg) }
}
