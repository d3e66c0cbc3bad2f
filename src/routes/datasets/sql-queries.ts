// Read-only SQL over data sets (POST /datasets/sql, on with SQL_QUERIES=true). Each ready data set
// is a view `dataset_views.dataset_<id>` with its users' column names (table.ts writes it, the
// import creates it, DELETE drops it, `syncViews` creates the missing ones at start). A query runs:
//
// - as a role of its own (`<database>_sql`), LOGIN and nothing else: not a superuser, no CREATEDB,
//   CREATEROLE, REPLICATION or BYPASSRLS, a member of no role, with a CONNECTION LIMIT. It has
//   CONNECT on the database, USAGE on dataset_views and SELECT on its views; the views belong to
//   the application's role, so they read the tables with its rights and the reader needs none on
//   them. The application's own connection may be a superuser's (embedded PostgreSQL connects as
//   `postgres`): a `SET ROLE` on it could be undone by the query itself (`reset role`,
//   `set_config('role', …)`), so the reader connects with its own credentials, in its own small
//   pool, and can become no one else.
// - over the extended query protocol, unnamed statement: one statement, never `a; b`. It is
//   described first and refused unless it returns rows (so `listen`, `prepare`, `declare`, `copy`,
//   `do`, `set`, `vacuum`, DDL never run at all) or when it has parameters.
// - in a `begin read only` transaction, always rolled back, followed by `discard all` before the
//   connection goes back to the pool: whatever a query changed in its session (settings, an
//   advisory lock, a prepared statement) does not reach the next query.
// - under statement_timeout (QUERY_TIMEOUT_MS, on the role and on each connection) and a deadline
//   of the same length on the whole response, so that a slow client holds a connection no longer.
// - with search_path = dataset_views, default_transaction_read_only = on and lock_timeout on the role
//   and on each connection.
//
// Where the application's user is a superuser, the start also revokes from PUBLIC in this database
// what a new role gets that the reader should not have: TEMP on the database, CREATE on schema
// public (servers before 15), and EXECUTE on the advisory-lock functions, on
// pg_cancel_backend/pg_terminate_backend and on txid_current/pg_current_xact_id (a reader could
// otherwise hold a lock the service takes, end other readers' queries, or burn transaction ids).
// The application's own user keeps them (a superuser). pg_notify stays: its notification is queued
// in the transaction, which is rolled back, so it is never delivered.
//
// The result is one JSON document written as rows arrive: `{"columns": [{name, type}], "rows": [[…],
// …], "row_count": n, "truncated": null | "max_rows" | "max_bytes"}`, and `"error": {problem}`
// (with `"truncated": "error"`) when the query fails after rows were sent. Errors before the
// first row are problems with their status: the query's own error is a 400 naming PostgreSQL's
// message, SQLSTATE and position, a timeout a 503 `timeout`.
import { createHash, createHmac, pbkdf2Sync, randomBytes } from 'node:crypto'
import { Readable } from 'node:stream'
import type { Logger } from 'pino'
import type { ReservedSql } from 'postgres'
import type { Config } from '../../config.ts'
import { createSql, type Sql } from '../../db/pool.ts'
import { asProblem, Problem, problemTypeUri, PROBLEM_TYPES } from '../../lib/errors.ts'
import { rowsTable, VIEWS_SCHEMA } from './table.ts'

