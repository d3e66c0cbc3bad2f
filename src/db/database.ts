// Where the database comes from: DATABASE_URL when set, otherwise an embedded PostgreSQL server
// under DATA_DIR/pg holding a `data_api` database. Either way the caller gets one pool.
import path from 'node:path'
import type { Logger } from 'pino'
import type { Config } from '../config.ts'
import { runningEmbeddedUrl, startEmbeddedPostgres, type EmbeddedPostgres } from './embedded-postgres.ts'
import { createSql, type Sql } from './pool.ts'

const EMBEDDED_DATABASE = 'data_api'

export interface Database extends AsyncDisposable {
  readonly sql: Sql
  /** The connection URL (for components that keep a pool of their own, like the job queue). */
  readonly url: string
  /** True when we started the server ourselves (and may seed demo data into it). */
  readonly isEmbedded: boolean
  /** Closes the pool, then stops the embedded server if there is one. */
  close: () => Promise<void>
}

export interface OpenDatabaseOptions {
  /** Connections in this process's pool; default DATABASE_POOL_MAX. */
  max?: number
  /**
   * When another data-api process is running the embedded server of DATA_DIR, use it rather than
   * refusing (for one-off commands and workers beside a running `serve`).
   */
  attach?: boolean
  /** max_connections of the embedded server, when this call starts one (`serve --processes`). */
  serverMaxConnections?: number
  /** For a pool that serves requests: its bounded wait for a connection and statement timeout. */
  requests?: { queueTimeoutMs: number, statementTimeoutMs: number }
}

export async function openDatabase (config: Config, log: Logger, options: OpenDatabaseOptions = {}): Promise<Database> {
  let embedded: EmbeddedPostgres | undefined
  let url = config.database.url
  const clusterDir = path.join(config.dataDir, 'pg')
  const running = url === undefined && options.attach === true ? await runningEmbeddedUrl(clusterDir) : undefined
  if (running !== undefined) {
    log.info({ clusterDir }, 'using the embedded PostgreSQL of the running data-api')
    url = await ensureDatabase(running, EMBEDDED_DATABASE)
  } else if (url === undefined) {
    embedded = await startEmbeddedPostgres({ clusterDir, log: log.child({ component: 'embedded-postgres' }), maxConnections: options.serverMaxConnections })
    url = await ensureDatabase(embedded.url, EMBEDDED_DATABASE).catch(async (error: unknown) => {
      await embedded?.stop()
      throw error
    })
  }
  const sql = createSql(url, { max: options.max ?? config.database.poolMax, ...options.requests })
  const close = async (): Promise<void> => {
    await sql.end({ timeout: 5 })
    await embedded?.stop()
  }
  await refuseNonUtf8(sql).catch(async (error: unknown) => {
    await close()
    throw error
  })
  return { sql, url, isEmbedded: embedded !== undefined, close, [Symbol.asyncDispose]: close }
}

/** Creates `name` on the server behind `serverUrl` if missing; returns a URL for it. */
export async function ensureDatabase (serverUrl: string, name: string): Promise<string> {
  const admin = createSql(serverUrl, { max: 1 })
  try {
    const [row] = await admin`select 1 as found from pg_database where datname = ${name}`
    if (row === undefined) await admin.unsafe(`create database "${name.replaceAll('"', '""')}"`)
  } finally {
    await admin.end()
  }
  const url = new URL(serverUrl)
  url.pathname = `/${name}`
  return url.toString()
}

/**
 * Uploads are UTF-8 text once decoded, and so is everything the API stores: a database in
 * another encoding would refuse (or, as SQL_ASCII, mangle) much of it, so it is refused at start.
 */
async function refuseNonUtf8 (sql: Sql): Promise<void> {
  const [{ encoding }] = await sql<[{ encoding: string }]>`select current_setting('server_encoding') as encoding`
  if (encoding !== 'UTF8') throw new Error(`the database's encoding is ${encoding}; data-api needs a UTF8 database (CREATE DATABASE … ENCODING 'UTF8')`)
}
