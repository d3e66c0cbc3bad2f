// GET /datasets/{id}/export: every row, in row order, as CSV (header first) or NDJSON, streamed.
//
// The rows are read in chunks of consecutive row numbers holding about CHUNK_BYTES each: a chunk
// is copied out of PostgreSQL whole (COPY … TO STDOUT, as fast as the server sends it), its
// connection goes back to the pool, and only then is it written to the client, with backpressure.
// So a client that reads slowly holds memory for one chunk and no database connection at all, and
// every query is as short as any other request's (QUERY_TIMEOUT_MS applies to each).
import { Readable } from 'node:stream'
import type { Sql } from '../../db/pool.ts'
import { cancellable } from '../../lib/concurrency.ts'
import type { DatasetColumn } from './schemas.ts'
import { rowsTable, type RowsTable } from './table.ts'

const CHUNK_BYTES = 4 * 1024 * 1024
const CHUNK_ROWS = 100_000

export type ExportFormat = 'csv' | 'ndjson'

export function exportRows (sql: Sql, datasetId: number, columns: DatasetColumn[], format: ExportFormat, signal: AbortSignal): Readable {
  const table = rowsTable(datasetId)
  const size = ['0', ...columns.map((column) => table.size(column))].join(' + ')
  const line = format === 'csv' ? csvLine(table, columns) : ndjsonLine(table, columns)
  // CSV format with a quote and delimiter that JSON text never contains passes each NDJSON line
  // through untouched, where the text format would escape its backslashes.
  const options = format === 'csv' ? 'format csv' : `format csv, quote e'\\x01', delimiter e'\\x02'`

  /** The last row number of the chunk after `after`, or undefined when no row is left. */
  const chunkEnd = async (after: number): Promise<number | undefined> => {
    const [row] = await cancellable(sql<[{ last: number | null }]>`
      select max(_row) as last from (
        select _row, row_number() over running as n, sum(${sql.unsafe(size)}) over running as bytes
        from ${table.identifier(sql)} where _row > ${after}
        window running as (order by _row rows between unbounded preceding and current row)
        order by _row limit ${CHUNK_ROWS}
      ) chunk where n = 1 or bytes <= ${CHUNK_BYTES}`, signal)
    return row.last ?? undefined
  }
  const readChunk = async (after: number, last: number): Promise<Buffer[]> => {
    // COPY takes no parameters; the bounds are integers of ours.
    const copy = sql.unsafe(`copy (select ${line} from ${table.name} where _row > ${after} and _row <= ${last} order by _row) to stdout with (${options})`)
    const cancel = (): void => { void copy.cancel() }
    signal.addEventListener('abort', cancel, { once: true })
    try {
      const pieces: Buffer[] = []
      for await (const piece of await copy.readable() as AsyncIterable<Buffer>) pieces.push(piece)
      return pieces
    } finally {
      signal.removeEventListener('abort', cancel)
    }
  }

  return Readable.from((async function * () {
    if (format === 'csv') yield Buffer.from(columns.map((column) => csvField(column.name)).join(',') + '\n')
    if (columns.length === 0 && format === 'csv') return
    for (let after = 0, last = await chunkEnd(after); last !== undefined; after = last, last = await chunkEnd(after)) {
      yield * await readChunk(after, last)
    }
  })(), { objectMode: false })
}

/** The columns as a CSV line's fields, written so that the file imports back as the same rows. */
function csvLine (table: RowsTable, columns: DatasetColumn[]): string {
  return columns.length === 0 ? `''` : columns.map((column) => table.csvField(column)).join(', ')
}

/**
 * One JSON object per line, built in SQL with the names as JSON string literals. (json_build_object
 * takes at most 50 pairs; row_to_json would need the names as SQL identifiers, cut at 63 bytes.)
 */
function ndjsonLine (table: RowsTable, columns: DatasetColumn[]): string {
  if (columns.length === 0) return `'{}'`
  const members = columns.map((column, index) => `'${(index === 0 ? '' : ',') + JSON.stringify(column.name).replaceAll('\'', '\'\'')}:' || ${table.jsonField(column)}`)
  return `'{' || ${members.join(' || ')} || '}'`
}

function csvField (text: string): string {
  return /[",\r\n]/.test(text) || text.trim() !== text ? `"${text.replaceAll('"', '""')}"` : text
}
