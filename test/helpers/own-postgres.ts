// An embedded PostgreSQL of a test's own, in a temporary directory, for tests that stop it under a
// running service and start it again on the same port and data. Closed on the test's stack: the
// server that is running then, then its directory.
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { pino } from 'pino'
import { ensureDatabase } from '../../src/db/database.ts'
import { startEmbeddedPostgres, type EmbeddedPostgres } from '../../src/db/embedded-postgres.ts'

export interface OwnPostgres {
  /** The temporary directory (the cluster is under pg/; a serve's DATA_DIR may be it too). */
  dir: string
  /** A `data_api` database on it. */
  databaseUrl: string
  stop: () => Promise<void>
  /** Starts it again on the same port and data. */
  restart: () => Promise<void>
}

export async function startOwnPostgres (resources: AsyncDisposableStack, prefix: string): Promise<OwnPostgres> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), prefix))
  resources.defer(async () => { await fs.rm(dir, { recursive: true, force: true }) })
  await fs.chmod(dir, 0o755) // the embedded server may run as another user
  const options = { clusterDir: path.join(dir, 'pg'), log: pino({ level: 'silent' }), durable: false }
  let postgres: EmbeddedPostgres = await startEmbeddedPostgres(options)
  resources.defer(async () => { await postgres.stop() }) // the one running then
  return {
    dir,
    databaseUrl: await ensureDatabase(postgres.url, 'data_api'),
    stop: async () => { await postgres.stop() },
    restart: async () => { postgres = await startEmbeddedPostgres({ ...options, port: postgres.port }) },
  }
}
