// Every dependency of the service, opened in order onto one stack, so that a failed start closes
// what it opened and a shutdown closes everything in the reverse order: the database (embedded or
// DATABASE_URL) and its migrations, the thread pools, the catalog store, the mailer, the job queue
// (with this process's worker when it runs one: the areas hand it their task handlers), the
// listener for data-set changes (what keeps their metadata in memory true), the demo data of a first embedded start, the reader role and pool of
// SQL queries (SQL_QUERIES=true), and the upstream pools. `serve`, `worker`, the primary of
// `serve --processes`, the tests and the benchmark all open them here; buildApp takes them as they are.
import path from 'node:path'
import type { Logger } from 'pino'
import { createComputePools, type ComputePools } from './compute/pools.ts'
import type { Config } from './config.ts'
import { openDatabase, type Database, type OpenDatabaseOptions } from './db/database.ts'
import { listen } from './db/listener.ts'
import { migrate } from './db/migrate.ts'
import type { Sql } from './db/pool.ts'
import { seedOnce } from './db/seed-once.ts'
import { createMailer } from './jobs/mailer.ts'
import { startJobQueue, type JobQueue } from './jobs/queue.ts'
import { createDatasetTaskHandlers } from './routes/datasets/jobs.ts'
import { importDemoDataset } from './routes/datasets/sample.ts'
import { DATASET_CHANGED } from './routes/datasets/metadata-cache.ts'
import { createConfiguredDatasetService, type DatasetService } from './routes/datasets/service.ts'
import { openSqlQueries, type SqlQueries } from './routes/datasets/sql-queries.ts'
import { openCatalogStore } from './routes/products/catalog.ts'
import { insertSampleProducts } from './routes/products/postgres-catalog.ts'
import type { CatalogStore } from './routes/products/schemas.ts'
import { createWelcomeEmailHandler } from './routes/register/welcome-email.ts'
import { insertSampleUsers } from './routes/users/seed.ts'
import { createUpstreams, type Upstreams } from './upstream/upstreams.ts'

export interface Resources {
  readonly database: Database
  readonly sql: Sql
  readonly compute: ComputePools
  readonly catalog: CatalogStore
  readonly jobs: JobQueue
  readonly upstreams: Upstreams
  readonly datasets: DatasetService
  /** POST /datasets/sql's reader role and pool; undefined with SQL_QUERIES=false. */
  readonly sqlQueries?: SqlQueries
  readonly logger: Logger
  /** Runs the job worker in this process (the areas' task handlers on the queue); once. */
  startWorker: () => Promise<void>
  /** Closes everything in the reverse order of opening (the HTTP server is closed before, by its owner). */
  close: () => Promise<void>
}

export interface ResourceOptions {
  /** Run a job worker in this process (serve unless --no-worker, `data-api worker`). */
  worker: boolean
  /** Opened by the caller (a test's database) instead of from the configuration; closed with the rest. */
  database?: Database
  /** How to open the configured database (pool size, attaching to a running embedded server…). */
  databaseOptions?: OpenDatabaseOptions
  /** A store the caller opened and will close (a test's MongoDB store); else the configured one. */
  catalog?: CatalogStore
  /** Apply migrations and, on a first embedded start, load the demo data (default true). */
  prepare?: boolean
}

export async function openResources (config: Config, logger: Logger, options: ResourceOptions): Promise<Resources> {
  await using stack = new AsyncDisposableStack()
  const database = options.database ?? await openDatabase(config, logger, options.databaseOptions)
  stack.defer(async () => { await database.close() })
  const { sql } = database
  if (options.prepare !== false) {
    const applied = await migrate(sql)
    if (applied.length > 0) logger.info({ applied }, 'migrations applied')
  }
  const compute = createComputePools(config.threads)
  stack.defer(async () => { await compute.close() })
  let catalog = options.catalog
  if (catalog === undefined) {
    const opened = await openCatalogStore(config.mongodb, sql, logger)
    stack.defer(async () => { await opened.close() })
    logger.info({ store: opened.kind }, 'catalog store opened')
    catalog = opened
  }

  const mailer = createMailer({ smtpUrl: config.mail.smtpUrl, from: config.mail.from, mailDir: path.join(config.dataDir, 'mail'), log: logger })
  stack.defer(() => { mailer.close() })
  const jobs = await startJobQueue(database.url, config, logger)
  // Deferred after the mailer, so it runs before it: running jobs finish before the mailer closes.
  stack.defer(async () => { await jobs.stop(config.shutdownGraceMs) })
  const datasets = createConfiguredDatasetService(config, { sql, jobs, log: logger.child({ component: 'datasets' }) })
  const listener = listen(database.url, DATASET_CHANGED, datasets.changeHandlers, logger.child({ component: 'listener' }))
  stack.defer(async () => { await listener.close() })
  let working: Promise<void> | undefined
  const startWorker = async (): Promise<void> => {
    working ??= (async () => {
      const log = logger.child({ component: 'worker' })
      await jobs.work({
        send_welcome_email: createWelcomeEmailHandler({ sql, mailer, log }),
        ...createDatasetTaskHandlers(datasets),
      }, { default: config.jobs.workerConcurrency, import_dataset: config.datasets.importConcurrency })
      log.info({ concurrency: config.jobs.workerConcurrency, smtp: config.mail.smtpUrl !== undefined }, 'worker started')
    })()
    await working
  }
  if (options.worker) await startWorker()
  if (options.prepare !== false && database.isEmbedded && config.seedDemo && await seedDemo(sql, datasets)) {
    logger.info('demo data loaded (SEED_DEMO=false turns this off): GET /users, /products, /datasets')
  }

  // After the demo data, so that its data set has its view; the pool connects on first use.
  let sqlQueries: SqlQueries | undefined
  if (config.datasets.sqlQueries.enabled) {
    const opened = await openSqlQueries(config, database, logger)
    stack.defer(async () => { await opened.close() })
    sqlQueries = opened
  }

  const upstreams = createUpstreams(config.upstreams)
  stack.defer(async () => { await upstreams.close() })

  const owned = stack.move() // opened: from here on, closing is the caller's call
  return { database, sql, compute, catalog, jobs, upstreams, datasets, sqlQueries, logger, startWorker, close: async () => { await owned.disposeAsync() } }
}

/**
 * The demo data of an embedded database's first start, so that every route answers at once: a few
 * hundred users with orders, a couple of hundred products, the weather data set. Each part is
 * loaded once (db/seed-once.ts): several processes may start together, and a database from before
 * a part existed gets it on its next start. True when something was loaded.
 */
export async function seedDemo (sql: Sql, datasets: DatasetService): Promise<boolean> {
  const loaded = [
    await seedOnce(sql, 'demo-users', 'users', async (tx) => { await insertSampleUsers(tx, { users: 300, ordersPerUser: 8 }) }),
    await seedOnce(sql, 'demo-products', 'products', async (tx) => { await insertSampleProducts(tx, { count: 200 }) }),
    await seedOnce(sql, 'demo-dataset', 'datasets', async (tx) => { await importDemoDataset(tx, datasets) }),
  ]
  return loaded.includes(true)
}
