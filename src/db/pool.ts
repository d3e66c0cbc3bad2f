// The one PostgreSQL client of the code base: a postgres.js pool created at start and closed at
// shutdown (never a pool per request — the lesson's /users anti-pattern).
import postgres from 'postgres'

export type Sql = postgres.Sql

export interface PoolOptions {
  max: number
  applicationName?: string
}

export function createSql (url: string, { max, applicationName = 'data-api' }: PoolOptions): Sql {
  return postgres(url, {
    max,
    idle_timeout: 60,
    // Fail fast when the server is down: requests answer 503 instead of queueing for 30 s.
    connect_timeout: 5,
    // Seconds before a closed connection reconnects, while queries wait for it. postgres.js grows it
    // to 10-20 s after a few failed attempts, so during an outage every request would wait that long
    // to learn the database is down; capped, they learn it within half a second.
    backoff: (attempt: number) => Math.min(0.05 * 2 ** attempt, 0.5),
    connection: { application_name: applicationName },
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
    },
  })
}
