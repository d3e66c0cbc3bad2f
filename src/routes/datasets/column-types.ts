// Column types of a data set and the one codec per type: which text is a value of the type
// (exactly what PostgreSQL accepts for it, within what we can send back as JSON), the canonical
// literal it is sent to PostgreSQL as, and how two types widen into one that holds both.
//
//   integer ─┐            date ─── timestamp ─┐
//            numeric ─────────────────────────┼── text
//   boolean ──────────────────────────────────┘
//
// Every value on its way to SQL (a filter, an imported field) goes through `literal`, and
// is sent as text with an explicit cast: postgres.js would otherwise serialise a parameter by the
// type PostgreSQL infers for it (a boolean parameter given "true" became 'f'; a timestamp went
// through `new Date()` and lost its microseconds).
//
// Inference uses the same recognisers, so an import never meets a value PostgreSQL refuses: a
// value that is not a literal of its column's type widens the column instead ("0000-01-01" is no
// date — PostgreSQL has no year 0 — so a column holding it is text).
import Type from 'typebox'

export const COLUMN_TYPES = ['integer', 'numeric', 'boolean', 'date', 'timestamp', 'text'] as const
export type ColumnType = typeof COLUMN_TYPES[number]
export const ColumnTypeSchema = Type.Unsafe<ColumnType>(Type.Enum([...COLUMN_TYPES], { type: 'string' }))

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
// PostgreSQL keeps at most 16383 digits after the decimal point of a numeric.
const NUMERIC_MAX_SCALE = 16_383
const BOOLEAN = /^(?:true|false)$/i
const TIMESTAMP = /^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2})(\.\d{1,6})?)?(?:(Z)|([+-])(\d{2})(?::?(\d{2}))?)?$/i
// PostgreSQL accepts UTC offsets up to ±15:59.
const MAX_OFFSET_HOURS = 15

const DAYS_IN_MONTH = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]

/** A calendar date of years 1 to 9999 (PostgreSQL has no year 0; ISO text has four digits). */
function isCalendarDate (year: number, month: number, day: number): boolean {
  if (year < 1 || month < 1 || month > 12 || day < 1 || day > DAYS_IN_MONTH[month - 1]!) return false
  return month !== 2 || day < 29 || (year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0))
}

// Numbers and dates are scanned by hand, not matched: an import checks every value of its columns
// with these, and a match's array and captured strings per value were a tenth of its CPU (with
// the garbage collection they caused). Digits are ASCII only, as \d is.
const PLUS = 0x2b
const MINUS = 0x2d
const DOT = 0x2e

function isDigit (code: number): boolean {
  return code >= 0x30 && code <= 0x39
}

/** The end of the run of digits of `text` from `at`. */
function digitsEnd (text: string, at: number): number {
  while (at < text.length && isDigit(text.charCodeAt(at))) at++
  return at
}

/** The number the digits of text[from, to) spell, or -1 when one of them is no digit. */
function digitsValue (text: string, from: number, to: number): number {
  let value = 0
  for (let at = from; at < to; at++) {
    const code = text.charCodeAt(at)
    if (!isDigit(code)) return -1
    value = value * 10 + code - 0x30
  }
  return value
}

/** `[-+]?(digits(.digits?)? | .digits)([eE][-+]?d{1,3})?`, finite, at most NUMERIC_MAX_SCALE digits after the point. */
function numericLiteral (text: string): string | undefined {
  let at = text.charCodeAt(0) === PLUS || text.charCodeAt(0) === MINUS ? 1 : 0
  const integerEnd = digitsEnd(text, at)
  let fractionDigits = 0
  const hasIntegerDigits = integerEnd > at
  at = integerEnd
  if (text.charCodeAt(at) === DOT) {
    const fractionEnd = digitsEnd(text, at + 1)
    fractionDigits = fractionEnd - at - 1
    at = fractionEnd
  }
  if (!hasIntegerDigits && fractionDigits === 0) return undefined
  let exponent = 0
  if ((text.charCodeAt(at) | 0x20) === 0x65) { // e or E
    const sign = text.charCodeAt(at + 1)
    const from = sign === PLUS || sign === MINUS ? at + 2 : at + 1
    at = digitsEnd(text, from)
    if (at === from || at - from > 3) return undefined
    exponent = (sign === MINUS ? -1 : 1) * digitsValue(text, from, at)
  }
  if (at !== text.length || !Number.isFinite(Number(text))) return undefined
  return fractionDigits - exponent > NUMERIC_MAX_SCALE ? undefined : text
}