/** The reader role's connections across all processes (its CONNECTION LIMIT). */
export const READER_CONNECTION_LIMIT = 64
/** Rows fetched from the server at a time. */
const BATCH_ROWS = 100
/** How long past the deadline a response still waiting for a slow client may take before it is cut. */
const CUT_GRACE_MS = 1_000
// Marks the role as ours (pg_shdescription): a role of that name made by someone else is never altered.
const ROLE_COMMENT = 'data-api: reader role of SQL queries (POST /datasets/sql) on database '
const SETUP_LOCK = 'data-api:sql-reader'
// Values of these types arrive as PostgreSQL writes them: dates and times as text, not JS Dates
// (which would lose microseconds and shift dates), bytea as its hex text.
const TEXT_TYPES = [17, 1082, 1083, 1114, 1184, 1186, 1266]
const TIMESTAMPTZ = 1184
const TIMESTAMP = 1114
const NUMERIC = 1700
// Classes of SQLSTATE that are the query's own fault: data exceptions, syntax and access rules,
// features not supported, read-only violations, cardinality, invalid cursor or statement names,
// program limits (a value too long). Anything else is ours (errors.ts maps it).
const QUERY_ERROR_CLASSES = new Set(['0A', '21', '22', '25', '26', '2F', '34', '38', '39', '3F', '42', '44', '54'])
// Granted to PUBLIC by default; revoked in this database where the application's user may.
const LOCK_AND_SIGNAL_FUNCTIONS = [
  'pg_advisory_lock(bigint)', 'pg_advisory_lock(integer, integer)', 'pg_advisory_lock_shared(bigint)', 'pg_advisory_lock_shared(integer, integer)',
  'pg_try_advisory_lock(bigint)', 'pg_try_advisory_lock(integer, integer)', 'pg_try_advisory_lock_shared(bigint)', 'pg_try_advisory_lock_shared(integer, integer)',
  'pg_advisory_xact_lock(bigint)', 'pg_advisory_xact_lock(integer, integer)', 'pg_advisory_xact_lock_shared(bigint)', 'pg_advisory_xact_lock_shared(integer, integer)',
  'pg_try_advisory_xact_lock(bigint)', 'pg_try_advisory_xact_lock(integer, integer)', 'pg_try_advisory_xact_lock_shared(bigint)', 'pg_try_advisory_xact_lock_shared(integer, integer)',
  'pg_cancel_backend(integer)', 'pg_terminate_backend(integer, bigint)',
  // A read-only transaction still takes a transaction id for these: each call would burn one.
  'txid_current()', 'pg_current_xact_id()',
]

export interface SqlColumn { name: string, type: string }

export interface SqlQueries {
  /** Runs one read-only query; resolves once its first rows (or its error) arrived. */
  run: (text: string, signal: AbortSignal) => Promise<Readable>
  readonly roleName: string
  close: () => Promise<void>
}

export interface SqlQueryOptions {
  maxRows: number
  maxBytes: number
  /** The deadline of a whole query and its response; 0: none. */
  timeoutMs: number
}

/**
 * Prepares the reader role and the views on the application's connection, then opens the
 * reader's pool (its connections are made when the first query needs one).
 */
export async function openSqlQueries (config: Config, database: { sql: Sql, url: string }, log: Logger): Promise<SqlQueries> {
  const settings = config.datasets.sqlQueries
  const timeoutMs = config.database.queryTimeoutMs
  const reader = await prepareReaderRole(database.sql, database.url, { readerUrl: settings.readerUrl, timeoutMs }, log)
  const created = await syncViews(database.sql)
  if (created > 0) log.info({ views: created }, 'SQL query views created for existing data sets')
  const readerSql = createSql(reader.url, {
    max: settings.poolMax,
    applicationName: 'data-api-sql',
    queueTimeoutMs: config.database.poolWaitMs,
    statementTimeoutMs: timeoutMs,
    prepare: false,
    textTypes: TEXT_TYPES,
    settings: readerSessionSettings(timeoutMs),
  })
  const queries = createSqlQueries(readerSql, { maxRows: settings.maxRows, maxBytes: settings.maxBytes, timeoutMs })
  return { ...queries, roleName: reader.roleName, close: async () => { await readerSql.end({ timeout: 5 }) } }
}

/** Settings of every reader session, on the role and in each connection's startup packet. */
function readerSessionSettings (timeoutMs: number): Record<string, string> {
  return {
    default_transaction_read_only: 'on',
    search_path: VIEWS_SCHEMA,
    ...(timeoutMs > 0 && { lock_timeout: String(timeoutMs), idle_in_transaction_session_timeout: String(timeoutMs + 5_000) }),
  }
}

