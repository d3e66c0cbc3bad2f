// Builds the real app (buildApp) on a test database, closed after the test file.
import { pino } from 'pino'
import { buildApp, type App } from '../../src/app.ts'
import { createComputePools, type ComputePools } from '../../src/compute/pools.ts'
import { loadConfig, type Config } from '../../src/config.ts'
import type { Sql } from '../../src/db/pool.ts'
import { createTestDatabase, type Cleanup } from './database.ts'

export interface TestApp { app: App, sql: Sql, config: Config, compute: ComputePools }

export async function buildTestApp (t: Cleanup, env: Record<string, string> = {}, options: { sql?: Sql, ready?: boolean } = {}): Promise<TestApp> {
  const config = loadConfig({ LOG_LEVEL: 'silent', ...env })
  const sql = options.sql ?? (await createTestDatabase(t)).sql
  const compute = createComputePools(config)
  const app = await buildApp(config, { sql, compute, logger: pino({ level: config.LOG_LEVEL }) })
  t.after(async () => {
    await app.close()
    await compute.close()
  })
  if (options.ready !== false) await app.ready()
  return { app, sql, config, compute }
}

/** Listens on a free loopback port; returns the base URL. For tests that need real sockets. */
export async function listen (app: App): Promise<string> {
  return await app.listen({ port: 0, host: '127.0.0.1' })
}
