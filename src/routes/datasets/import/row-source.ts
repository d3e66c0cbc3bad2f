// What every reader of an upload gives the importer (a RowSource of batches of rows, each with
// the line or item it came from), and the one rule for column names, shared by all of them.
import { literal, type Value, type ValueKind } from '../column-types.ts'
import { InvalidDataError, type DataLocation } from './invalid-data.ts'

/** A row as a source read it: its values, and the line (or JSON item) it came from. */
export interface ParsedRow { line: number, values: Value[] }

export interface RowSource {
  /** Column names so far; JSON sources append a name when a later object brings a new key. */
  readonly columns: string[]
  readonly valueKind: ValueKind
  /** Whether rows are numbered by line (CSV, NDJSON) or by item (JSON array), for error messages. */
  readonly unit: 'line' | 'item'
  /** The line of the header that names the columns (CSV, a sheet's first row); none for JSON. */
  readonly headerLine?: number
  batches: () => AsyncGenerator<ParsedRow[]>
}

const MAX_COLUMNS = 1_000
const MAX_NAME_LENGTH = 200

/** Names as given, made usable: trimmed, never empty, unique ("name", "name_2"), storable. */
export class ColumnNames {
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
