// The oracle of a data-set query, written from the documented semantics alone (it imports nothing
// from src/routes/datasets): what a value of each column type is, how values compare and how they
// are sent as JSON, which rows a set of filters keeps and in which order a sort puts them; and the
// fast-check generators of values in many spellings. Shared by the differential tests of
// GET /datasets/{id}/rows (datasets-rows-differential.test.ts) and of the view its export streams
// (datasets-view.test.ts).
import fc from 'fast-check'

// ─── The oracle: what a value of each type is, how values compare and how they are sent ────────

export type ColumnType = 'integer' | 'numeric' | 'boolean' | 'date' | 'timestamp' | 'text'
export const TYPES: readonly ColumnType[] = ['integer', 'numeric', 'boolean', 'date', 'timestamp', 'text']
/** An exact decimal: n × 10^e. */
export interface Decimal { n: bigint, e: number }

export const US_PER_DAY = 86_400_000_000n

/** Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm). */
export function daysFromCivil (year: number, month: number, day: number): number {
  const y = year - (month <= 2 ? 1 : 0)
  const era = Math.floor(y / 400)
  const yoe = y - era * 400
  const doy = Math.floor((153 * (month + (month > 2 ? -3 : 9)) + 2) / 5) + day - 1
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy
  return era * 146_097 + doe - 719_468
}

export function civilFromDays (days: number): [number, number, number] {
  const z = days + 719_468
  const era = Math.floor(z / 146_097)
  const doe = z - era * 146_097
  const yoe = Math.floor((doe - Math.floor(doe / 1460) + Math.floor(doe / 36_524) - Math.floor(doe / 146_096)) / 365)
  const doy = doe - (365 * yoe + Math.floor(yoe / 4) - Math.floor(yoe / 100))
  const mp = Math.floor((5 * doy + 2) / 153)
  const day = doy - Math.floor((153 * mp + 2) / 5) + 1
  const month = mp < 10 ? mp + 3 : mp - 9
  return [yoe + era * 400 + (month <= 2 ? 1 : 0), month, day]
}

export const MIN_DAY = daysFromCivil(1, 1, 1)
export const MAX_DAY = daysFromCivil(9999, 12, 31)
export const MIN_US = BigInt(MIN_DAY) * US_PER_DAY
export const MAX_US = BigInt(MAX_DAY + 1) * US_PER_DAY - 1n

export function isCalendarDate (year: number, month: number, day: number): boolean {
  const leap = year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0)
  const length = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month - 1]
  return year >= 1 && year <= 9999 && length !== undefined && day >= 1 && day <= length
}

const pad = (value: number | bigint, width: number): string => String(value).padStart(width, '0')
export const dateText = (days: number): string => civilFromDays(days).map((part, index) => pad(part, index === 0 ? 4 : 2)).join('-')
const floorDiv = (a: bigint, b: bigint): bigint => (a % b !== 0n && (a < 0n) !== (b < 0n) ? a / b - 1n : a / b)

/** A UTC instant in microseconds as its calendar parts. */
export function partsOf (us: bigint): { days: number, hour: number, minute: number, second: number, micro: number } {
  const days = floorDiv(us, US_PER_DAY)
  const rest = Number(us - days * US_PER_DAY)
  const seconds = Math.floor(rest / 1e6)
  return { days: Number(days), hour: Math.floor(seconds / 3600), minute: Math.floor(seconds / 60) % 60, second: seconds % 60, micro: rest % 1e6 }
}

/** ISO 8601 in UTC with microseconds, trailing fractional zeros dropped, Z. */
export function isoText (us: bigint): string {
  const { days, hour, minute, second, micro } = partsOf(us)
  const fraction = micro === 0 ? '' : `.${pad(micro, 6).replace(/0+$/, '')}`
  return `${dateText(days)}T${pad(hour, 2)}:${pad(minute, 2)}:${pad(second, 2)}${fraction}Z`
}

export const INTEGER = /^[-+]?\d{1,18}$/
export const NUMERIC = /^([-+]?)(?:(\d+)(?:\.(\d*))?|\.(\d+))(?:[eE]([-+]?\d{1,3}))?$/
export const DATE = /^(\d{4})-(\d{2})-(\d{2})$/
// RFC 3339 allows t and z in lower case; the service takes them.
export const TIMESTAMP = /^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,6}))?)?(?:([Zz])|([-+])(\d{2})(?::?(\d{2}))?)?$/