/** Runs queries on the reader's pool. */
export function createSqlQueries (readerSql: Sql, options: SqlQueryOptions): Pick<SqlQueries, 'run'> {
  return {
    async run (text, signal) {
      signal.throwIfAborted()
      const deadline = new AbortController()
      const timer = options.timeoutMs > 0 ? setTimeout(() => { deadline.abort() }, options.timeoutMs) : undefined
      const stopped = AbortSignal.any([signal, deadline.signal])
      const why = (error: unknown): unknown => {
        if (deadline.signal.aborted) return new Problem('timeout', `The query ran longer than QUERY_TIMEOUT_MS (${options.timeoutMs} ms) and was cancelled.`, { cause: error })
        if (signal.aborted) return signal.reason
        return queryProblem(error)
      }
      let connection: ReservedSql | undefined
      let running: { cancel: () => unknown } | undefined
      const cancel = (): void => { void running?.cancel() }
      stopped.addEventListener('abort', cancel)
      const finish = async (): Promise<void> => {
        clearTimeout(timer)
        stopped.removeEventListener('abort', cancel)
        const held = connection
        connection = undefined
        if (held === undefined) return
        try {
          // Whatever the statement did to its session goes with the transaction, or with DISCARD ALL
          // (session advisory locks, prepared statements, LISTEN, settings, temporary tables).
          await held.unsafe('rollback')
          await held.unsafe('discard all')
        } catch {
          // The connection broke: postgres.js replaces it.
        } finally {
          held.release()
        }
      }

      let batches: AsyncIterator<unknown[][]>
      let first: IteratorResult<unknown[][]>
      let columns: SqlColumn[]
      let parsers: Array<(value: unknown) => unknown>
      try {
        connection = await readerSql.reserve()
        stopped.throwIfAborted()
        await connection.unsafe('begin transaction read only')
        const describing = connection.unsafe(text).describe()
        running = describing as unknown as { cancel: () => unknown } // the pending query, typed as its promise
        const statement = await describing as unknown as { types: number[], columns: Array<{ name: string, type: number }> }
        if (statement.types.length > 0) throw new Problem('bad-request', `The query has parameters ($1…); write the values into it instead.`)
        if (statement.columns.length === 0) {
          throw new Problem('bad-request', 'Only statements that return rows are run here (SELECT, VALUES, TABLE, WITH … SELECT, EXPLAIN, SHOW); this one returns none.')
        }
        columns = await columnTypes(connection, statement.columns)
        parsers = statement.columns.map((column) => valueEncoder(column.type))
        const query = connection.unsafe(text).values()
        running = query
        batches = (query.cursor(Math.min(BATCH_ROWS, options.maxRows + 1)) as AsyncIterable<unknown[][]>)[Symbol.asyncIterator]()
        first = await batches.next()
      } catch (error) {
        await finish()
        throw why(error)
      }

      const { maxRows, maxBytes } = options
      const body = Readable.from((async function * () {
        let count = 0
        let bytes = 0
        let truncated: string | null = null
        let trailer = ''
        try {
          yield `{"columns":${JSON.stringify(columns)},"rows":[`
          try {
            let batch = first
            fetching: while (batch.done !== true) {
              let chunk = ''
              for (const row of batch.value) {
                if (count === maxRows) {
                  truncated = 'max_rows'
                  break
                }
                // A string takes at least its length in bytes: a value far beyond the cap is not encoded at all.
                if (bytes + row.reduce((sum: number, value) => sum + (typeof value === 'string' ? value.length : 0), 0) > maxBytes) {
                  truncated = 'max_bytes'
                  break
                }
                const line = JSON.stringify(row.map((value, index) => value === null ? null : parsers[index]!(value)))
                const size = Buffer.byteLength(line) + 2
                if (bytes + size > maxBytes) {
                  truncated = 'max_bytes'
                  break
                }
                chunk += (count === 0 ? '\n' : ',\n') + line
                bytes += size
                count++
              }
              if (chunk !== '') yield chunk
              if (truncated !== null) break fetching
              batch = await batches.next()
            }
          } catch (error) {
            const problem = asProblem(why(error)) ?? new Problem('internal-error', 'The query failed after its first rows were sent.')
            const { status, title } = PROBLEM_TYPES[problem.code]
            truncated = 'error'
            trailer = `,"error":${JSON.stringify({ type: problemTypeUri(problem.code), title, status, detail: problem.message, ...problem.extra })}`
          }
          yield `\n],"row_count":${count},"truncated":${JSON.stringify(truncated)}${trailer}}\n`
        } finally {
          await batches.return?.()
          await finish()
        }
      })(), { objectMode: false })
      // A client that reads too slowly to finish within the deadline is cut off, so that it holds
      // its connection no longer than QUERY_TIMEOUT_MS (the query itself is cancelled at once).
      deadline.signal.addEventListener('abort', () => {
        setTimeout(() => { if (!body.destroyed && !body.readableEnded) body.destroy(new Problem('timeout', 'The response was not read within QUERY_TIMEOUT_MS.')) }, CUT_GRACE_MS).unref()
      }, { once: true })
      return body
    },
  }
}

