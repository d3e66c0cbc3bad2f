// What the data-set benchmarks (bench/datasets.ts, bench/query-power.ts) run in: a scratch folder,
// an embedded PostgreSQL (durable settings) with the project's database migrated and an API key,
// this process moved to the client core, and a ServerScope for the servers measured one at a time.
// Closed on SIGINT/SIGTERM too: servers first, then the database, then the folder.
import { execFile } from 'node:child_process'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { setTimeout as delay } from 'node:timers/promises'
import { promisify } from 'node:util'
import { pino } from 'pino'
import { request } from 'undici'
import { createApiKeysRepository } from '../src/auth/api-keys.ts'
import { ensureDatabase } from '../src/db/database.ts'
import { startEmbeddedPostgres } from '../src/db/embedded-postgres.ts'
import { migrate } from '../src/db/migrate.ts'
import { createSql, type Sql } from '../src/db/pool.ts'
import { hasTaskset, ServerScope } from '../tools/processes.ts'

export const SERVER_CPU = 0
export const CLIENT_CPU = 1
const POLL_MS = 25

export interface BenchWorld {
  dir: string
  databaseUrl: string
  sql: Sql
  /** PostgreSQL's server_version. */
  version: string
  auth: { authorization: string }
  isPinned: boolean
  servers: ServerScope
  close: () => Promise<void>
}

/** Opens the world; `say` tells of an interruption. Close it in a `finally`. */
export async function openBenchWorld (say: (line: string) => void): Promise<BenchWorld> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'data-api-bench-'))
  await fs.chmod(dir, 0o755)
  const postgresServer = await startEmbeddedPostgres({ clusterDir: path.join(dir, 'pg'), log: pino({ level: 'warn' }) })
  // PostgreSQL was started unpinned; from here on this process (requests, COPY, polling) runs on
  // CPU 1, away from the servers measured on CPU 0. Children started later pin themselves.
  const isPinned = await hasTaskset()
  if (isPinned) await promisify(execFile)('taskset', ['-a', '-p', '-c', String(CLIENT_CPU), String(process.pid)])
  const servers = new ServerScope()
  let sql: Sql | undefined
  let closed: Promise<void> | undefined
  const close = async (): Promise<void> => {
    closed ??= (async () => {
      await servers.stopAll()
      await sql?.end({ timeout: 1 })
      await postgresServer.stop()
      await fs.rm(dir, { recursive: true, force: true })
    })()
    await closed
  }
  // Interrupted (Ctrl-C, SIGTERM): stop every server and the database before leaving.
  const interrupted = (signal: NodeJS.Signals): void => {
    say(`${signal}: stopping the servers and the database`)
    void close().finally(() => process.exit(130))
  }
  process.once('SIGINT', interrupted)
  process.once('SIGTERM', interrupted)
  try {
    const databaseUrl = await ensureDatabase(postgresServer.url, 'bench')
    sql = createSql(databaseUrl, { max: 4 })
    await migrate(sql)
    const [{ version }] = await sql<[{ version: string }]>`select current_setting('server_version') as version`
    const { key } = await createApiKeysRepository(sql).create('bench')
    return { dir, databaseUrl, sql, version, auth: { authorization: `Bearer ${key}` }, isPinned, servers, close }
  } catch (error) {
    await close()
    throw error
  }
}

/** GET /datasets/{id} until the data set is ready (an import on the job path); its rows. */
export async function waitUntilReady (base: string, auth: Record<string, string>, id: number): Promise<number> {
  for (;;) {
    const response = await request(`${base}/datasets/${id}`, { headers: auth })
    const { dataset } = await response.body.json() as { dataset: { status: string, rows: number, error: unknown } }
    if (dataset.status === 'ready') return dataset.rows
    if (dataset.status === 'failed') throw new Error(`job path: import failed: ${JSON.stringify(dataset.error)}`)
    await delay(POLL_MS)
  }
}
