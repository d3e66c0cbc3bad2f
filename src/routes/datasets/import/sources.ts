// Readers that turn an upload (CSV, NDJSON or a JSON array of objects) into batches of rows,
// streaming: a batch is read only when the importer asks for it, so the upload is never held whole
// in memory and a slow database slows the reading down (backpressure).
//
// Every row carries the line (CSV, NDJSON) or item (JSON array) it came from, so a malformed
// upload is refused with "line 1234: …".
import { Readable } from 'node:stream'
import Papa from 'papaparse'
import { streamArray } from 'stream-json/streamers/stream-array.js'
import { literal, type Value, type ValueKind } from '../column-types.ts'
import { decodeText } from './decode.ts'
import type { Format } from './formats.ts'
import { InvalidDataError, type DataLocation } from './invalid-data.ts'

/** A row as a source read it: its values, and the line (or JSON item) it came from. */
export interface ParsedRow { line: number, values: Value[] }

export interface RowSource {
  /** Column names so far; JSON sources append a name when a later object brings a new key. */
  readonly columns: string[]
  readonly valueKind: ValueKind
  /** Whether rows are numbered by line (CSV, NDJSON) or by item (JSON array), for error messages. */
  readonly unit: 'line' | 'item'
  batches: () => AsyncGenerator<ParsedRow[]>
}

const BATCH_ROWS = 1_000 // JSON sources; CSV batches are what one chunk of input holds
const MAX_COLUMNS = 1_000
const MAX_NAME_LENGTH = 200

/** Names as given, made usable: trimmed, never empty, unique ("name", "name_2"), storable. */
class ColumnNames {
  readonly names: string[] = []
  readonly #positions = new Map<string, number>()
  readonly #taken = new Set<string>()

  /** Appends a column (a CSV header field: two fields of one name are two columns). */
  add (given: string, where: DataLocation): number {
    if (this.names.length >= MAX_COLUMNS) throw new InvalidDataError(`more than ${MAX_COLUMNS} columns`, where)
    if (literal('text', given) === undefined) throw new InvalidDataError(`column name ${this.names.length + 1} contains a character PostgreSQL cannot store (NUL, or a lone UTF-16 surrogate)`, where)
    const base = [...given.trim()].slice(0, MAX_NAME_LENGTH).join('') || `column_${this.names.length + 1}`
    let name = base
    for (let suffix = 2; this.#taken.has(name.toLowerCase()); suffix++) name = `${[...base].slice(0, MAX_NAME_LENGTH - 8).join('')}_${suffix}`
    this.#taken.add(name.toLowerCase())
    this.names.push(name)
    return this.names.length - 1
  }

  /** The position of the column a JSON key maps to, adding it if new. */
  positionOf (key: string, where: DataLocation): number {
    const known = this.#positions.get(key)
    if (known !== undefined) return known
    const position = this.add(key, where)
    this.#positions.set(key, position)
    return position
  }
}

export function rowSource (format: Format, input: AsyncIterable<Buffer>, charset: string): RowSource {
  const text = decodeText(input, charset)
  return format === 'csv' ? csvSource(text) : jsonSource(format, text)
}

function csvSource (input: AsyncIterable<string>): RowSource {
  const header = new ColumnNames()
  return {
    columns: header.names,
    valueKind: 'text',
    unit: 'line',
    async * batches () {
      // papaparse's own stream reader ignores pause(), so the upload is read here, a chunk at a
      // time (pull: backpressure for free), and handed to its parser. A row cut by the end of a
      // chunk is parsed again with the next one. The parser is made once the line break is known.
      const lineBreak = new LineBreak()
      let parser: Papa.Parser | undefined
      let lineEnd = '\n' // the character that ends a line, for line numbers
      let pending = ''
      let line = 1
      const rowsOf = (text: string, last: boolean): ParsedRow[] => {
        if (parser === undefined) {
          const newline = lineBreak.end()
          parser = new Papa.Parser({ delimiter: ',', newline })
          lineEnd = newline === '\r' ? '\r' : '\n'
        }
        const results = parser.parse(text, 0, !last) as Papa.ParseResult<string[]>
        const rows: ParsedRow[] = []
        results.data.forEach((fields: string[], index: number) => {
          const startLine = line
          for (const field of fields) for (let at = field.indexOf(lineEnd); at !== -1; at = field.indexOf(lineEnd, at + 1)) line++
          line++
          const error = results.errors.find((candidate) => candidate.row === index)
          if (error !== undefined) throw new InvalidDataError(csvErrorMessage(error), { line: startLine })
          if (header.names.length === 0) {
            fields.forEach((name) => header.add(name, { line: startLine }))
          } else if (fields.length === 1 && fields[0] === '' && header.names.length > 1) {
            // a blank line
          } else if (fields.length !== header.names.length) {
            throw new InvalidDataError(`expected ${header.names.length} fields as in the header, found ${fields.length}`, { line: startLine })
          } else {
            rows.push({ line: startLine, values: fields })
          }
        })
        pending = text.substring(results.meta.cursor)
        return rows
      }
      // A row longer than a chunk (a 40 MB field) would be parsed again with every chunk: once
      // text held no whole row, it is parsed again only when it has doubled (linear overall).
      let unparsed: string[] = []
      let unparsedLength = 0
      let retryAt = 0
      for await (const chunk of input) {
        if (lineBreak.found === undefined) lineBreak.feed(chunk)
        unparsed.push(chunk)
        unparsedLength += chunk.length
        if (lineBreak.found === undefined || unparsedLength < retryAt) continue
        const text = pending + unparsed.join('')
        unparsed = []
        unparsedLength = 0
        const rows = rowsOf(text, false)
        retryAt = rows.length === 0 ? pending.length : 0
        if (rows.length > 0) yield rows
      }
      pending += unparsed.join('')
      const rows = rowsOf(pending, true)
      if (rows.length > 0) yield rows
      if (header.names.length === 0) throw new InvalidDataError('the CSV is empty: a header line naming the columns comes first')
    },
  }
}

type Newline = '\n' | '\r\n' | '\r'

/**
 * The line break of a CSV file: its first one outside quotes, "\r\n", "\n" or "\r". papaparse's
 * Parser splits rows at "\n" unless told otherwise (only Papa.parse guesses): the last value of
 * every row of a CRLF file kept its "\r" (and so became text), and a file of "\r" line breaks was
 * one header row.
 */
class LineBreak {
  found: Newline | undefined
  #quoted = false
  #afterCr = false