/** The columns' names and PostgreSQL type names (`integer`, `text`, `timestamp with time zone`, `jsonb[]`…). */
async function columnTypes (connection: ReservedSql, columns: Array<{ name: string, type: number }>): Promise<SqlColumn[]> {
  const oids = [...new Set(columns.map((column) => column.type))]
  const rows = await connection.unsafe<Array<{ oid: string, name: string }>>(
    'select oid::text as oid, format_type(oid, null) as name from pg_catalog.pg_type where oid = any(string_to_array($1, \',\')::oid[])', [oids.join(',')])
  const names = new Map(rows.map((row) => [Number(row.oid), row.name]))
  return columns.map((column) => ({ name: column.name, type: names.get(column.type) ?? String(column.type) }))
}

/** How a value of a type becomes JSON: numbers stay numbers (±Infinity and NaN as strings), timestamps ISO 8601. */
function valueEncoder (type: number): (value: unknown) => unknown {
  if (type === TIMESTAMPTZ) return (value) => String(value).replace(/^(\d{4,}-\d\d-\d\d) (\d\d:\d\d:\d\d(?:\.\d+)?)\+00$/, '$1T$2Z')
  if (type === TIMESTAMP) return (value) => String(value).replace(/^(\d{4,}-\d\d-\d\d) (\d\d:\d\d:\d\d(?:\.\d+)?)$/, '$1T$2')
  if (type === NUMERIC) {
    return (value) => {
      const number = Number(value)
      return Number.isFinite(number) ? number : value
    }
  }
  return (value) => typeof value === 'number' && !Number.isFinite(value) ? String(value) : value
}

/** The query's own error as a 400 with what PostgreSQL said; other errors as errors.ts maps them. */
function queryProblem (error: unknown): unknown {
  const e = error as { name?: string, code?: string, message?: string, position?: string, hint?: string }
  if (e.name !== 'PostgresError' || e.code === undefined || !QUERY_ERROR_CLASSES.has(e.code.slice(0, 2))) return error
  const extra: Record<string, unknown> = { sqlstate: e.code }
  if (e.position !== undefined) extra.position = Number(e.position)
  if (e.hint !== undefined) extra.hint = e.hint
  return new Problem('bad-request', `The query failed: ${e.message ?? 'error'}`, { extra, cause: error })
}

interface ReaderRole { roleName: string, url: string }

/** `<database>_sql`, or a shortened name with a hash of the database's when that is too long. */
export function readerRoleName (database: string): string {
  const name = `${database}_sql`
  if (Buffer.byteLength(name) <= 63 && /^[a-z0-9_]+$/.test(name)) return name
  const hash = createHash('sha256').update(database).digest('hex').slice(0, 12)
  return `data_api_${hash}_sql`
}

/**
 * Creates or updates the reader role (under an advisory lock, so that processes starting together
 * agree), with the password stored in dataset_sql_reader, or checks the role the operator made
 * (SQL_QUERIES_DATABASE_URL), and grants it what it needs and no more.
 */
