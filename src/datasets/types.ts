// Column types of a data set: how a value is recognised, how two types widen into one that holds
// both, and how a value is written in PostgreSQL's COPY text format.
//
//   integer ─┐            date ─── timestamp ─┐
//            numeric ─────────────────────────┼── text
//   boolean ──────────────────────────────────┘
//
// A column starts as the narrowest type its sample fits and widens when a later value does not
// fit, so an import never fails on a late odd value ("n/a" in a column of numbers makes it text).

export const COLUMN_TYPES = ['integer', 'numeric', 'boolean', 'date', 'timestamp', 'text'] as const
export type ColumnType = typeof COLUMN_TYPES[number]

/** The PostgreSQL type of each column type: a fixed list, the only type names that reach SQL. */
export const SQL_TYPES: Record<ColumnType, string> = {
  integer: 'bigint',
  numeric: 'numeric',
  boolean: 'boolean',
  date: 'date',
  timestamp: 'timestamptz',
  text: 'text',
}

// 18 digits always fit a bigint; longer integers are numeric.
const INTEGER = /^[-+]?\d{1,18}$/
const NUMERIC = /^[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d{1,3})?$/
const BOOLEAN = /^(?:true|false)$/i
const DATE = /^(\d{4})-(\d{2})-(\d{2})$/
const TIMESTAMP = /^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.\d{1,6})?)?(Z|[+-]\d{2}(?::?\d{2})?)?$/i

const DAYS_IN_MONTH = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]

function validDate (year: string, month: string, day: string): boolean {
  const m = Number(month)
  const d = Number(day)
  if (m < 1 || m > 12 || d < 1 || d > DAYS_IN_MONTH[m - 1]!) return false
  const y = Number(year)
  return m !== 2 || d < 29 || (y % 4 === 0 && (y % 100 !== 0 || y % 400 === 0))
}

/** The narrowest type of a non-empty text value (a CSV field, or a JSON string when `fromJsonString`). */
export function typeOfText (value: string, fromJsonString = false): ColumnType {
  if (!fromJsonString) {
    if (INTEGER.test(value)) return 'integer'
    if (NUMERIC.test(value)) return 'numeric'
    if (BOOLEAN.test(value)) return 'boolean'
  }
  let match = DATE.exec(value)
  if (match !== null) return validDate(match[1]!, match[2]!, match[3]!) ? 'date' : 'text'
  match = TIMESTAMP.exec(value)
  if (match !== null && validDate(match[1]!, match[2]!, match[3]!) && Number(match[4]) < 24 && Number(match[5]) < 60 && Number(match[6] ?? 0) < 60) return 'timestamp'
  return 'text'
}

/** A parsed value: text from CSV, anything from JSON. null (or '' in CSV) is a missing value. */
export type Value = unknown

/** The narrowest type of a value, or null when the value is missing. */
export function typeOf (value: Value): ColumnType | null {
  if (value === null || value === undefined || value === '') return null
  if (typeof value === 'string') return typeOfText(value)
  if (typeof value === 'number') return Number.isSafeInteger(value) && Math.abs(value) < 1e18 ? 'integer' : Number.isFinite(value) ? 'numeric' : 'text'
  if (typeof value === 'boolean') return 'boolean'
  return 'text' // objects and arrays are kept as their JSON text
}

/** JSON strings are text unless they look like a date or timestamp: "007" stays "007". */
export function typeOfJson (value: Value): ColumnType | null {
  return typeof value === 'string' && value !== '' ? typeOfText(value, true) : typeOf(value)
}

/**
 * Whether a present value fits a column of `type` as it is: the check made for every value of an
 * import, so it tests only what that type needs (a text column takes anything).
 */
export function fits (type: ColumnType, value: Value, kind: 'text' | 'json'): boolean {
  if (type === 'text') return true
  if (typeof value === 'string') {
    if (kind === 'json' && type !== 'date' && type !== 'timestamp') return false
    if (type === 'integer') return INTEGER.test(value)
    if (type === 'numeric') return NUMERIC.test(value)
    if (type === 'boolean') return BOOLEAN.test(value)
    const found = typeOfText(value, true)
    return found === type || (type === 'timestamp' && found === 'date')
  }
  const found = typeOf(value)
  return found === type || (type === 'numeric' && found === 'integer')
}

/** The narrowest type that holds values of both types. */
export function widen (a: ColumnType | null, b: ColumnType | null): ColumnType | null {
  if (a === null || a === b) return b
  if (b === null) return a
  if ((a === 'integer' && b === 'numeric') || (a === 'numeric' && b === 'integer')) return 'numeric'
  if ((a === 'date' && b === 'timestamp') || (a === 'timestamp' && b === 'date')) return 'timestamp'
  return 'text'
}

// COPY text format: backslash, newline, carriage return and tab are escaped; \N is NULL.
const NEEDS_ESCAPE = /[\\\n\r\t]/
const ESCAPES: Record<string, string> = { '\\': '\\\\', '\n': '\\n', '\r': '\\r', '\t': '\\t' }

function escapeCopy (text: string): string {
  return NEEDS_ESCAPE.test(text) ? text.replace(/[\\\n\r\t]/g, (character) => ESCAPES[character]!) : text
}

/**
 * A value as a COPY text field for a column of `type`. The caller has widened the column first, so
 * the value fits. (Timestamps without a zone are read as UTC: the import sets its time zone.)
 */
export function toCopyField (value: Value, type: ColumnType): string {
  if (value === null || value === undefined || value === '') return '\\N'
  if (typeof value === 'string') return type === 'text' ? escapeCopy(value) : value
  if (typeof value === 'number' || typeof value === 'boolean') return String(value)
  return escapeCopy(JSON.stringify(value))
}
