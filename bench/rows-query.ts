// The SQL that data-api's routes run for one request, read from data-api's own code: the bench
// calls queryRows (src/routes/datasets/rows.ts), or any other query function (captureQueries), once
// through a postgres.js instance whose `debug` hook records every query it sends, so that a peer
// (the bare server, a direct postgres.js run) can run exactly that SQL.
import postgres from 'postgres'
import type { Sql } from '../src/db/pool.ts'
import { createDatasetsRepository } from '../src/routes/datasets/repository.ts'
import { queryRows, ROWS_PARAMETERS } from '../src/routes/datasets/rows.ts'
import type { DatasetColumn } from '../src/routes/datasets/schemas.ts'
import { DataQuery, type QueryString } from '../src/routes/datasets/view.ts'

export interface CapturedQuery {
  text: string
  /** As postgres.js sent them: the text of each value. */
  parameters: string[]
  /** Their type oids (0: left to PostgreSQL to infer). */
  types: number[]
}

/** The queries queryRows sends for a query string (the page itself answered too, to check it). */
export async function captureRowsQueries (databaseUrl: string, datasetId: number, query: QueryString, pageMaxBytes: number): Promise<{ queries: CapturedQuery[], rows: number }> {
  const { queries, value: page } = await captureQueries(databaseUrl, datasetId, async (sql, columns) =>
    await queryRows(sql, datasetId, new DataQuery(columns, query, ROWS_PARAMETERS), { signal: new AbortController().signal, maxBytes: pageMaxBytes }))
  return { queries, rows: page.rows.length }
}

/**
 * The queries `work` sends through a postgres.js instance of its own, given the data set's columns
 * (read before the recording starts), and what `work` returned.
 */
export async function captureQueries<T> (databaseUrl: string, datasetId: number, work: (sql: Sql, columns: DatasetColumn[]) => Promise<T>): Promise<{ queries: CapturedQuery[], value: T }> {
  const queries: CapturedQuery[] = []
  const sql = postgres(databaseUrl, {
    max: 1,
    onnotice: () => {},
    debug: (_connection, text, parameters, types) => { queries.push({ text, parameters: parameters as string[], types: types as number[] }) },
  })
  try {
    const columns = await createDatasetsRepository(sql).columns(datasetId)
    queries.length = 0 // only the queries of `work`, not the columns read above
    const value = await work(sql, columns)
    return { queries: [...queries], value }
  } finally {
    await sql.end()
  }
}