export function parseNumeric (text: string): Decimal | undefined {
  const match = NUMERIC.exec(text)
  if (match === null || !Number.isFinite(Number(text))) return undefined
  const [, sign, whole = '', point, bare] = match
  const fraction = point ?? bare ?? ''
  if (fraction.length > 16_383) return undefined
  return { n: BigInt(`${sign === '-' ? '-' : ''}${whole + fraction || '0'}`), e: Number(match[5] ?? 0) - fraction.length }
}

export function compareDecimal (a: Decimal, b: Decimal): number {
  const e = Math.min(a.e, b.e)
  const x = a.n * 10n ** BigInt(a.e - e)
  const y = b.n * 10n ** BigInt(b.e - e)
  return x < y ? -1 : x > y ? 1 : 0
}

export function parseDate (text: string): string | undefined {
  const match = DATE.exec(text)
  return match !== null && isCalendarDate(Number(match[1]), Number(match[2]), Number(match[3])) ? text : undefined
}

export function parseTimestamp (text: string): bigint | undefined {
  const date = parseDate(text)
  if (date !== undefined) return BigInt(daysFromCivil(Number(date.slice(0, 4)), Number(date.slice(5, 7)), Number(date.slice(8)))) * US_PER_DAY
  const match = TIMESTAMP.exec(text)
  if (match === null) return undefined
  const [, year, month, day, hour, minute, second = '0', fraction = '', , sign, offsetHours = '0', offsetMinutes = '0'] = match
  if (!isCalendarDate(Number(year), Number(month), Number(day))) return undefined
  if (Number(hour) > 23 || Number(minute) > 59 || Number(second) > 59 || Number(offsetHours) > 15 || Number(offsetMinutes) > 59) return undefined
  const offset = (sign === '-' ? -1 : 1) * (Number(offsetHours) * 60 + Number(offsetMinutes))
  const seconds = daysFromCivil(Number(year), Number(month), Number(day)) * 86_400 + Number(hour) * 3600 + (Number(minute) - offset) * 60 + Number(second)
  const us = BigInt(seconds) * 1_000_000n + BigInt(fraction.padEnd(6, '0'))
  return us >= MIN_US && us <= MAX_US ? us : undefined
}

/** Text ordered by Unicode code point (not by UTF-16 code unit, which puts U+E000…U+FFFF after astral characters). */
export function compareText (a: string, b: string): number {
  const weight = (unit: number): number => (unit >= 0xd800 && unit <= 0xdfff ? unit + 0x2000 : unit >= 0xe000 ? unit - 0x800 : unit)
  const length = Math.min(a.length, b.length)
  for (let index = 0; index < length; index++) {
    const x = a.charCodeAt(index)
    const y = b.charCodeAt(index)
    if (x !== y) return weight(x) - weight(y)
  }
  return a.length - b.length
}

const lowered = new Map<string, string>()
/** Lower case one code point at a time (Unicode simple case mapping; no final-sigma rule). */
export function lower (text: string): string {
  let found = lowered.get(text)
  if (found === undefined) {
    found = Array.from(text, (character) => character.toLowerCase()).join('')
    lowered.set(text, found)
  }
  return found
}

const order = (a: bigint | string, b: bigint | string): number => (a < b ? -1 : a > b ? 1 : 0)

export interface Codec {
  parse: (text: string) => unknown
  compare: (a: any, b: any) => number
  output: (value: any) => unknown
}

export const CODECS: Record<ColumnType, Codec> = {
  integer: { parse: (text) => (INTEGER.test(text) ? BigInt(text) : undefined), compare: order, output: (value: bigint) => Number(value) },
  numeric: { parse: parseNumeric, compare: compareDecimal, output: ({ n, e }: Decimal) => Number(`${n}e${e}`) || 0 },
  boolean: { parse: (text) => (/^(true|false)$/i.test(text) ? text.toLowerCase() === 'true' : undefined), compare: (a: boolean, b: boolean) => Number(a) - Number(b), output: (value) => value },
  date: { parse: parseDate, compare: order, output: (value) => value },
  timestamp: { parse: parseTimestamp, compare: order, output: isoText },
  text: { parse: (text) => (!text.includes('\0') && text.isWellFormed() ? text : undefined), compare: compareText, output: (value) => value },
}

