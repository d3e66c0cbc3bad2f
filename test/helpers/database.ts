// Each test file gets its own database, cloned from the migrated template made by global-setup.ts,
// and drops it when done: files run in parallel without seeing each other's rows.
import { randomBytes } from 'node:crypto'
import type { Database } from '../../src/db/database.ts'
import { createSql, type PoolOptions, type Sql } from '../../src/db/pool.ts'

export const TEMPLATE_DATABASE = 'data_api_test_template'

/** Where to register clean-up: a TestContext, or `{ after }` from node:test for a whole file. */
export interface Cleanup { after: (fn: () => Promise<void>) => void }

export interface TestDatabase { url: string, sql: Sql, close: () => Promise<void> }

export function testServerUrl (): string {
  const url = process.env.TEST_DATABASE_URL
  if (url === undefined) throw new Error('TEST_DATABASE_URL is not set: run the tests with `npm test`')
  return url
}

/** A fresh migrated database for this test file, dropped after it. */
export async function createTestDatabase (t: Cleanup, pool: Partial<PoolOptions> = {}): Promise<TestDatabase> {
  const database = await openTestDatabase(pool)
  t.after(database.close)
  return database
}

/** A fresh migrated database; `close` ends its pool and drops it. */
export async function openTestDatabase (pool: Partial<PoolOptions> = {}): Promise<Database> {
  const name = `data_api_test_${randomBytes(6).toString('hex')}`
  const admin = createSql(testServerUrl(), { max: 1 })
  await admin.unsafe(`create database ${name} template ${TEMPLATE_DATABASE}`)
  const url = new URL(testServerUrl())
  url.pathname = `/${name}`
  const sql = createSql(url.toString(), { max: 10, ...pool })
  const close = async (): Promise<void> => {
    await sql.end({ timeout: 5 })
    await admin.unsafe(`drop database if exists ${name} with (force)`)
    await admin.end()
  }
  return { url: url.toString(), sql, isEmbedded: false, close, [Symbol.asyncDispose]: close }
}
