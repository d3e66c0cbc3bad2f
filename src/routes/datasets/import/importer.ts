// Loads rows into a data set's own table with COPY … FROM STDIN, inside the caller's transaction:
// if anything fails, the rollback leaves no table behind.
//
// Types come from a sample (the first rows), then every value is checked as it streams past with
// the codec of its column's type (column-types.ts), which accepts exactly what PostgreSQL does. A
// value that does not fit its column widens the column first: the COPY in progress is finished,
// the column is altered (at most twice per column: integer → numeric → text), and a new COPY goes
// on. A column never narrows, so each row is written once.
import { once } from 'node:events'
import type { Writable } from 'node:stream'
import { finished } from 'node:stream/promises'
import { setImmediate } from 'node:timers/promises'
import type { TransactionSql } from 'postgres'
import { chosenLiteral, fieldLiteral, isMissing, typeOf, widen, type ColumnType, type Value } from '../column-types.ts'
import type { DatasetColumn } from '../schemas.ts'
import type { RowsTable } from '../table.ts'
import { InvalidDataError, type DataLocation } from './invalid-data.ts'
import type { ParsedRow, RowSource } from './sources.ts'

export interface ImportResult {
  rows: number
  columns: DatasetColumn[]
  /** Where row n (its `_row`, 1…rows) came from: its line or item, for errors found after the COPY. */
  locationOf: (row: number) => DataLocation
}

export interface ImportOptions {
  /** Called every PROGRESS_ROWS rows with the count so far (for "rows so far" while importing). */
  onProgress?: (rows: number) => Promise<void>
  /**
   * The type a column of this name has already (an append into a data set): its values are
   * checked against that type and widen it as they would widen a column of an import.
   */
  knownType?: (name: string) => ColumnType | undefined
  /** COPY … FREEZE (default true): only into a table created in this transaction. */
  freeze?: boolean
  /** Column types the client chose (`?types=`), by column name: not inferred, never widened. */
  types?: Readonly<Record<string, ColumnType>>
}

const SAMPLE_ROWS = 1_000
const CHUNK_CHARS = 256 * 1024
const PROGRESS_ROWS = 50_000

// COPY text format: backslash, newline, carriage return and tab are escaped; \N is NULL.
const NEEDS_ESCAPE = /[\\\n\r\t]/
const ESCAPES: Record<string, string> = { '\\': '\\\\', '\n': '\\n', '\r': '\\r', '\t': '\\t' }

function copyField (text: string): string {
  return NEEDS_ESCAPE.test(text) ? text.replace(/[\\\n\r\t]/g, (character) => ESCAPES[character]!) : text
}

/**
 * A COPY … FROM STDIN of postgres.js, its errors watched for the stream's whole life: when the
 * server rejects a row while the COPY is open, postgres.js destroys the stream with that error,
 * and an 'error' nobody listens to would end the process.
 */
class CopyIn {
  readonly #stream: Writable
  readonly #done: Promise<void>

  private constructor (stream: Writable) {
    this.#stream = stream
    this.#done = finished(stream)
    this.#done.catch(() => {}) // awaited by write() and end(); this only marks it observed
  }

  static async open (tx: TransactionSql, statement: string): Promise<CopyIn> {
    return new CopyIn(await tx.unsafe(statement).writable())
  }