/** Text that no other type recognises: what a text column holds without widening anything. */
export const isPlainText = (text: string): boolean => text !== '' && TYPES.every((type) => type === 'text' || CODECS[type].parse(text) === undefined)

export interface Column { name: string, type: ColumnType }

/** A row as the oracle sees it: its number (position in the upload), values, and the JSON it is sent as. */
export interface OracleRow { number: number, values: Record<string, unknown>, output: Record<string, unknown> }
export const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER)

// Integers: their value, then a spelling (a sign). Never leading zeros: an import keeps `007` as
// text (a code, not a number), so a column spelled with them would not be an integer column.
export const integerValue = fc.oneof(
  { weight: 2, arbitrary: fc.constantFrom(0n, 1n, -1n, 7n, -7n, MAX_SAFE, -MAX_SAFE, MAX_SAFE - 1n, 1_000_000n) },
  { weight: 3, arbitrary: fc.bigInt({ min: -100n, max: 100n }) },
  { weight: 2, arbitrary: fc.bigInt({ min: -MAX_SAFE, max: MAX_SAFE }) },
)
export const integerText = (value: bigint): fc.Arbitrary<string> => fc.record({ plus: fc.boolean(), minus: fc.boolean() }).map(({ plus, minus }) => {
  const digits = (value < 0n ? -value : value).toString()
  const sign = value < 0n || (value === 0n && minus) ? '-' : plus ? '+' : ''
  return sign + digits
})

// Numerics: an exact decimal |n| < 10^(12+scale) × 10^-scale, then a spelling of it: moved point
// and exponent, padding zeros, a sign, ".5", "5.", E or e.
export const numericValue = fc.oneof(
  { weight: 2, arbitrary: fc.constantFrom<Decimal>({ n: 0n, e: 0 }, { n: 5n, e: -1 }, { n: -5n, e: -1 }, { n: 1n, e: -5 }, { n: 125n, e: -1 }, { n: 1n, e: -6 }, { n: -1n, e: -6 }, { n: 10n ** 18n - 1n, e: -6 }, { n: 1n - 10n ** 18n, e: -6 }, { n: 1n, e: 11 }) },
  { weight: 3, arbitrary: fc.record({ n: fc.bigInt({ min: -2000n, max: 2000n }), e: fc.integer({ min: -3, max: 0 }) }) },
  { weight: 2, arbitrary: fc.integer({ min: 0, max: 6 }).chain((scale) => fc.record({ n: fc.bigInt({ min: 1n - 10n ** BigInt(12 + scale), max: 10n ** BigInt(12 + scale) - 1n }), e: fc.constant(-scale) })) },
)
export interface Spelling { shift: number, pad: number, plus: boolean, negativeZero: boolean, bareDot: boolean, trailingDot: boolean, upperE: boolean, exponentPlus: boolean }
export const spelling = fc.record({ shift: fc.integer({ min: -3, max: 3 }), pad: fc.nat(2), plus: fc.boolean(), negativeZero: fc.boolean(), bareDot: fc.boolean(), trailingDot: fc.boolean(), upperE: fc.boolean(), exponentPlus: fc.boolean() })
export function spellDecimal ({ n, e }: Decimal, s: Spelling): string {
  let digits = (n < 0n ? -n : n).toString() + '0'.repeat(s.pad)
  let after = -e + s.pad + s.shift // digits after the point, the exponent being s.shift
  if (after < 0) {
    digits += '0'.repeat(-after)
    after = 0
  }
  if (digits.length <= after) digits = '0'.repeat(after - digits.length + 1) + digits
  const whole = digits.slice(0, digits.length - after).replace(/^0+(?=\d)/, '') // no leading zeros (see integerText)
  const fraction = digits.slice(digits.length - after)
  let text = after === 0 ? whole + (s.trailingDot ? '.' : '') : s.bareDot && whole === '0' ? `.${fraction}` : `${whole}.${fraction}`
  if (s.shift !== 0) text += `${s.upperE ? 'E' : 'e'}${s.shift < 0 ? '-' : s.exponentPlus ? '+' : ''}${Math.abs(s.shift)}`
  return (n < 0n || (n === 0n && s.negativeZero) ? '-' : s.plus ? '+' : '') + text
}
export const numericText = (value: Decimal): fc.Arbitrary<string> => spelling.map((s) => spellDecimal(value, s))