  feed (text: string): void {
    for (let at = 0; at < text.length && this.found === undefined; at++) {
      const character = text[at]
      if (this.#afterCr) this.found = character === '\n' ? '\r\n' : '\r'
      else if (character === '"') this.#quoted = !this.#quoted
      else if (!this.#quoted && character === '\n') this.found = '\n'
      else if (!this.#quoted && character === '\r') this.#afterCr = true
    }
  }

  /** The line break as far as the text read tells: a "\r" at its very end is one; none at all, "\n". */
  end (): Newline {
    return this.found ?? (this.#afterCr ? '\r' : '\n')
  }
}

function csvErrorMessage (error: Papa.ParseError): string {
  if (error.code === 'MissingQuotes') return 'a quoted field is not closed'
  if (error.code === 'InvalidQuotes') return 'a quote inside a quoted field must be doubled ("")'
  return 'the CSV could not be read'
}

function jsonSource (format: 'json' | 'ndjson', input: AsyncIterable<string>): RowSource {
  const names = new ColumnNames()
  const unit = format === 'json' ? 'item' : 'line'
  const toRow = (object: unknown, position: number): ParsedRow => {
    const where = { [unit]: position }
    if (typeof object !== 'object' || object === null || Array.isArray(object)) throw new InvalidDataError('expected a JSON object', where)
    const values: Value[] = []
    for (const [key, field] of Object.entries(object)) values[names.positionOf(key, where)] = jsonValue(field, where)
    return { line: position, values }
  }
  return {
    columns: names.names,
    valueKind: 'json',
    unit,
    async * batches () {
      let batch: ParsedRow[] = []
      for await (const [value, position] of format === 'json' ? jsonArrayItems(input) : ndjsonLines(input)) {
        batch.push(toRow(value, position))
        if (batch.length >= BATCH_ROWS) {
          yield batch
          batch = []
        }
      }
      if (batch.length > 0) yield batch
    },
  }
}

/** A field of a JSON object as a value: nested objects and arrays become their JSON text. */
function jsonValue (field: unknown, where: DataLocation): Value {
  if (typeof field === 'number' && !Number.isFinite(field)) throw new InvalidDataError('a number is out of the range of a double (about ±1.8e308)', where)
  if (typeof field !== 'object' || field === null) return field as Value
  try {
    return JSON.stringify(field, (_key, value: unknown) => {
      if (typeof value === 'number' && !Number.isFinite(value)) throw new InvalidDataError('a number is out of the range of a double (about ±1.8e308)', where)
      return value
    })
  } catch (error) {
    if (error instanceof InvalidDataError) throw error
    throw new InvalidDataError('a value is nested too deeply', where) // RangeError: the call stack
  }
}

async function * ndjsonLines (input: AsyncIterable<string>): AsyncGenerator<[unknown, number]> {
  let line = 0
  let pending = ''
  const parse = (text: string): [unknown, number] | undefined => {
    line++
    if (text.trim() === '') return undefined
    try {
      return [JSON.parse(text), line]
    } catch {
      throw new InvalidDataError('not valid JSON', { line })
    }
  }
  for await (const chunk of input) {
    pending += chunk
    let start = 0
    for (let end = pending.indexOf('\n'); end !== -1; end = pending.indexOf('\n', start)) {
      const parsed = parse(pending.slice(start, end))
      if (parsed !== undefined) yield parsed
      start = end + 1
    }
    pending = pending.slice(start)
  }
  const parsed = parse(pending)
  if (parsed !== undefined) yield parsed
}

async function * jsonArrayItems (input: AsyncIterable<string>): AsyncGenerator<[unknown, number]> {
  const text = Readable.from(input, { objectMode: false })
  const items = text.pipe(streamArray.withParserAsStream())
  // Errors of the input (invalid data, a body cut short) end the items with that error.
  text.once('error', (error) => items.destroy(error))
  let item = 0
  try {
    for await (const { value } of items as AsyncIterable<{ value: unknown }>) {
      item++
      yield [value, item]
    }
  } catch (error) {
    if (error instanceof InvalidDataError || text.errored !== null) throw text.errored ?? error
    throw new InvalidDataError(`not a valid JSON array of objects (${item} items read)`)
  } finally {
    items.destroy()
    text.destroy()
  }
}
