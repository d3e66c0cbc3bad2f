// Builds the real app (buildApp) on a test database, closed after the test file.
import { pino, type Logger } from 'pino'
import { buildApp, type App } from '../../src/app.ts'
import { createComputePools, type ComputePools } from '../../src/compute/pools.ts'
import { loadConfig, type Config } from '../../src/config.ts'
import type { Sql } from '../../src/db/pool.ts'
import { startJobQueue, type JobQueue } from '../../src/jobs/queue.ts'
import { createUpstreams } from '../../src/upstream/upstreams.ts'
import type { CatalogStore } from '../../src/stores/catalog.ts'
import { createPostgresCatalog } from '../../src/stores/postgres-catalog.ts'
import { createTestDatabase, type Cleanup } from './database.ts'
import { TEST_DEFAULTS } from './defaults.ts'

export interface TestApp { app: App, sql: Sql, databaseUrl: string, config: Config, compute: ComputePools, jobs: JobQueue, catalog: CatalogStore }

/** `catalog` defaults to the PostgreSQL store on the test database; the caller closes one it passes. */
export async function buildTestApp (t: Cleanup, env: Record<string, string> = {}, options: { sql?: Sql, databaseUrl?: string, ready?: boolean, logger?: Logger, catalog?: CatalogStore } = {}): Promise<TestApp> {
  const config = loadConfig({ LOG_LEVEL: 'silent', ...TEST_DEFAULTS, ...env })
  // The pool a server opens for requests (db/database.ts): the same bounded wait and statement timeout.
  const database = options.sql === undefined
    ? await createTestDatabase(t, { max: config.DATABASE_POOL_MAX, queueTimeoutMs: config.DATABASE_POOL_WAIT_MS, statementTimeoutMs: config.QUERY_TIMEOUT_MS })
    : undefined
  const sql = options.sql ?? database!.sql
  const logger = options.logger ?? pino({ level: config.LOG_LEVEL })
  const compute = createComputePools(config)
  const databaseUrl = database?.url ?? options.databaseUrl!
  const jobs = await startJobQueue(databaseUrl, config, logger)
  const upstreams = createUpstreams(config)
  const catalog = options.catalog ?? createPostgresCatalog(sql)
  const app = await buildApp(config, { sql, compute, jobs, catalog, upstreams, logger })
  t.after(async () => {
    await app.close()
    await upstreams.close()
    await jobs.stop(1000)
    await compute.close()
  })
  if (options.ready !== false) await app.ready()
  return { app, sql, databaseUrl, config, compute, jobs, catalog }
}

/** Listens on a free loopback port; returns the base URL. For tests that need real sockets. */
export async function listen (app: App): Promise<string> {
  return await app.listen({ port: 0, host: '127.0.0.1' })
}