export const booleanText = (value: boolean): fc.Arbitrary<string> => fc.constantFrom(String(value), String(value).toUpperCase(), value ? 'True' : 'fAlSe')

export const EDGE_DAYS = [MIN_DAY, MAX_DAY, daysFromCivil(2000, 2, 29), daysFromCivil(1900, 2, 28), daysFromCivil(2024, 2, 29), 0, -1, daysFromCivil(999, 6, 15), daysFromCivil(2026, 1, 2)]
export const dayValue = fc.oneof(
  { weight: 2, arbitrary: fc.constantFrom(...EDGE_DAYS) },
  { weight: 2, arbitrary: fc.integer({ min: daysFromCivil(2026, 1, 1), max: daysFromCivil(2026, 1, 20) }) },
  { weight: 2, arbitrary: fc.integer({ min: MIN_DAY, max: MAX_DAY }) },
)

// Timestamps: an instant, then a spelling of it at an offset (±15:59 at most), with or without
// seconds, with as many fraction digits as it needs or more, zone as Z, ±HH:MM, ±HHMM, ±HH or none.
export const BASE_US = BigInt(daysFromCivil(2026, 1, 2)) * US_PER_DAY + 36_000_000_000n // 2026-01-02T10:00:00Z
export const instantValue = fc.oneof(
  { weight: 2, arbitrary: fc.constantFrom(MIN_US, MAX_US, 0n, -1n, 1n, BASE_US, BASE_US + 123_456n, BASE_US + 123_457n, BASE_US + 123_400n, MIN_US + 1n, MAX_US - 999_999n) },
  { weight: 3, arbitrary: fc.bigInt({ min: -3000n, max: 3000n }).map((delta) => BASE_US + delta * 1000n + (delta % 7n)) },
  { weight: 1, arbitrary: fc.integer({ min: -5, max: 5 }).map((days) => BASE_US - 36_000_000_000n + BigInt(days) * US_PER_DAY) },
  { weight: 2, arbitrary: fc.bigInt({ min: MIN_US, max: MAX_US }) },
)
export interface TimestampSpelling { offset: number, separator: string, zone: number, minutes: number, extraDigits: number, dropSeconds: boolean, dateOnly: boolean }
export const timestampSpelling = fc.record({
  offset: fc.oneof(fc.constantFrom(0, 60, -300, 330, 345, -570, 840, -959, 959, -60), fc.integer({ min: -959, max: 959 })),
  separator: fc.constantFrom('T', 'T', ' ', 't'),
  zone: fc.nat(7),
  minutes: fc.nat(2),
  extraDigits: fc.nat(6),
  dropSeconds: fc.boolean(),
  dateOnly: fc.boolean(),
})
export function spellTimestamp (us: bigint, s: TimestampSpelling): string {
  let offset = s.offset
  let local = us + BigInt(offset) * 60_000_000n
  if (local < MIN_US || local > MAX_US) {
    offset = 0
    local = us
  }
  const { days, hour, minute, second, micro } = partsOf(local)
  if (s.dateOnly && offset === 0 && hour === 0 && minute === 0 && second === 0 && micro === 0) return dateText(days)
  let time = `${pad(hour, 2)}:${pad(minute, 2)}`
  if (!(s.dropSeconds && second === 0 && micro === 0)) {
    time += `:${pad(second, 2)}`
    const needed = micro === 0 ? '' : pad(micro, 6).replace(/0+$/, '')
    const digits = needed.padEnd(Math.min(6, needed.length + s.extraDigits), '0')
    if (digits !== '') time += `.${digits}`
  }
  const magnitude = Math.abs(offset)
  const hours = pad(Math.floor(magnitude / 60), 2)
  const minutes = pad(magnitude % 60, 2)
  const zone = offset === 0
    ? ['Z', 'z', '+00:00', '+0000', '+00', '-00:00', '', 'Z'][s.zone]!
    : `${offset < 0 ? '-' : '+'}${hours}${s.minutes === 0 ? `:${minutes}` : s.minutes === 1 || minutes !== '00' ? minutes : ''}`
  return `${dateText(days)}${s.separator}${time}${zone}`
}
export const timestampText = (us: bigint): fc.Arbitrary<string> => timestampSpelling.map((s) => spellTimestamp(us, s))