  async write (chunk: string): Promise<void> {
    if (this.#stream.write(chunk)) return
    await Promise.race([once(this.#stream, 'drain'), this.#done])
  }

  async end (): Promise<void> {
    this.#stream.end()
    await this.#done
  }

  destroy (): void {
    this.#stream.destroy()
  }
}

/**
 * Where each row came from, to name the line of a row PostgreSQL refused: the lines of rows
 * 1…N are recorded only where they stop following on from the row before (a quoted field over
 * several lines, a blank line), so this costs nothing for ordinary files.
 */
class RowLines {
  readonly #rows: number[] = []
  readonly #lines: number[] = []

  record (row: number, line: number): void {
    const last = this.#rows.length - 1
    if (last >= 0 && line - this.#lines[last]! === row - this.#rows[last]!) return
    this.#rows.push(row)
    this.#lines.push(line)
  }

  lineOf (row: number): number | undefined {
    let at = -1
    for (let low = 0, high = this.#rows.length - 1; low <= high;) {
      const middle = (low + high) >>> 1
      if (this.#rows[middle]! <= row) {
        at = middle
        low = middle + 1
      } else {
        high = middle - 1
      }
    }
    return at === -1 ? undefined : this.#lines[at]! + row - this.#rows[at]!
  }
}

export async function importRows (tx: TransactionSql, table: RowsTable, source: RowSource, options: ImportOptions = {}): Promise<ImportResult> {
  const types: Array<ColumnType | null> = []
  const nullable: boolean[] = []
  const where = (line: number): DataLocation => ({ [source.unit]: line })
  const chosen = new Map(Object.entries(options.types ?? {}))
  /** The chosen type of each column position, once its name is known. */
  const chosenTypes: Array<ColumnType | undefined> = []
  const choose = (): void => {
    source.columns.forEach((name, index) => { chosenTypes[index] = chosen.get(name) })
  }
  /** Every chosen column must be one of the data's: checked once the header is read (or at the end, for JSON). */
  const checkChosen = (): void => {
    const unknown = [...chosen.keys()].filter((name) => !source.columns.includes(name))
    if (unknown.length === 0) return
    const location = source.headerLine === undefined ? {} : where(source.headerLine)
    throw new InvalidDataError(`\`types\` names ${unknown.map((name) => `"${name}"`).join(', ')}, which the data has no column of (its columns: ${source.columns.slice(0, 20).map((name) => `"${name}"`).join(', ')}${source.columns.length > 20 ? ', …' : ''})`, location)
  }

  // Read the sample with next(): breaking out of a for-await would close the generator.
  const batches = source.batches()
  const sample: ParsedRow[] = []
  while (sample.length < SAMPLE_ROWS) {
    const next = await batches.next()
    if (next.done === true) break
    sample.push(...next.value)
  }
  // Columns the data set has already start at their type (an append), the others at none.
  source.columns.forEach((name, index) => { types[index] = options.knownType?.(name) ?? null })
  if (source.headerLine !== undefined) checkChosen()
  choose()
  for (const { values } of sample) {
    for (let index = 0; index < source.columns.length; index++) {
      const value = values[index]
      if (!isMissing(value) && chosenTypes[index] === undefined) types[index] = widen(types[index] ?? null, typeOf(value!, source.valueKind))
    }
  }
  // A column with nothing but missing values in the sample starts as text (the widest).
  const created = source.columns.map((_, index) => chosenTypes[index] ?? types[index] ?? 'text')
  created.forEach((type, index) => { types[index] = type })
  await table.create(tx, created)

  let copy: CopyIn | undefined
  let copyFirstRow = 1
  let chunk = ''
  let rows = 0
  const lines = new RowLines()
  const openCopy = async (): Promise<void> => {
    copy = await CopyIn.open(tx, table.copyIn(types.length, { freeze: options.freeze ?? true })) // the table is this transaction's
    copyFirstRow = rows + 1
  }
  const flush = async (): Promise<void> => {
    if (chunk === '' || copy === undefined) return
    const text = chunk
    chunk = ''
    await copy.write(text)
    // An upload held in memory and a COPY socket the kernel drains as fast as it is written never
    // make this wait for I/O (the socket's write callbacks come as ticks): without a turn of the
    // event loop per chunk, an import would hold it for seconds and every other request with it.
    await setImmediate()
  }
  const closeCopy = async (): Promise<void> => {
    await flush()
    const closing = copy
    copy = undefined
    await closing?.end()
  }
  /** Changes the table under the COPY: finish it, alter, start a new one. */
  const alter = async (change: () => Promise<void>): Promise<void> => {
    await closeCopy()
    await change()
    await openCopy()
  }

  /**
   * Appends the rows to the COPY chunk, synchronously while every value fits; returns the index
   * of the first row that needs its table changed (a new or wider column), or -1 when all fit.
   */
  const appendRows = (batch: ParsedRow[], from: number): number => {
    const width = source.columns.length
    for (let at = from; at < batch.length; at++) {
      const { values, line } = batch[at]!
      if (width > types.length) return at
      let text = String(rows + 1)
      for (let index = 0; index < width; index++) {
        const value = values[index]
        if (isMissing(value)) {
          nullable[index] = true
          text += '\t\\N'
          continue
        }
        const chosenType = chosenTypes[index]
        const fitting = chosenType === undefined ? fieldLiteral(types[index]!, value!, source.valueKind) : chosenLiteral(chosenType, value!, source.valueKind)
        if (fitting === undefined) {
          if (chosenType !== undefined && chosenType !== 'text') {
            throw new InvalidDataError(`the value ${JSON.stringify(String(value).slice(0, 100))} of column "${source.columns[index]}" is not a ${chosenType}, the type \`types\` chose for it`, where(line))
          }
          if (types[index] === 'text') throw new InvalidDataError(`the value of column "${source.columns[index]}" contains a character PostgreSQL cannot store (NUL, U+0000, or a lone UTF-16 surrogate)`, where(line))
          return at
        }
        // Only text can hold COPY's special characters: the other codecs' literals are plain.
        text += '\t' + ((chosenType ?? types[index]) === 'text' ? copyField(fitting) : fitting)
      }
      chunk += text + '\n'
      rows++
      lines.record(rows, line)
    }
    return -1
  }

  /** Makes the table hold every value of `values`: new columns, wider types. */
  const accommodate = async (values: Value[]): Promise<void> => {
    for (let index = 0; index < source.columns.length; index++) {
      const value = values[index]
      const type = isMissing(value) ? null : typeOf(value!, source.valueKind)
      const current = types[index]
      if (current === undefined) {
        // A key first seen in a later JSON object: a new column, null in the rows before.
        chosenTypes[index] = chosen.get(source.columns[index]!)
        const added = chosenTypes[index] ?? widen(options.knownType?.(source.columns[index]!) ?? null, type) ?? 'text'
        types[index] = added
        nullable[index] = rows > 0 || type === null
        await alter(async () => { await table.addColumn(tx, index, added) })
      } else if (type !== null && chosenTypes[index] === undefined && widen(current, type) !== current) {
        const wider = widen(current, type)!
        types[index] = wider
        await alter(async () => { await table.widenColumn(tx, index, wider) })
      }
    }
  }

  const writeBatch = async (batch: ParsedRow[]): Promise<void> => {
    const before = rows
    for (let from = 0; from < batch.length;) {
      const stopped = appendRows(batch, from)
      if (stopped === -1) break
      await accommodate(batch[stopped]!.values)
      from = stopped
    }
    if (chunk.length >= CHUNK_CHARS) await flush()
    if (Math.floor(rows / PROGRESS_ROWS) > Math.floor(before / PROGRESS_ROWS)) await options.onProgress?.(rows)
  }

  await openCopy()
  try {
    await writeBatch(sample)
    for (let next = await batches.next(); next.done !== true; next = await batches.next()) await writeBatch(next.value)
    checkChosen()
    await closeCopy()
  } catch (error) {
    throw refusedRow(error, copyFirstRow, lines, source.unit) ?? error
  } finally {
    copy?.destroy()
  }
  await table.addPrimaryKey(tx)
  return {
    rows,
    locationOf: (row) => {
      const line = lines.lineOf(row)
      return line === undefined ? {} : { [source.unit]: line }
    },
    columns: source.columns.map((name, position) => ({ position, name, type: types[position] ?? 'text', nullable: nullable[position] === true })),
  }
}

/**
 * A row PostgreSQL refused during the COPY (a data exception, SQLSTATE class 22, or a row past a
 * limit, class 54) as the invalid-data problem of its line. The codec should let no such value
 * through; this keeps a gap in it a clear 400 rather than a failure of the service.
 */
function refusedRow (error: unknown, copyFirstRow: number, lines: RowLines, unit: RowSource['unit']): InvalidDataError | undefined {
  const { code, message, where } = error as { code?: string, message?: string, where?: string }
  if (typeof code !== 'string' || !/^(22|54)/.test(code)) return undefined
  const copyLine = Number(/line (\d+)/.exec(where ?? '')?.[1])
  const line = Number.isInteger(copyLine) ? lines.lineOf(copyFirstRow + copyLine - 1) : undefined
  return new InvalidDataError(`PostgreSQL refused a value: ${message ?? code}`, line === undefined ? {} : { [unit]: line })
}
