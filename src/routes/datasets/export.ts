// GET /datasets/{id}/export: the rows of the view a client built on /rows (the same filters,
// `_q`, `_sort` and `_select`; all rows in row order without them) as CSV (header first) or NDJSON,
// streamed.
//
// The rows are read in chunks of about CHUNK_BYTES: a chunk is read from PostgreSQL whole, its
// connection goes back to the pool, and only then is it written to the client, with backpressure.
// So a client that reads slowly holds memory for one chunk and no database connection at all, and
// every query is as short as any other request's (QUERY_TIMEOUT_MS applies to each). In row order
// a chunk is a range of row numbers copied out as it is (COPY … TO STDOUT, as fast as the server
// sends it); in another order, the next rows of the walk rows.ts pages through, read with their row
// numbers to go on from. The first chunk is sized from the upload's bytes per row, each next one
// from the bytes per row of the last, so wide rows make small chunks (a 40 MB value is a chunk of
// its own).
import { Readable } from 'node:stream'
import type { Sql } from '../../db/pool.ts'
import { reserveConnection } from '../../db/scoped.ts'
import { cancellable } from '../../lib/concurrency.ts'
import { readSort, walkRanges, type WalkRange } from './rows.ts'
import type { DatasetColumn } from './schemas.ts'
import { rowsTable, type RowsTable } from './table.ts'
import type { ApiParameter, DataQuery } from './view.ts'

const CHUNK_BYTES = 4 * 1024 * 1024
const MAX_RANGE = 1_000_000

export type ExportFormat = 'csv' | 'ndjson'
/** The API parameters of GET /datasets/{id}/export. */
export const EXPORT_PARAMETERS = ['format', 'sort', 'select', 'q'] as const satisfies readonly ApiParameter[]

/** The stream of the rows; its bounds are read first, so that a table gone is an error here, not a cut stream. */
export async function exportRows (sql: Sql, dataset: { id: number, rows: number, bytes: number }, query: DataQuery, signal: AbortSignal): Promise<{ format: ExportFormat, rows: Readable }> {
  const table = rowsTable(dataset.id)
  const format = query.one('format') ?? 'csv'
  const sort = readSort(sql, table, query)
  const columns = query.columnList('select') ?? query.columns
  const filtered = query.where(sql, table)
  const line = format === 'csv' ? csvLine(table, columns) : ndjsonLine(table, columns)
  const walkLine = format === 'csv' ? csvQuotedLine(table, columns) : line
  // CSV format with a quote and delimiter that JSON text never contains passes each NDJSON line
  // through untouched, where the text format would escape its backslashes.
  const options = format === 'csv' ? 'format csv' : `format csv, quote e'\\x01', delimiter e'\\x02'`
  const rowsPerChunk = (bytesPerRow: number): number => Math.max(1, Math.min(MAX_RANGE, Math.floor(CHUNK_BYTES / Math.max(bytesPerRow, 1))))
  const header = format === 'csv' ? Buffer.from(columns.map((column) => csvField(column.name)).join(',') + '\n') : undefined

  /** The rows numbered after `after` and up to `last`, as one buffer: COPY's own output. */
  const copyRange = async (after: number, last: number): Promise<Buffer> => {
    // COPY takes no parameters; the bounds are integers of ours.
    // On a connection of its own for the range only: postgres.js would pipeline another query of
    // the pool onto a connection in COPY (COPY_IN_PROGRESS), and a slow client holds none.
    await using db = await reserveConnection(sql, signal)
    const copy = db.unsafe(`copy (select ${line} from ${table.name} where _row > ${after} and _row <= ${last} order by _row) to stdout with (${options})`)
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

  /** Up to `count` rows of a walk's range that pass the filters, after row `after`: their lines as one text, and the last row's number. */
  // Each chunk goes on after the last row of the one before and its sort key, so that a row
  // deleted meanwhile does not end the walk (rows.ts).
  const keyText = sort.key === undefined ? sql`null::text` : sort.key.text
  const readWalk = async (range: WalkRange, after: { row: number, key: string | null } | undefined, count: number): Promise<{ text: string, last: { row: number, key: string | null } | null, rows: number }> => {
    const start = after === undefined ? sql`true` : range.after(after.row, after.key === null ? undefined : sort.key?.read(after.key))
    const [chunk] = await cancellable(sql<[{ text: string | null, last: number | null, last_key: string | null, rows: number }]>`
      select coalesce(string_agg(line, '' order by n), '') as text, (array_agg(_row order by n desc))[1] as last, (array_agg(_key order by n desc))[1] as last_key, count(*)::int4 as rows
      from (
        select ${sql.unsafe(walkLine)} || e'\\n' as line, _row, ${keyText} as _key, row_number() over (order by ${range.order}) as n
        from ${table.identifier(sql)} where ${filtered} and ${range.where} and ${start}
        order by ${range.order} limit ${count}
      ) chunk`, signal)
    return { text: chunk.text ?? '', last: chunk.last === null ? null : { row: Number(chunk.last), key: chunk.last_key }, rows: chunk.rows }
  }

  const [{ last }] = await cancellable(sql<[{ last: number | null }]>`select max(_row) as last from ${table.identifier(sql)}`, signal)
  const everyRow = !query.isFiltered && sort.key === undefined
  return {
    format,
    rows: Readable.from((async function * () {
      if (header !== undefined) yield header
      if (columns.length === 0 && format === 'csv') return
      let size = rowsPerChunk(dataset.bytes / Math.max(dataset.rows, 1))
      if (everyRow) {
        // All rows in row order: ranges of row numbers, copied out as they are.
        for (let after = 0; after < (last ?? 0);) {
          const chunk = await copyRange(after, after + size)
          if (chunk.length > 0) yield chunk
          after += size
          size = rowsPerChunk(chunk.length / size)
        }
        return
      }
      for (const range of walkRanges(sql, table, sort)) {
        for (let after: { row: number, key: string | null } | undefined; ;) {
          const chunk = await readWalk(range, after, size)
          if (chunk.rows > 0) yield Buffer.from(chunk.text)
          if (chunk.rows < size || chunk.last === null) break
          after = chunk.last
          size = rowsPerChunk(Buffer.byteLength(chunk.text) / chunk.rows)
        }
      }
    })(), { objectMode: false }),
  }
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

/**
 * The columns as a CSV line quoted in SQL as COPY quotes it (a missing value empty, an empty text
 * `""`, a value holding a comma, quote or line break quoted), for chunks read by a query.
 */
function csvQuotedLine (table: RowsTable, columns: DatasetColumn[]): string {
  if (columns.length === 0) return `''`
  return columns.map((column) => {
    const v = `(${table.csvField(column)})::text`
    return `case when ${v} is null then '' when ${v} = '' or ${v} ~ '[",\\r\\n]' then '"' || replace(${v}, '"', '""') || '"' else ${v} end`
  }).join(` || ',' || `)
}

function csvField (text: string): string {
  return /[",\r\n]/.test(text) || text.trim() !== text ? `"${text.replaceAll('"', '""')}"` : text
}