// Text: ASCII (CSV's and LIKE's special characters among it), Latin-1 and Greek letters with
// their cases (σ/ς/Σ, µ/μ/Μ), the Kelvin sign, fullwidth letters, U+E000…U+FFFF, astral
// characters (emoji, 𐐀/𐐨 which have cases), CJK. Each lowers to one code point.
export const UNUSUAL = [' ', ',', '"', '\'', '%', '_', '\\', '-', '.', ':', '\n', '\t', '\r', 'ø', 'Ø', 'æ', 'Æ', 'é', 'É', 'ü', 'Ü', 'ß', 'ÿ', 'Σ', 'σ', 'ς', 'α', 'Α', 'µ', 'μ', 'Μ', '\u212a', 'Ａ', 'ａ', '\ue000', '\ufffd', '\uffff', '中', '文', '😀', '🎉', '𝔸', '𐐀', '𐐨']
export const textUnit = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom(...'abcxyzABCXYZ') },
  { weight: 2, arbitrary: fc.constantFrom(...'0123456789 ') },
  { weight: 3, arbitrary: fc.constantFrom(...UNUSUAL) },
)
export const asText = (text: string): string => (isPlainText(text) ? text : `${text}q`)
export const shortText = fc.string({ unit: textUnit, minLength: 1, maxLength: 12 }).map(asText)
export const EDGE_TEXTS = ['Oslo', 'oslo', 'OSLO', 'Ørsta', 'ørsta', 'Æsir', 'æsir', 'über', 'Über', 'ΟΔΟΣ', 'οδοσ', 'οδος', 'ς', 'σ', 'µ', 'μ', '\u212aelvin', 'kelvin', 'Ａｂｃ', 'ａｂｃ', '\ue000 private', '\ufffd', '\uffff', '😀 smile', '🎉', '𝔸', '𐐀', '𐐨', '中文', '100%', '50_50', 'back\\slash', 'a,b', 'say "hi"', 'line\nbreak', 'cr\r\nlf', '  padded  ', 'x', 'x ', 'true story', '-', '2026-01-02x']

export function valueArb (type: ColumnType, longPrefixes: string[]): fc.Arbitrary<string> {
  switch (type) {
    case 'integer': return integerValue.chain(integerText)
    case 'numeric': return numericValue.chain(numericText)
    case 'boolean': return fc.boolean().chain(booleanText)
    case 'date': return dayValue.map(dateText)
    case 'timestamp': return instantValue.chain(timestampText)
    case 'text': return longPrefixes.length === 0
      ? fc.oneof({ weight: 2, arbitrary: fc.constantFrom(...EDGE_TEXTS) }, { weight: 3, arbitrary: shortText })
      : fc.oneof({ weight: 4, arbitrary: fc.tuple(fc.constantFrom(...longPrefixes), fc.option(shortText, { nil: '' })).map(([prefix, suffix]) => asText(prefix + suffix)) }, { weight: 1, arbitrary: shortText })
  }
}

/** A cell of a column: missing (CSV: an empty field) or a spelling; some values recur (ties) in other spellings. */
export function cellArb (column: Column, pool: string[], missing: number, longPrefixes: string[]): fc.Arbitrary<string | null> {
  const fresh = valueArb(column.type, column.name === 'long' ? longPrefixes : [])
  const again = fc.constantFrom(...pool).chain((text) => respell(column.type, CODECS[column.type].parse(text)))
  return fc.oneof(
    { weight: missing, arbitrary: fc.constant(null) },
    { weight: 50, arbitrary: again },
    { weight: 50, arbitrary: fresh },
  )
}

/** A spelling of a value (of the oracle's). */
export function respell (type: ColumnType, value: unknown): fc.Arbitrary<string> {
  switch (type) {
    case 'integer': return integerText(value as bigint)
    case 'numeric': return numericText(value as Decimal)
    case 'boolean': return booleanText(value as boolean)
    case 'timestamp': return timestampText(value as bigint)
    default: return fc.constant(value as string)
  }
}

// ─── Queries and what the oracle expects of them ────────────────────────────────────────────────