/** `YYYY-MM-DD`, a day of the calendar. */
function dateLiteral (text: string): string | undefined {
  if (text.length !== 10 || text.charCodeAt(4) !== MINUS || text.charCodeAt(7) !== MINUS) return undefined
  return isCalendarDate(digitsValue(text, 0, 4), digitsValue(text, 5, 7), digitsValue(text, 8, 10)) ? text : undefined
}

/**
 * ISO 8601 with an explicit offset, so that PostgreSQL reads it the same whatever its TimeZone
 * setting: no zone means UTC. A date alone is its midnight (a date column widened to timestamp).
 */
function timestampLiteral (text: string): string | undefined {
  if (dateLiteral(text) !== undefined) return `${text}T00:00:00+00:00`
  const match = TIMESTAMP.exec(text)
  if (match === null) return undefined
  const [, year, month, day, hour, minute, second = '00', fraction = '', zulu, sign, offsetHours, offsetMinutes = '00'] = match
  if (!isCalendarDate(Number(year), Number(month), Number(day))) return undefined
  if (Number(hour) > 23 || Number(minute) > 59 || Number(second) > 59) return undefined
  if (sign !== undefined && (Number(offsetHours) > MAX_OFFSET_HOURS || Number(offsetMinutes) > 59)) return undefined
  const offset = zulu !== undefined || sign === undefined ? '+00:00' : `${sign}${offsetHours}:${offsetMinutes}`
  // The instant itself must stay within years 1..9999 once the offset is applied.
  const instant = new Date(0)
  instant.setUTCFullYear(Number(year), Number(month) - 1, Number(day))
  const offsetMinutesEast = sign === undefined ? 0 : (sign === '-' ? -1 : 1) * (Number(offsetHours) * 60 + Number(offsetMinutes))
  instant.setUTCHours(Number(hour), Number(minute) - offsetMinutesEast)
  if (instant.getUTCFullYear() < 1 || instant.getUTCFullYear() > 9999) return undefined
  return `${year}-${month}-${day}T${hour}:${minute}:${second}${fraction}${offset}`
}

/** Text PostgreSQL can store: no NUL character, no lone UTF-16 surrogate (which is no character at all). */
function textLiteral (text: string): string | undefined {
  return !text.includes('\0') && text.isWellFormed() ? text : undefined
}

/**
 * The canonical literal of `text` as a value of `type`, or undefined when it is not one. The
 * literal is what goes to PostgreSQL, as text cast to the column's type.
 */
export function literal (type: ColumnType, text: string): string | undefined {
  switch (type) {
    case 'integer': return INTEGER.test(text) ? text : undefined
    case 'numeric': return numericLiteral(text)
    case 'boolean': return BOOLEAN.test(text) ? text.toLowerCase() : undefined
    case 'date': return dateLiteral(text)
    case 'timestamp': return timestampLiteral(text)
    case 'text': return textLiteral(text)
  }
}

/**
 * A parsed value: text from CSV; from JSON a string, a finite number or a boolean (the JSON
 * sources turn nested objects and arrays into their JSON text). null, undefined and '' are missing.
 */
export type Value = string | number | boolean | null | undefined

/**
 * CSV values are text to be recognised (`decimal-comma`: text whose numbers are written
 * `1.234,5`, `?decimal=,`); JSON values (and a spreadsheet's cells) already have a type.
 */
export type ValueKind = 'text' | 'decimal-comma' | 'json'

// A number written with a decimal comma, its thousands (if any) in groups of three after dots:
// `3,14`, `-1.234.567,5`, `1.234` (one thousand two hundred and thirty-four). No exponent.
const DECIMAL_COMMA = /^[-+]?(?:\d{1,3}(?:\.\d{3})+|\d+)(?:,(\d+))?$/
// `0123`, `-007`, `00,5`: digits whose leading zeros mean something (a code, an id, a postcode).
const LEADING_ZERO = /^[-+]?0\d/

