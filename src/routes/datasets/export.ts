// GET /datasets/{id}/export: every row, in row order, as CSV (header first) or NDJSON, streamed.
//
// The rows are read in ranges of row numbers sized to hold about CHUNK_BYTES: a range is copied
// out of PostgreSQL whole (COPY … TO STDOUT, as fast as the server sends it), its connection goes
// back to the pool, and only then is it written to the client, with backpressure. So a client that
// reads slowly holds memory for one chunk and no database connection at all, and every query is as
// short as any other request's (QUERY_TIMEOUT_MS applies to each). The first range is sized from
// the upload's bytes per row, each next one from the bytes per row number of the last, so wide
// rows make narrow ranges (a 40 MB value is a chunk of its own).
import { Readable } from 'node:stream'
import type { Sql } from '../../db/pool.ts'
import { cancellable } from '../../lib/concurrency.ts'
import type { DatasetColumn } from './schemas.ts'
import { rowsTable, type RowsTable } from './table.ts'

const CHUNK_BYTES = 4 * 1024 * 1024
const MAX_RANGE = 1_000_000

export type ExportFormat = 'csv' | 'ndjson'

/** The stream of the rows; its bounds are read first, so that a table gone is an error here, not a cut stream. */
export async function exportRows (sql: Sql, dataset: { id: number, rows: number, bytes: number }, columns: DatasetColumn[], format: ExportFormat, signal: AbortSignal): Promise<Readable> {
  const table = rowsTable(dataset.id)
  const line = format === 'csv' ? csvLine(table, columns) : ndjsonLine(table, columns)
  // CSV format with a quote and delimiter that JSON text never contains passes each NDJSON line
  // through untouched, where the text format would escape its backslashes.
  const options = format === 'csv' ? 'format csv' : `format csv, quote e'\\x01', delimiter e'\\x02'`

  /** The rows numbered after `after` and up to `last`, as one buffer. */
  const readRange = async (after: number, last: number): Promise<Buffer> => {
    // COPY takes no parameters; the bounds are integers of ours.
    const copy = sql.unsafe(`copy (select ${line} from ${table.name} where _row > ${after} and _row <= ${last} order by _row) to stdout with (${options})`)
    const cancel = (): void => { void copy.cancel() }
    signal.addEventListener('abort', cancel, { once: true })
    try {
      // Each piece (a row, as postgres.js hands it on) is copied out at once, so that it dies young:
      // a chunk of them kept until the end would outlive the young generation and swell the heap.
      let chunk = Buffer.allocUnsafe(CHUNK_BYTES)
      let length = 0
      for await (const piece of await copy.readable() as AsyncIterable<Buffer>) {
        if (length + piece.length > chunk.length) {
          const larger = Buffer.allocUnsafe(Math.max(2 * chunk.length, length + piece.length))
          chunk.copy(larger, 0, 0, length)
          chunk = larger
        }
        length += piece.copy(chunk, length)
      }
      return chunk.subarray(0, length)
    } finally {
      signal.removeEventListener('abort', cancel)
    }
  }

  const [{ last }] = await cancellable(sql<[{ last: number | null }]>`select max(_row) as last from ${table.identifier(sql)}`, signal)
  return Readable.from((async function * () {
    if (format === 'csv') yield Buffer.from(columns.map((column) => csvField(column.name)).join(',') + '\n')
    if (columns.length === 0 && format === 'csv') return
    const rangeFor = (bytesPerRow: number): number => Math.max(1, Math.min(MAX_RANGE, Math.floor(CHUNK_BYTES / Math.max(bytesPerRow, 1))))
    let range = rangeFor(dataset.bytes / Math.max(dataset.rows, 1))
    for (let after = 0; after < (last ?? 0);) {
      const chunk = await readRange(after, after + range)
      if (chunk.length > 0) yield chunk
      after += range
      range = rangeFor(chunk.length / range)
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
