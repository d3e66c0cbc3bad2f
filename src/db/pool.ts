// The one PostgreSQL client of the code base: a postgres.js pool created at start and closed at
// shutdown (never a pool per request — the lesson's /users anti-pattern).
import postgres from 'postgres'

export type Sql = postgres.Sql

export interface PoolOptions {
  max: number
  applicationName?: string
  /**
   * How long a query may wait for a connection while every one is taken (patches/postgres: the
   * driver's own queue would wait for ever); past it the query fails with QUEUE_TIMEOUT, which the
   * problem catalogue answers as 503 `database-busy`. Unset: no limit (one-off commands).
   */
  queueTimeoutMs?: number
  /** PostgreSQL's statement_timeout for this pool's sessions; 0 or unset: the server's own. */
  statementTimeoutMs?: number
  /** Named prepared statements, cached per connection (default true); false: the unnamed statement, every time. */
  prepare?: boolean
  /** Type OIDs whose values arrive as the server's text, not parsed (dates and timestamps as written, not Date). */
  textTypes?: number[]
  /** More settings of every session, sent when each connection opens. */
  settings?: Record<string, string>
}

export function createSql (url: string, { max, applicationName = 'data-api', queueTimeoutMs, statementTimeoutMs = 0, prepare = true, textTypes, settings }: PoolOptions): Sql {
  return postgres(url, {
    max,
    prepare,
    idle_timeout: 60,
    // Fail fast when the server is down: requests answer 503 instead of queueing for 30 s.
    connect_timeout: 5,
    queue_timeout: queueTimeoutMs === undefined ? null : queueTimeoutMs / 1000,
    // Seconds before a closed connection reconnects, while queries wait for it. postgres.js grows it
    // to 10-20 s after a few failed attempts, so during an outage every request would wait that long
    // to learn the database is down; capped, they learn it within half a second.
    backoff: (attempt: number) => Math.min(0.05 * 2 ** attempt, 0.5),
    connection: {
      application_name: applicationName,
      // Session settings every query may rely on, whatever the server's defaults: timestamps are
      // written and read in UTC, dates as YYYY-MM-DD.
      TimeZone: 'UTC',
      DateStyle: 'ISO, YMD',
      ...(statementTimeoutMs > 0 && { statement_timeout: statementTimeoutMs }),
      ...settings,
    },
    onnotice: () => {},
    types: {
      // int8 (ids, count(*)) as a JS number when it fits exactly, else the exact decimal string.
      bigint: {
        to: 20,
        from: [20],
        serialize: (value: number | bigint | string) => String(value),
        parse: (value: string) => {
          const number = Number(value)
          return Number.isSafeInteger(number) ? number : value
        },
      },
      ...(textTypes !== undefined && { asText: { to: 25, from: textTypes, serialize: (value: unknown) => String(value), parse: (value: string) => value } }),
    },
  })
}

/**
 * Runs `work` in a transaction without the pool's statement timeout: for the work of jobs and
 * one-off commands (imports, statistics, migrations), which may rightly run for minutes.
 */
export async function withoutStatementTimeout<T> (sql: Sql, work: (tx: postgres.TransactionSql) => Promise<T>): Promise<T> {
  return await sql.begin(async (tx) => {
    await tx`set local statement_timeout to 0`
    return await work(tx)
  }) as T
}