async function prepareReaderRole (sql: Sql, appUrl: string, options: { readerUrl?: string, timeoutMs: number }, log: Logger): Promise<ReaderRole> {
  return await sql.begin(async (tx) => {
    await tx`set local statement_timeout to 0`
    await tx`select pg_advisory_xact_lock(hashtextextended(${SETUP_LOCK}, 0))`
    const [me] = await tx<[{ database: string, user: string, isSuperuser: boolean, canCreateRole: boolean, ownsDatabase: boolean, version: number }]>`
      select current_database() as database, current_user as user, r.rolsuper as "isSuperuser", r.rolcreaterole as "canCreateRole",
        d.datdba = r.oid as "ownsDatabase", current_setting('server_version_num')::int as version
      from pg_roles r, pg_database d where r.rolname = current_user and d.datname = current_database()`
    const quotedDatabase = quote(me.database)
    let roleName: string
    let url: string
    if (options.readerUrl !== undefined) {
      url = options.readerUrl
      roleName = decodeURIComponent(new URL(url).username)
      if (roleName === '' || roleName === me.user) throw new Error('SQL_QUERIES_DATABASE_URL must name a role of its own, not the database user of DATABASE_URL')
    } else {
      if (!me.isSuperuser && !me.canCreateRole) {
        throw new Error(`SQL_QUERIES=true: the database user "${me.user}" may not create roles. Give it CREATEROLE, or create a reader role yourself (CREATE ROLE … LOGIN PASSWORD …) and set SQL_QUERIES_DATABASE_URL to its URL.`)
      }
      roleName = readerRoleName(me.database)
      const role = quote(roleName)
      const [existing] = await tx<Array<{ comment: string | null }>>`select shobj_description(oid, 'pg_authid') as comment from pg_roles where rolname = ${roleName}`
      const comment = ROLE_COMMENT + me.database
      if (existing !== undefined && existing.comment !== comment) {
        throw new Error(`SQL_QUERIES=true: a role "${roleName}" exists that data-api did not create; drop or rename it, or set SQL_QUERIES_DATABASE_URL to a reader role of your own.`)
      }
      const [stored] = await tx<Array<{ password: string }>>`select password from dataset_sql_reader where role_name = ${roleName}`
      const password = stored?.password ?? randomBytes(24).toString('base64url')
      if (stored === undefined) await tx`insert into dataset_sql_reader (role_name, password) values (${roleName}, ${password})`
      // The password is sent as its SCRAM verifier: the clear text reaches no server log.
      const attributes = `login noinherit nocreatedb nocreaterole connection limit ${READER_CONNECTION_LIMIT} password '${scramVerifier(password)}'`
      const superuserOnly = me.isSuperuser ? ' nosuperuser noreplication nobypassrls' : ''
      await tx.unsafe(`${existing === undefined ? 'create' : 'alter'} role ${role} with ${attributes}${superuserOnly}`)
      if (existing === undefined) await tx.unsafe(`comment on role ${role} is '${comment.replaceAll("'", "''")}'`)
      for (const [name, value] of Object.entries({ ...readerSessionSettings(options.timeoutMs), ...(options.timeoutMs > 0 && { statement_timeout: String(options.timeoutMs) }) })) {
        await tx.unsafe(`alter role ${role} set ${name} = '${value}'`)
      }
      const target = new URL(appUrl)
      target.username = encodeURIComponent(roleName)
      target.password = encodeURIComponent(password)
      url = target.toString()
    }
    const [reader] = await tx<Array<{ isPowerful: boolean, memberships: number }>>`
      select rolsuper or rolcreatedb or rolcreaterole or rolreplication or rolbypassrls as "isPowerful",
        (select count(*)::int from pg_auth_members where member = r.oid) as memberships
      from pg_roles r where rolname = ${roleName}`
    if (reader === undefined) throw new Error(`SQL_QUERIES: the reader role "${roleName}" does not exist`)
    if (reader.isPowerful || reader.memberships > 0) {
      throw new Error(`SQL_QUERIES: the reader role "${roleName}" must have no attributes beyond LOGIN (no SUPERUSER, CREATEDB, CREATEROLE, REPLICATION, BYPASSRLS) and be a member of no role`)
    }
    const role = quote(roleName)
    // Without the right to grant it, PUBLIC's CONNECT (the default) lets the reader in.
    if (me.isSuperuser || me.ownsDatabase) await tx.unsafe(`grant connect on database ${quotedDatabase} to ${role}`)
    await tx.unsafe(`grant usage on schema ${VIEWS_SCHEMA} to ${role}`)
    await tx.unsafe(`grant select on all tables in schema ${VIEWS_SCHEMA} to ${role}`)
    // Views created later by this user (the imports) are readable at once.
    await tx.unsafe(`alter default privileges in schema ${VIEWS_SCHEMA} grant select on tables to ${role}`)
    const left: string[] = []
    if (me.isSuperuser || me.ownsDatabase) await tx.unsafe(`revoke temporary on database ${quotedDatabase} from public`)
    else left.push(`REVOKE TEMPORARY ON DATABASE ${quotedDatabase} FROM PUBLIC`)
    if (me.isSuperuser) {
      if (me.version < 150_000) await tx.unsafe('revoke create on schema public from public')
      await tx.unsafe(`revoke execute on function ${LOCK_AND_SIGNAL_FUNCTIONS.join(', ')} from public`)
    } else {
      if (me.version < 150_000) left.push('REVOKE CREATE ON SCHEMA public FROM PUBLIC')
      left.push(`REVOKE EXECUTE ON FUNCTION ${LOCK_AND_SIGNAL_FUNCTIONS.join(', ')} FROM PUBLIC (then GRANT them to the service's user)`)
    }
    if (left.length > 0) log.warn({ role: roleName, sql: left }, 'SQL queries: the database user may not revoke these from PUBLIC; a superuser should, or the reader role keeps them')
    return { roleName, url }
  })
}

