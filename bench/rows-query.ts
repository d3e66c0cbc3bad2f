// The SQL that data-api's rows route runs for one request, read from data-api's own code: the
// bench calls queryRows (src/routes/datasets/rows.ts) once through a postgres.js instance whose
// `debug` hook records every query it sends, so that the bare peer can run exactly that SELECT.
import postgres from 'postgres'
import { createDatasetsRepository } from '../src/routes/datasets/repository.ts'
import { queryRows, ROWS_PARAMETERS } from '../src/routes/datasets/rows.ts'
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
  const queries: CapturedQuery[] = []
  const sql = postgres(databaseUrl, {
    max: 1,
    onnotice: () => {},
    debug: (_connection, text, parameters, types) => { queries.push({ text, parameters: parameters as string[], types: types as number[] }) },
  })
  try {
    const columns = await createDatasetsRepository(sql).columns(datasetId)
    queries.length = 0 // only the rows query, not the columns read above
    const page = await queryRows(sql, datasetId, new DataQuery(columns, query, ROWS_PARAMETERS), { signal: new AbortController().signal, maxBytes: pageMaxBytes })
    return { queries: [...queries], rows: page.rows.length }
  } finally {
    await sql.end()
  }
}
