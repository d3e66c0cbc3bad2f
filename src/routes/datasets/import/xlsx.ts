// The first sheet of an Excel workbook (.xlsx) as rows, through exceljs's streaming reader: the
// zip is read as it arrives, a row at a time (a sheet stored before the shared strings waits in a
// temporary file: exceljs's own way, bounded by DATASET_MAX_BYTES like the upload).
//
// The first row names the columns. Cells keep the type Excel gives them: numbers are numbers,
// cells formatted as dates are dates (YYYY-MM-DD at midnight UTC, else a timestamp in UTC), text
// stays text (a "0123" typed as text stays "0123"), a formula is its cached result, an error
// (#N/A) is a missing value. Rows are numbered as Excel numbers them, so an error names the row
// a user sees. A cell right of the header adds a column (named column_N).
import { Readable } from 'node:stream'
import ExcelJS from 'exceljs'
import type { Value } from '../column-types.ts'
import { InvalidDataError } from './invalid-data.ts'
import { ColumnNames, type ParsedRow, type RowSource } from './row-source.ts'

const BATCH_ROWS = 1_000
const DAY_MS = 86_400_000

export function xlsxSource (input: AsyncIterable<Buffer>): RowSource {
  const header = new ColumnNames()
  return {
    columns: header.names,
    valueKind: 'json',
    unit: 'line',
    headerLine: 1,
    async * batches () {
      // Errors of the input (413, a client gone) are passed on as they are; the reader's own mean
      // the bytes are no workbook.
      const bytes = Readable.from(input, { objectMode: false })
      let inputError: Error | undefined
      bytes.once('error', (error: Error) => { inputError = error })
      const workbook = new ExcelJS.stream.xlsx.WorkbookReader(bytes, { worksheets: 'emit', sharedStrings: 'cache', styles: 'cache', hyperlinks: 'ignore', entries: 'ignore' })
      let batch: ParsedRow[] = []
      let isHeaderRead = false
      try {
        for await (const sheet of workbook) {
          // The first sheet in the workbook's order (its tabs), which need not be the first in the
          // zip: once workbook.xml is read, exceljs names each sheet it yields.
          const first = (workbook as unknown as { model?: { sheets?: Array<{ name?: string }> } }).model?.sheets?.[0]?.name
          if (first !== undefined && (sheet as unknown as { name?: string }).name !== first) continue
          for await (const row of sheet) {
            const cells = (row.values as unknown[]).slice(1).map(cellValue)
            if (!isHeaderRead) {
              cells.forEach((cell) => header.add(cell === null ? '' : String(cell), { line: row.number }))
              isHeaderRead = true
              continue
            }
            for (let index = header.names.length; index < cells.length; index++) if (cells[index] !== null) header.add('', { line: row.number })
            batch.push({ line: row.number, values: cells.slice(0, header.names.length) })
            if (batch.length >= BATCH_ROWS) {
              yield batch
              batch = []
            }
          }
          break // the first sheet only: the rest of the zip is not read
        }
      } catch (error) {
        if (inputError !== undefined) throw inputError
        if (error instanceof InvalidDataError) throw error
        throw new InvalidDataError(`the file is not a readable .xlsx workbook (${error instanceof Error ? error.message.slice(0, 200) : 'unknown error'})`)
      } finally {
        bytes.destroy()
      }
      if (inputError !== undefined) throw inputError
      if (batch.length > 0) yield batch
      if (!isHeaderRead) throw new InvalidDataError('the workbook\'s first sheet is empty: a header row naming the columns comes first')
    },
  }
}

/** A cell's value as a data set's value (see the top of this file). */
function cellValue (cell: unknown): Value {
  if (cell === null || cell === undefined) return null
  if (typeof cell === 'number') return Number.isFinite(cell) ? cell : null
  if (typeof cell === 'string' || typeof cell === 'boolean') return cell
  if (cell instanceof Date) return dateText(cell)
  if (typeof cell === 'object') {
    const object = cell as { result?: unknown, richText?: Array<{ text: string }>, text?: unknown, error?: unknown }
    if ('error' in object) return null
    if ('result' in object) return cellValue(object.result)
    if (Array.isArray(object.richText)) return object.richText.map((run) => run.text).join('')
    if (typeof object.text === 'string') return object.text
  }
  return null
}

function dateText (date: Date): Value {
  const time = date.getTime()
  if (!Number.isFinite(time)) return null
  const iso = date.toISOString()
  return time % DAY_MS === 0 ? iso.slice(0, 10) : iso
}