/** Creates the missing views of ready data sets, drops views of data sets that are gone; returns how many it created. */
export async function syncViews (sql: Sql): Promise<number> {
  return await sql.begin(async (tx) => {
    await tx`set local statement_timeout to 0`
    await tx`select pg_advisory_xact_lock(hashtextextended(${SETUP_LOCK}, 0))`
    const ready = await tx<Array<{ id: number, names: string[] }>>`
      select d.id, coalesce(array_agg(c.name order by c.position) filter (where c.name is not null), '{}') as names
      from datasets d left join dataset_columns c on c.dataset_id = d.id
      where d.status = 'ready' group by d.id`
    let created = 0
    for (const { id, names } of ready) {
      const table = rowsTable(id)
      const [{ hasTable, hasView }] = await tx<[{ hasTable: boolean, hasView: boolean }]>`
        select to_regclass(${table.name}) is not null as "hasTable", to_regclass(${table.view}) is not null as "hasView"`
      if (!hasTable || hasView) continue
      await tx.unsafe(table.createViewSql(names))
      created++
    }
    const wanted = new Set(ready.map(({ id }) => rowsTable(id).viewName))
    const views = await tx<Array<{ name: string }>>`select c.relname as name from pg_class c join pg_namespace n on n.oid = c.relnamespace where n.nspname = ${VIEWS_SCHEMA}`
    for (const { name } of views) {
      if (!wanted.has(name)) await tx.unsafe(`drop view if exists ${VIEWS_SCHEMA}.${quote(name)}`)
    }
    return created
  })
}

function quote (identifier: string): string {
  return `"${identifier.replaceAll('"', '""')}"`
}

/** PostgreSQL's SCRAM-SHA-256 verifier of a password (RFC 5802/7677, as libpq's PQencryptPasswordConn writes it). */
function scramVerifier (password: string, iterations = 4096): string {
  const salt = randomBytes(16)
  const salted = pbkdf2Sync(password.normalize('NFKC'), salt, iterations, 32, 'sha256')
  const clientKey = createHmac('sha256', salted).update('Client Key').digest()
  const storedKey = createHash('sha256').update(clientKey).digest()
  const serverKey = createHmac('sha256', salted).update('Server Key').digest()
  return `SCRAM-SHA-256$${iterations}:${salt.toString('base64')}$${storedKey.toString('base64')}:${serverKey.toString('base64')}`
}
