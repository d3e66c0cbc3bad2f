// Runs once before all test files (node --test --test-global-setup): provides a PostgreSQL server
// and a migrated template database that each test file clones (helpers/database.ts), and a
// MongoDB-wire server (FerretDB, tools/ferretdb.ts) on which each test file uses a database of
// its own (helpers/mongo.ts). Both reach the test files through the environment. Without Go to
// build FerretDB, the MongoDB tests are skipped (helpers/requirements.ts), except under CI.
// TEST_DATABASE_URL (a server URL whose user may create databases) skips the embedded server;
// MONGODB_URL (or TEST_MONGODB_URL) skips FerretDB and runs the MongoDB tests on that server.
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { pino } from 'pino'
import { ensureDatabase } from '../src/db/database.ts'
import { startEmbeddedPostgres, type EmbeddedPostgres } from '../src/db/embedded-postgres.ts'
import { migrate } from '../src/db/migrate.ts'
import { createSql } from '../src/db/pool.ts'
import { loadConfig } from '../src/config.ts'
import { startJobQueue } from '../src/jobs/queue.ts'
import { MissingGoError, startFerretDb, type FerretDb } from '../tools/ferretdb.ts'
import { TEMPLATE_DATABASE } from './helpers/database.ts'
import { isCi } from './helpers/requirements.ts'

let embedded: EmbeddedPostgres | undefined
let tmpDir: string | undefined
let ferretDb: FerretDb | undefined

export async function globalSetup (): Promise<void> {
  await provideMongoDb()
  let serverUrl = process.env.TEST_DATABASE_URL
  if (serverUrl === undefined) {
    tmpDir = await fs.mkdtemp(path.join(os.tmpdir(), 'data-api-test-'))
    await fs.chmod(tmpDir, 0o755) // the embedded server may run as another user
    embedded = await startEmbeddedPostgres({ clusterDir: path.join(tmpDir, 'pg'), durable: false, log: pino({ level: 'warn' }) })
    serverUrl = embedded.url
    process.env.TEST_DATABASE_URL = serverUrl
  }
  const admin = createSql(serverUrl, { max: 1 })
  await admin.unsafe(`drop database if exists ${TEMPLATE_DATABASE}`)
  await admin.end()
  const templateUrl = await ensureDatabase(serverUrl, TEMPLATE_DATABASE)
  const sql = createSql(templateUrl, { max: 1 })
  await migrate(sql)
  await sql.end()
  // pg-boss installs its schema on first start; doing it once here saves every test database that.
  const jobs = await startJobQueue(templateUrl, loadConfig({}), pino({ level: 'warn' }))
  await jobs.stop(1000)
}

async function provideMongoDb (): Promise<void> {
  const ownServer = process.env.TEST_MONGODB_URL ?? process.env.MONGODB_URL
  // Test files (and the data-api processes some of them start) choose their catalog store
  // themselves: an inherited MONGODB_URL would switch every spawned server to MongoDB.
  delete process.env.MONGODB_URL
  if (ownServer !== undefined) {
    process.env.TEST_MONGODB_URL = ownServer
    return
  }
  try {
    ferretDb = await startFerretDb()
  } catch (error) {
    // Without Go (and no FerretDB built before) the MongoDB tests are skipped, with this hint;
    // under CI they must run, so this fails.
    if (!(error instanceof MissingGoError) || isCi) throw error
    process.env.TEST_MONGODB_SKIP = 'no MongoDB-wire server: install Go 1.24+ (FerretDB is built from it, see tools/ferretdb.ts) or set MONGODB_URL'
    console.error(`skipping the MongoDB tests: ${process.env.TEST_MONGODB_SKIP}`)
    return
  }
  process.env.TEST_MONGODB_URL = ferretDb.url
}

export async function globalTeardown (): Promise<void> {
  await ferretDb?.stop()
  await embedded?.stop()
  if (tmpDir !== undefined) await fs.rm(tmpDir, { recursive: true, force: true })
}