/** A decimal-comma number as the text PostgreSQL reads (`1.234,5` → `1234.5`), or undefined. */
function decimalCommaText (text: string): string | undefined {
  if (!DECIMAL_COMMA.test(text)) return undefined
  return text.replaceAll('.', '').replace(',', '.')
}

/**
 * Text as the codec of a numeric type reads it, for a value of `kind`: a decimal-comma number
 * turned into dot notation; text with leading zeros, which a number would lose, is no number
 * (undefined) unless `keepZeros` is false (a type the client chose converts it).
 */
function numberText (text: string, kind: ValueKind, keepZeros = true): string | undefined {
  if (keepZeros && LEADING_ZERO.test(text)) return undefined
  return kind === 'decimal-comma' ? decimalCommaText(text) : text
}

export function isMissing (value: Value): boolean {
  return value === null || value === undefined || value === ''
}

const TEXT_INFERENCE: readonly ColumnType[] = ['integer', 'numeric', 'boolean', 'date', 'timestamp']
// A JSON string is text unless it looks like a date or timestamp: "007" stays "007".
const JSON_STRING_INFERENCE: readonly ColumnType[] = ['date', 'timestamp']

/** The narrowest type of a present value; text when it is text PostgreSQL cannot store (the import refuses it then). */
export function typeOf (value: NonNullable<Value>, kind: ValueKind): ColumnType {
  if (typeof value === 'string') {
    return (kind === 'json' ? JSON_STRING_INFERENCE : TEXT_INFERENCE).find((type) => fieldLiteral(type, value, kind) !== undefined) ?? 'text'
  }
  if (typeof value === 'number') return Number.isSafeInteger(value) && Math.abs(value) < 1e18 ? 'integer' : 'numeric'
  return 'boolean'
}

/**
 * The literal of a present value in a column of `type`, or undefined when the value does not fit
 * (the column must widen first; for text: it cannot be stored at all). Numbers and booleans from
 * JSON are written as JSON writes them; a JSON string fits only a date, timestamp or text column.
 */
export function fieldLiteral (type: ColumnType, value: NonNullable<Value>, kind: ValueKind): string | undefined {
  if (typeof value === 'string') {
    if (kind === 'json' && type !== 'date' && type !== 'timestamp' && type !== 'text') return undefined
    if (type === 'integer' || type === 'numeric') {
      const text = numberText(value, kind)
      return text === undefined ? undefined : literal(type, text)
    }
    return literal(type, value)
  }
  if (type === 'text') return String(value)
  const found = typeOf(value, kind)
  return found === type || (type === 'numeric' && found === 'integer') ? String(value) : undefined
}

/**
 * The literal of a present value in a column whose type the client chose (`?types=`): what the
 * value means as that type, or undefined when it is none. Unlike inference, text converts
 * whatever its source: `0123` is the integer 123, the JSON string "12" the number 12.
 */
export function chosenLiteral (type: ColumnType, value: NonNullable<Value>, kind: ValueKind): string | undefined {
  if (typeof value !== 'string') return type === 'text' ? String(value) : fieldLiteral(type, value, kind)
  if (type === 'integer' || type === 'numeric') {
    const text = numberText(value, kind === 'json' ? 'text' : kind, false)
    return text === undefined ? undefined : literal(type, text)
  }
  return literal(type, value)
}

/** The narrowest type that holds values of both types. */
export function widen (a: ColumnType | null, b: ColumnType | null): ColumnType | null {
  if (a === null || a === b) return b
  if (b === null) return a
  if ((a === 'integer' && b === 'numeric') || (a === 'numeric' && b === 'integer')) return 'numeric'
  if ((a === 'date' && b === 'timestamp') || (a === 'timestamp' && b === 'date')) return 'timestamp'
  return 'text'
}

/** Types whose values have an order: every one but boolean. */
export function isOrdered (type: ColumnType): boolean {
  return type !== 'boolean'
}