export const OPERATORS = ['eq', 'ne', 'gt', 'gte', 'lt', 'lte', 'contains', 'startswith', 'in', 'isnull'] as const
export type Operator = typeof OPERATORS[number]
export const ORDERED = new Set<Operator>(['gt', 'gte', 'lt', 'lte'])
export const applies = (type: ColumnType, op: Operator): boolean => (op === 'contains' || op === 'startswith' ? type === 'text' : !ORDERED.has(op) || type !== 'boolean')

export interface Filter { column: string, op: Operator, value: string, bare: boolean }
export interface Query { filters: Filter[], sort?: { column: string, descending: boolean }, limit?: number }

export const parameterOf = (filter: Filter): string => (filter.bare ? filter.column : `${filter.column}__${filter.op}`)

export function parametersOf (query: Query): Array<[string, string]> {
  const parameters = query.filters.map((filter): [string, string] => [parameterOf(filter), filter.value])
  if (query.sort !== undefined) parameters.push(['sort', `${query.sort.descending ? '-' : ''}${query.sort.column}`])
  if (query.limit !== undefined) parameters.push(['limit', String(query.limit)])
  return parameters
}

export const queryString = (parameters: Array<[string, string]>): string => parameters.map(([name, value]) => `${encodeURIComponent(name)}=${encodeURIComponent(value)}`).join('&')

export type Expected = { status: 400, invalid: Set<string> } | { status: 200, rows: OracleRow[] }

/** The oracle: which parameters are invalid, else the rows (of these columns) that match, in order. */
export function expectRows (columns: readonly Column[], rows: readonly OracleRow[], query: Query): Expected {
  const invalid = new Set<string>()
  const predicates: Array<(row: OracleRow) => boolean> = []
  for (const filter of query.filters) {
    const { type } = columns.find((column) => column.name === filter.column)!
    const codec = CODECS[type]
    const parse = (text: string): unknown => (text === '' ? undefined : codec.parse(text))
    const v = (row: OracleRow): any => row.values[filter.column]
    if (filter.op === 'isnull') {
      if (filter.value !== 'true' && filter.value !== 'false') invalid.add(parameterOf(filter))
      predicates.push((row) => (v(row) === null) === (filter.value === 'true'))
      continue
    }
    if (!applies(type, filter.op)) {
      invalid.add(parameterOf(filter))
      continue
    }
    const operands = (filter.op === 'in' ? filter.value.split(',') : [filter.value]).map(parse)
    if (operands.includes(undefined)) {
      invalid.add(parameterOf(filter))
      continue
    }
    const operand = operands[0] as string
    const compare = (row: OracleRow): number => codec.compare(v(row), operand)
    const test: Record<Operator, (row: OracleRow) => boolean> = {
      eq: (row) => compare(row) === 0,
      ne: (row) => compare(row) !== 0,
      gt: (row) => compare(row) > 0,
      gte: (row) => compare(row) >= 0,
      lt: (row) => compare(row) < 0,
      lte: (row) => compare(row) <= 0,
      contains: (row) => lower(v(row)).includes(lower(operand)),
      startswith: (row) => lower(v(row)).startsWith(lower(operand)),
      in: (row) => operands.some((item) => codec.compare(v(row), item) === 0),
      isnull: () => false,
    }
    // A missing value matches no comparison, ne included.
    predicates.push((row) => v(row) !== null && test[filter.op](row))
  }
  if (invalid.size > 0) return { status: 400, invalid }
  const matching = rows.filter((row) => predicates.every((matches) => matches(row)))
  if (query.sort === undefined) return { status: 200, rows: matching }
  const { column, descending } = query.sort
  const { compare } = CODECS[columns.find((candidate) => candidate.name === column)!.type]
  const direction = descending ? -1 : 1
  const present = matching.filter((row) => row.values[column] !== null)
  const missing = matching.filter((row) => row.values[column] === null)
  present.sort((a, b) => direction * (compare(a.values[column], b.values[column]) || a.number - b.number))
  missing.sort((a, b) => direction * (a.number - b.number))
  return { status: 200, rows: [...present, ...missing] }
}

// Filter values: mostly another spelling of a value in the column or a neighbour of one, also
// values at random, of other types, invalid ones; `in` lists of them; for contains and
