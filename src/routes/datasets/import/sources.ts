// Readers that turn an upload (CSV or TSV, NDJSON, a JSON array of objects, the first sheet of an
// Excel workbook: xlsx.ts) into batches of rows, streaming: a batch is read only when the importer
// asks for it, so the upload is never held whole in memory and a slow database slows the reading
// down (backpressure).
//
// Every row carries the line (CSV, NDJSON) or item (JSON array) it came from, so a malformed
// upload is refused with "line 1234: …".
import { Readable } from 'node:stream'
import Papa from 'papaparse'
import { streamArray } from 'stream-json/streamers/stream-array.js'
import type { Value } from '../column-types.ts'
import { decodeText } from './decode.ts'
import type { Format } from './formats.ts'
import { InvalidDataError, type DataLocation } from './invalid-data.ts'
import { DELIMITERS, sniffDelimiter, type Delimiter, type TextOptions } from './options.ts'
import { ColumnNames, type ParsedRow, type RowSource } from './row-source.ts'
import { xlsxSource } from './xlsx.ts'

export type { ParsedRow, RowSource } from './row-source.ts'

const BATCH_ROWS = 1_000 // JSON sources; CSV batches are what one chunk of input holds

/**
 * The rows of an upload in `format`. CSV's delimiter is the one `options` names, else sniffed from
 * its first lines; TSV's is a tab unless `options` names another. A workbook is bytes, not text:
 * `charset` does not apply to it.
 */
export function rowSource (format: Format, input: AsyncIterable<Buffer>, charset: string, options: TextOptions = {}): RowSource {
  if (format === 'xlsx') return xlsxSource(input)
  const text = decodeText(input, charset)
  if (format === 'json' || format === 'ndjson') return jsonSource(format, text)
  return csvSource(text, { ...options, delimiter: options.delimiter ?? (format === 'tsv' ? '\t' : undefined) })
}

// The delimiter is sniffed from this much text at most (or the whole upload, when shorter).
const SNIFF_CHARS = 64 * 1024

function csvSource (input: AsyncIterable<string>, options: TextOptions): RowSource {
  const header = new ColumnNames()
  let delimiter: Delimiter | undefined = options.delimiter
  const isDecimalComma = options.decimal === ','
  return {
    columns: header.names,
    valueKind: isDecimalComma ? 'decimal-comma' : 'text',
    unit: 'line',
    headerLine: 1,
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
          // With decimal commas, a comma cannot be the delimiter (options.ts refuses it when named).
          delimiter ??= sniffDelimiter(text, last, isDecimalComma ? DELIMITERS.filter((candidate) => candidate !== ',') : DELIMITERS)
          parser = new Papa.Parser({ delimiter, newline })
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
        if (parser === undefined && delimiter === undefined && unparsedLength < SNIFF_CHARS) continue
        const text = pending + unparsed.join('')
        unparsed = []
        unparsedLength = 0
        const rows = rowsOf(text, false)
        retryAt = rows.length === 0 ? pending.length : 0
        if (rows.length > 0) yield rows
      }
      pending += unparsed.join('')
      if (parser === undefined && lineBreak.found !== undefined) {
        // Text held back for the sniffing, all of it: parsed as the loop would have (the last
        // row held back), so that a final line break ends a row rather than adding a blank one.
        delimiter ??= sniffDelimiter(pending, true, isDecimalComma ? DELIMITERS.filter((candidate) => candidate !== ',') : DELIMITERS)
        const rows = rowsOf(pending, false)
        if (rows.length > 0) yield rows
      }
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
