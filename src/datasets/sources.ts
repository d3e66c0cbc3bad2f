// Readers that turn an upload (CSV, NDJSON or a JSON array of objects) into batches of rows,
// streaming: a batch is read only when the importer asks for it, so the upload is never held whole
// in memory and a slow database slows the reading down (backpressure).
//
// Every row carries the line (CSV, NDJSON) or item (JSON array) it came from, so a malformed
// upload is refused with "line 1234: …".
import { createInterface } from 'node:readline'
import type { Readable } from 'node:stream'
import Papa from 'papaparse'
import { streamArray } from 'stream-json/streamers/stream-array.js'
import { Problem } from '../lib/errors.ts'
import type { Value } from './types.ts'

export const FORMATS = ['csv', 'json', 'ndjson'] as const
export type Format = typeof FORMATS[number]

export interface Row { line: number, values: Value[] }

export interface RowSource {
  /** Column names so far; JSON sources append a name when a later object brings a new key. */
  readonly columns: string[]
  /** CSV values are text to be recognised; JSON values already have a type. */
  readonly valueKind: 'text' | 'json'
  batches: () => AsyncGenerator<Row[]>
}

const BATCH_ROWS = 1_000 // JSON sources; CSV batches are what one chunk of input holds
const MAX_COLUMNS = 1_000
const MAX_NAME_LENGTH = 200

export class InvalidDataError extends Problem {
  constructor (detail: string, where?: { line?: number, item?: number }) {
    const location = where?.line !== undefined ? `line ${where.line}: ` : where?.item !== undefined ? `item ${where.item}: ` : ''
    super('invalid-data', `${location}${detail}`, { extra: { ...where } })
  }
}

/** Names as given, made usable: trimmed, never empty, unique ("name", "name_2"). */
class ColumnNames {
  readonly names: string[] = []
  readonly #positions = new Map<string, number>()
  readonly #taken = new Set<string>()

  /** The position of the column a key maps to, adding it if new. */
  positionOf (key: string, where: { line?: number, item?: number }): number {
    const known = this.#positions.get(key)
    if (known !== undefined) return known
    if (this.names.length >= MAX_COLUMNS) throw new InvalidDataError(`more than ${MAX_COLUMNS} columns`, where)
    let name = key.trim().slice(0, MAX_NAME_LENGTH)
    if (name === '') name = `column_${this.names.length + 1}`
    for (let suffix = 2; this.#taken.has(name.toLowerCase()); suffix++) name = `${key.trim().slice(0, MAX_NAME_LENGTH - 6) || 'column'}_${suffix}`
    this.#taken.add(name.toLowerCase())
    this.#positions.set(key, this.names.length)
    this.names.push(name)
    return this.names.length - 1
  }
}

export function rowSource (format: Format, input: Readable): RowSource {
  if (format === 'csv') return csvSource(input)
  return jsonSource(format, input)
}

function csvSource (input: Readable): RowSource {
  const header = new ColumnNames()
  return {
    columns: header.names,
    valueKind: 'text',
    async * batches () {
      // papaparse's own stream reader ignores pause(), so the upload is read here, a chunk at a
      // time (pull: backpressure for free), and handed to its parser. A row cut by the end of a
      // chunk is parsed again with the next one. Strings, not Buffers, so that a UTF-8 character
      // split between two chunks is decoded whole.
      input.setEncoding('utf8')
      const parser = new Papa.Parser({ delimiter: ',' })
      let pending = ''
      let line = 1
      const rowsOf = (text: string, last: boolean): Row[] => {
        const results = parser.parse(text, 0, !last) as Papa.ParseResult<string[]>
        const rows: Row[] = []
        results.data.forEach((fields: string[], index: number) => {
          const startLine = line
          for (const field of fields) for (let at = field.indexOf('\n'); at !== -1; at = field.indexOf('\n', at + 1)) line++
          line++
          const error = results.errors.find((candidate) => candidate.row === index)
          if (error !== undefined) throw new InvalidDataError(csvErrorMessage(error), { line: startLine })
          if (header.names.length === 0) {
            if (fields[0] !== undefined) fields[0] = fields[0].replace(/^\uFEFF/, '')
            fields.forEach((name) => header.positionOf(name, { line: startLine }))
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
      for await (const chunk of input as AsyncIterable<string>) {
        const rows = rowsOf(pending + chunk, false)
        if (rows.length > 0) yield rows
      }
      const rows = rowsOf(pending, true)
      if (rows.length > 0) yield rows
      if (header.names.length === 0) throw new InvalidDataError('the CSV is empty: a header line naming the columns comes first')
    },
  }
}

function csvErrorMessage (error: Papa.ParseError): string {
  if (error.code === 'MissingQuotes') return 'a quoted field is not closed'
  if (error.code === 'InvalidQuotes') return 'a quote inside a quoted field must be doubled ("")'
  return 'the CSV could not be read'
}

function jsonSource (format: 'json' | 'ndjson', input: Readable): RowSource {
  const names = new ColumnNames()
  const unit = format === 'json' ? 'item' : 'line'
  const toRow = (value: unknown, position: number): Row => {
    const where = { [unit]: position }
    if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new InvalidDataError('expected a JSON object', where)
    const values: Value[] = []
    for (const [key, field] of Object.entries(value)) values[names.positionOf(key, where)] = field
    return { line: position, values }
  }
  return {
    columns: names.names,
    valueKind: 'json',
    async * batches () {
      let batch: Row[] = []
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

async function * ndjsonLines (input: Readable): AsyncGenerator<[unknown, number]> {
  let line = 0
  for await (const text of createInterface({ input, crlfDelay: Infinity })) {
    line++
    if (text.trim() === '') continue
    try {
      yield [JSON.parse(text), line]
    } catch {
      throw new InvalidDataError('not valid JSON', { line })
    }
  }
}

async function * jsonArrayItems (input: Readable): AsyncGenerator<[unknown, number]> {
  const items = input.pipe(streamArray.withParserAsStream())
  input.once('error', (error) => items.destroy(error))
  let item = 0
  try {
    for await (const { value } of items as AsyncIterable<{ value: unknown }>) {
      item++
      yield [value, item]
    }
  } catch (error) {
    if (error instanceof Problem) throw error
    throw new InvalidDataError(`not a valid JSON array of objects (${item} items read)`)
  } finally {
    items.destroy()
  }
}
