// A differential property test of GET /datasets/{id}/rows. fast-check generates data sets with a
// column of every type (missing values, ties, edge values: microsecond timestamps written at many
// offsets, negative and zero numbers in many spellings, long and unicode text), each uploaded once;
// then random queries (filters with every operator on every type, sorts in both directions, page
// sizes 1..50) walk every page, and the rows, in order, are compared with the oracle of
// helpers/rows-oracle.ts, written from the documented semantics alone: it imports nothing from
// src/routes/datasets.
//
// Deterministic: the seed is fixed (FC_SEED overrides it); data set k and its queries are
// generated with seed FC_SEED + k. A failure is shrunk to a small query, which fast-check prints
// with that seed and the path that replays it; the same FC_SEED runs it all again. FC_RUNS
// multiplies the number of random queries, for a longer hunt by hand.
import assert from 'node:assert/strict'
import { after, describe, it } from 'node:test'
import fc from 'fast-check'
import { createApiKeysRepository } from '../src/auth/api-keys.ts'
import { buildTestApp, listen } from './helpers/app.ts'
import { json } from './helpers/http.ts'
import {
  TYPES, daysFromCivil, civilFromDays, MIN_DAY, MAX_DAY, MIN_US, MAX_US, dateText, isoText, INTEGER, parseNumeric, compareDecimal, parseDate, parseTimestamp, compareText, CODECS, integerText, numericValue, spelling, spellDecimal, numericText, booleanText, BASE_US, instantValue, timestampSpelling, spellTimestamp, timestampText, UNUSUAL, textUnit, shortText, EDGE_TEXTS, valueArb, cellArb, respell, OPERATORS, applies, parameterOf, parametersOf, queryString,
  expectRows, type ColumnType, type Decimal, type Column, type Expected, type OracleRow, type Operator, type Query,
} from './helpers/rows-oracle.ts'

const SEED = Number(process.env.FC_SEED ?? 20_260_512)
const RUNS = Number(process.env.FC_RUNS ?? 1)
const PAGE_MAX_BYTES = 1024 // the smallest DATASET_PAGE_MAX_BYTES there is

// ─── The data sets ──────────────────────────────────────────────────────────────────────────────

const COLUMNS: readonly Column[] = [
  { name: 'id', type: 'integer' },
  { name: 'n', type: 'integer' },
  { name: 'x', type: 'numeric' },
  { name: 'flag', type: 'boolean' },
  { name: 'day', type: 'date' },
  { name: 'at', type: 'timestamp' },
  { name: 'tëxt', type: 'text' },
  { name: 'long', type: 'text' },
]

interface Table { label: string, rows: OracleRow[], body: string, contentType: string }

const expect = (table: Table, query: Query): Expected => expectRows(COLUMNS, table.rows, query)

interface TablePlan { label: string, format: 'csv' | 'ndjson', minRows: number, maxRows: number, missing: number, longLength: number, crlf?: boolean }

interface GeneratedTable { cells: Array<Array<string | null>>, ids: number[], omitted: boolean[][] }

function tableArb (plan: TablePlan): fc.Arbitrary<GeneratedTable> {
  const others = COLUMNS.slice(1)
  // Long texts share long prefixes (their order is decided far in), of plan.longLength / 4 to plan.longLength characters.
  const prefix = fc.tuple(fc.string({ unit: textUnit, minLength: 3, maxLength: 30 }), fc.noBias(fc.integer({ min: Math.ceil(plan.longLength / 4), max: plan.longLength }))).map(([chunk, length]) => Array.from(chunk.repeat(Math.ceil(length / chunk.length))).slice(0, length).join(''))
  return fc.tuple(fc.noBias(fc.integer({ min: plan.minRows, max: plan.maxRows })), fc.array(prefix, { minLength: 2, maxLength: 4 })).chain(([count, longPrefixes]) => {
    const pools = fc.tuple(...others.map((column) => fc.array(valueArb(column.type, column.name === 'long' ? longPrefixes : []), { minLength: 1, maxLength: 6 })))
    return pools.chain((poolList) => fc.record({
      ids: fc.uniqueArray(fc.integer({ min: -1_000_000, max: 1_000_000 }), { minLength: count, maxLength: count }),
      cells: fc.array(fc.tuple(...others.map((column, index) => cellArb(column, poolList[index]!, plan.missing, longPrefixes))), { minLength: count, maxLength: count }),
      omitted: fc.array(fc.array(fc.boolean(), { minLength: others.length, maxLength: others.length }), { minLength: count, maxLength: count }),
    }))
  })
}

/**
 * Makes the schema unambiguous (every column has a value, x a fraction, `at` a time of day), and
 * puts the edge texts in every fourth row's tëxt, as many as fit; in JSON also strings that CSV
 * would read as numbers or booleans (a JSON string is text: "007" stays "007").
 */
function settle (cells: Array<Array<string | null>>, format: TablePlan['format']): void {
  const first = cells[0]!
  const text = COLUMNS.findIndex((column) => column.name === 'tëxt') - 1
  EDGE_TEXTS.forEach((edge, index) => {
    const row = cells[index * 4 + 2]
    if (row !== undefined) row[text] = edge
  })
  if (format === 'ndjson') {
    ['007', '12.50', '-0', '1e3', 'TRUE', 'false'].forEach((edge, index) => {
      const row = cells[index * 4 + 3]
      if (row !== undefined) row[text] = edge
    })
  }
  COLUMNS.slice(1).forEach((column, index) => {
    if (cells.every((row) => row[index] === null)) first[index] = { integer: '7', numeric: '0.5', boolean: 'true', date: '2026-01-02', timestamp: '2026-01-02T10:00:00.5Z', text: 'Oslo' }[column.type]
  })
  const x = COLUMNS.findIndex((column) => column.name === 'x') - 1
  const fractional = (text: string): boolean => (format === 'csv' ? !INTEGER.test(text) : !Number.isSafeInteger(Number(text)))
  if (!cells.some((row) => typeof row[x] === 'string' && fractional(row[x]))) first[x] = '0.5'
  const at = COLUMNS.findIndex((column) => column.name === 'at') - 1
  if (!cells.some((row) => typeof row[at] === 'string' && parseDate(row[at]) === undefined)) first[at] = '2026-01-02T10:00:00.5Z'
}

function csvField (text: string | null, quote: boolean): string {
  if (text === null) return ''
  return quote || /[",\r\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text
}

/** Builds the upload and the oracle's rows from generated cells. */
function materialise (plan: TablePlan, generated: GeneratedTable): Table {
  const { ids, cells, omitted } = generated
  settle(cells, plan.format)
  const rows: OracleRow[] = []
  const lines: string[] = []
  if (plan.format === 'csv') lines.push(COLUMNS.map((column) => column.name).join(','))
  cells.forEach((row, index) => {
    const texts = [String(ids[index]), ...row]
    const values: Record<string, unknown> = {}
    const output: Record<string, unknown> = {}
    const item: Record<string, unknown> = {}
    COLUMNS.forEach((column, position) => {
      let text = texts[position] ?? null
      if (plan.format === 'ndjson' && text !== null) {
        // JSON values: numbers and booleans as JSON has them; what is stored is what JSON.parse reads.
        const value = column.type === 'integer' ? Number(text) : column.type === 'numeric' ? Number(text) : column.type === 'boolean' ? text.toLowerCase() === 'true' : text
        item[column.name] = value
        text = String(value)
      } else if (plan.format === 'ndjson' && omitted[index]![position - 1] !== true) {
        item[column.name] = null
      }
      const value = text === null ? null : CODECS[column.type].parse(text)
      assert.notEqual(value, undefined, `generator: ${JSON.stringify(text)} is no ${column.type}`)
      values[column.name] = value
      output[column.name] = value === null ? null : CODECS[column.type].output(value)
    })
    rows.push({ number: index + 1, values, output })
    lines.push(plan.format === 'csv' ? texts.map((text, position) => csvField(text, (index + position) % 5 === 0)).join(',') : JSON.stringify(item))
  })
  const newline = plan.crlf === true ? '\r\n' : '\n'
  return { label: plan.label, rows, body: lines.join(newline) + newline, contentType: plan.format === 'csv' ? 'text/csv' : 'application/x-ndjson' }
}

// startswith pieces of the column's texts in mixed case, and LIKE's own characters.
const INVALID: Record<ColumnType, string[]> = {
  integer: ['1.5', '1e3', '1234567890123456789', ' 5', '5 ', '0x1F', 'abc', '--1', '+'],
  numeric: ['1e309', '1e1000', 'NaN', 'Infinity', '1,5', '0x10', '.', '1.2.3', 'e5', '- 1'],
  boolean: ['t', '1', 'yes', 'truee', 'null'],
  date: ['2023-02-29', '0000-01-01', '2026-13-01', '2026-1-1', '2026-01-02T00:00:00Z', '10000-01-01', '2026-00-10'],
  timestamp: ['2026-01-01T24:00:00Z', '2026-01-01T10:00:00+16:00', '0001-01-01T00:00:00+00:01', '9999-12-31T23:59:59-00:01', '2026-01-01T10:00:00.1234567Z', '2026-01-01T10:00:60Z', '2026-01-01T10:60Z', '2026-01-01T10Z', '2026-02-30T10:00:00Z'],
  text: ['nul\0char'],
}
const EXTREME: Record<ColumnType, string[]> = {
  integer: ['999999999999999999', '-999999999999999999', '000000000000000000', '9007199254740992'],
  numeric: ['1e-999', '1e308', '-1.7976931348623157e308', '0.000000000000000000001', '-0', '+.0e-0', '999999999999.9999995'],
  boolean: ['TRUE', 'false'],
  date: ['0001-01-01', '9999-12-31'],
  timestamp: ['0001-01-01T00:00:00Z', '0001-01-01T15:59:00+15:59', '9999-12-31T23:59:59.999999Z', '9999-12-31T08:00:59.999999-15:59', '1969-12-31T23:59:59.999999Z', '0001-01-01'],
  text: ['%', '_', '\\', '\\%', '%%', ' ', 'a%', '_b', 'ς', 'σ', 'µ', 'μ', 'k', '\u212a', 'ａ', 'Ａ', '𐐨', '𐐀', '\uffff'],
}

function neighbours (type: ColumnType, value: unknown): fc.Arbitrary<string> {
  switch (type) {
    case 'integer': return fc.constantFrom((value as bigint) - 1n, (value as bigint) + 1n).chain(integerText)
    case 'numeric': return fc.constantFrom(-6, -3, -1, 0).chain((e) => fc.constantFrom(-1n, 1n).chain((delta) => {
      const { n, e: scale } = value as Decimal
      const common = Math.min(scale, e)
      return numericText({ n: n * 10n ** BigInt(scale - common) + delta * 10n ** BigInt(e - common), e: common })
    }))
    case 'date': {
      const text = value as string
      const days = daysFromCivil(Number(text.slice(0, 4)), Number(text.slice(5, 7)), Number(text.slice(8)))
      return fc.constantFrom(days - 1, days + 1).filter((day) => day >= MIN_DAY && day <= MAX_DAY).map(dateText)
    }
    case 'timestamp': return fc.constantFrom(-1n, 1n, -1000n, 1000n, -1_000_000n, 1_000_000n).map((delta) => (value as bigint) + delta).filter((us) => us >= MIN_US && us <= MAX_US).chain(timestampText)
    case 'boolean': return booleanText(!(value as boolean))
    case 'text': return fc.constantFrom(`${value as string} `, Array.from(value as string).slice(0, -1).join('') || 'a', `${value as string}a`)
  }
}

function filterValue (table: Table, column: Column, op: Operator): fc.Arbitrary<string> {
  const present = table.rows.map((row) => row.values[column.name]).filter((value) => value !== null)
  const existing = fc.constantFrom(...present)
  const respelled = existing.chain((value) => respell(column.type, value))
  const single = fc.oneof(
    { weight: 8, arbitrary: respelled },
    { weight: 4, arbitrary: existing.chain((value) => neighbours(column.type, value)) },
    { weight: 2, arbitrary: valueArb(column.type, []) },
    { weight: 1, arbitrary: fc.constantFrom(...EXTREME[column.type]) },
    { weight: 1, arbitrary: fc.constantFrom(...TYPES).chain((type) => valueArb(type, [])) },
    { weight: 1, arbitrary: fc.constantFrom(...INVALID[column.type], '') },
  )
  if (op === 'isnull') return fc.oneof({ weight: 20, arbitrary: fc.constantFrom('true', 'false') }, { weight: 1, arbitrary: fc.constantFrom('TRUE', '1', '', 'yes') })
  if (op === 'in') return fc.array(single, { minLength: 1, maxLength: 4 }).map((values) => values.join(','))
  if ((op === 'contains' || op === 'startswith') && column.type === 'text') {
    const piece = fc.tuple(fc.constantFrom(...(present as string[])), fc.nat(), fc.integer({ min: 1, max: 6 }), fc.array(fc.boolean(), { minLength: 6, maxLength: 6 }))
      .map(([text, start, length, upper]) => {
        const characters = Array.from(text)
        const from = op === 'startswith' ? 0 : start % characters.length
        return characters.slice(from, from + length).map((character, index) => (upper[index] === true ? character.toUpperCase() : character.toLowerCase())).join('')
      })
    return fc.oneof({ weight: 8, arbitrary: piece }, { weight: 2, arbitrary: shortText }, { weight: 2, arbitrary: fc.constantFrom(...EXTREME.text) }, { weight: 1, arbitrary: fc.constantFrom('', 'nul\0') })
  }
  return single
}

/**
 * A filter value cut to its first characters that take at most 4000 characters in a URL: three of
 * them stay within Node's 16 KB of request head (beyond it 431, before any route).
 */
function fitted (value: string): string {
  const characters = Array.from(value)
  let length = 0
  const kept = characters.findIndex((character) => (length += encodeURIComponent(character).length) > 4000)
  return kept === -1 ? value : characters.slice(0, Math.max(kept, 1)).join('')
}

function queryArb (table: Table): fc.Arbitrary<Query> {
  const filter = fc.constantFrom(...COLUMNS).chain((column) => fc.oneof(
    { weight: 15, arbitrary: fc.constantFrom(...OPERATORS.filter((op) => applies(column.type, op))) },
    { weight: 1, arbitrary: fc.constantFrom(...OPERATORS) },
  ).chain((op) => fc.record({
    column: fc.constant(column.name),
    op: fc.constant(op),
    value: filterValue(table, column, op).map(fitted),
    bare: op === 'eq' ? fc.boolean() : fc.constant(false),
  })))
  return fc.record({
    filters: fc.uniqueArray(filter, { minLength: 0, maxLength: 3, selector: parameterOf }),
    sort: fc.option(fc.record({ column: fc.constantFrom(...COLUMNS.map((column) => column.name)), descending: fc.boolean() }), { nil: undefined, freq: 6 }),
    limit: fc.option(fc.integer({ min: 1, max: 50 }), { nil: undefined, freq: 10 }),
  })
}

/**
 * Queries every data set gets before the random ones: each sort both ways, and filters on the
 * edges of the text semantics (per code point lower case: σ matches ΟΔΟΣ, which a whole-string
 * toLowerCase makes οδος; the Kelvin sign; LIKE's characters; code point order past U+FFFF) and of
 * the numbers and instants (−0, the same instant at another offset).
 */
const EXAMPLES: Query[] = [
  ...COLUMNS.flatMap((column) => [false, true].map((descending) => ({ filters: [], sort: { column: column.name, descending }, limit: 20 }))),
  ...[['contains', 'σ'], ['contains', 'ΟΣ'], ['startswith', 'οδοσ'], ['contains', 'k'], ['startswith', '\u212a'], ['contains', '%'], ['contains', '_'], ['contains', '\\'], ['gt', '\uffff'], ['lt', '\ue000'], ['contains', 'µ'], ['contains', 'Μ']]
    .map(([op, value]) => ({ filters: [{ column: 'tëxt', op: op as Operator, value: value!, bare: false }], limit: 50 })),
  { filters: [{ column: 'x', op: 'eq', value: '-0', bare: false }] },
  { filters: [{ column: 'x', op: 'in', value: '0.5,-0.50,1E-5', bare: false }] },
  { filters: [{ column: 'at', op: 'eq', value: '2026-01-02T11:00:00.123456+01:00', bare: false }] },
  { filters: [{ column: 'at', op: 'gte', value: '2026-01-02 10:00:00.123456', bare: false }, { column: 'at', op: 'lt', value: '2026-01-02T05:00:00.123457-0500', bare: false }] },
  { filters: [{ column: 'n', op: 'ne', value: '0', bare: false }], sort: { column: 'n', descending: true } },
]

/** The oracle's plain spelling of a value, as a filter value. */
function plainText (type: ColumnType, value: unknown): string {
  if (type === 'numeric') return `${(value as Decimal).n}e${(value as Decimal).e}`
  if (type === 'timestamp') return isoText(value as bigint)
  return String(value)
}

/** A query for every operator on every column, with a value that finds rows (given two values or more in the column). */
function operatorExamples (table: Table): Query[] {
  return COLUMNS.flatMap((column) => {
    const { compare } = CODECS[column.type]
    const values = table.rows.map((row) => row.values[column.name]).filter((value) => value !== null).sort(compare)
    const spell = (value: unknown): string => plainText(column.type, value)
    const [min, mid, max] = [values[0], values[values.length >> 1], values.at(-1)]
    const texts = values.filter((value): value is string => typeof value === 'string' && !value.includes(','))
    // Two characters of a text in upper case where that is one character (ß stays ß: SS would not find it).
    const piece = (text: string, from: number): string => Array.from(text).slice(from, from + 2).map((character) => (Array.from(character.toUpperCase()).length === 1 ? character.toUpperCase() : character)).join('')
    const filters: Array<[Operator, string]> = [
      ['eq', spell(mid)], ['ne', spell(mid)], ['gt', spell(min)], ['gte', spell(mid)], ['lt', spell(max)], ['lte', spell(mid)],
      ['in', column.type === 'text' ? [texts[0] ?? 'x', texts.at(-1) ?? 'y'].join(',') : `${spell(min)},${spell(max)}`],
      ['contains', piece(spell(mid), 1)], ['startswith', piece(spell(mid), 0)],
      ['isnull', String(values.length < table.rows.length)],
    ]
    return filters.filter(([op]) => applies(column.type, op)).map(([op, value]) => ({ filters: [{ column: column.name, op, value, bare: false }], limit: 50 }))
  })
}

// ─── The service ────────────────────────────────────────────────────────────────────────────────

const env = { LOG_LEVEL: 'silent', OVERLOAD_EVENT_LOOP_DELAY_MS: '0' } // a busy test machine is no overload here
const main = await buildTestApp({ after }, env)
const budgeted = await buildTestApp({ after }, { ...env, DATASET_PAGE_MAX_BYTES: String(PAGE_MAX_BYTES) })
const bases = { main: await listen(main.app), budgeted: await listen(budgeted.app) }
const keys = { main: (await createApiKeysRepository(main.sql).create('differential')).key, budgeted: (await createApiKeysRepository(budgeted.sql).create('differential')).key }

interface Uploaded { table: Table, id: number, base: string, budget?: number }

async function upload (table: Table, app: 'main' | 'budgeted'): Promise<Uploaded> {
  const response = await fetch(`${bases[app]}/datasets?name=${encodeURIComponent(table.label)}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${keys[app]}`, 'content-type': table.contentType },
    body: table.body,
  })
  const answer = await json(response)
  assert.equal(response.status, 201, JSON.stringify(answer))
  assert.equal(answer.dataset.rows, table.rows.length)
  const fields = Object.fromEntries(answer.schema.fields.map((field: { name: string, type: string, nullable: boolean }) => [field.name, [field.type, field.nullable]]))
  const intended = Object.fromEntries(COLUMNS.map((column) => [column.name, [column.type, table.rows.some((row) => row.values[column.name] === null)]]))
  assert.deepEqual(fields, intended, `${table.label}: the inferred schema [type, nullable] is the intended one`)
  return { table, id: answer.dataset.id, base: bases[app], budget: app === 'budgeted' ? PAGE_MAX_BYTES : undefined }
}

const short = (value: unknown): string => {
  const text = JSON.stringify(value, (_key, item: unknown) => (typeof item === 'string' && item.length > 60 ? `${item.slice(0, 40)}…(${item.length} chars)` : item))
  return text.length > 600 ? `${text.slice(0, 600)}…` : text
}

const utf8Bytes = (text: string): number => Buffer.byteLength(text, 'utf8')

interface Walked { status: number, rows: number, pages: number, cutEarly: number, longestCursor: number }

/** Runs one query, every page of it, and checks the answer against the oracle's. */
async function check (dataset: Uploaded, query: Query): Promise<Walked> {
  const { table } = dataset
  const parameters = parametersOf(query)
  const where = `${table.label}: GET /datasets/{id}/rows?${queryString(parameters)}`
  const expected = expect(table, query)
  const limit = query.limit ?? 100
  const got: unknown[] = []
  let cursor: string | null = null
  let pages = 0
  let cutEarly = 0
  let longestCursor = 0
  do {
    const url = `${dataset.base}/datasets/${dataset.id}/rows?${queryString(cursor === null ? parameters : [...parameters, ['cursor', cursor]])}`
    const response = await fetch(url)
    const body = await json(response)
    if (expected.status === 400) {
      assert.equal(response.status, 400, `${where}: expected 400 for ${[...expected.invalid].join(', ')}, got ${response.status} ${short(body)}`)
      assert.ok([...expected.invalid].some((name) => body.errors?.[0]?.pointer === `/${name}`), `${where}: the 400 names ${body.errors?.[0]?.pointer}, not one of ${[...expected.invalid].join(', ')}`)
      return { status: 400, rows: 0, pages: 1, cutEarly: 0, longestCursor: 0 }
    }
    assert.equal(response.status, 200, `${where}: page ${pages + 1} answered ${response.status} ${short(body)}`)
    pages++
    const rows = body.rows as Array<Record<string, unknown>>
    assert.ok(rows.length <= limit, `${where}: page ${pages} has ${rows.length} rows, more than limit=${limit}`)
    if (body.next_cursor !== null || pages > 1) assert.ok(rows.length > 0, `${where}: page ${pages} is empty but is not the only page`)
    if (body.next_cursor !== null && rows.length < limit) {
      cutEarly++
      assert.ok(dataset.budget !== undefined, `${where}: page ${pages} stops at ${rows.length} rows, short of limit=${limit}, with no byte budget to reach`)
    }
    if (dataset.budget !== undefined && rows.length > 1) {
      const bytes = rows.reduce((sum, row) => sum + Object.values(row).reduce((size: number, value) => size + (typeof value === 'string' ? utf8Bytes(value) : 0), 0), 0)
      assert.ok(bytes <= dataset.budget, `${where}: page ${pages} holds ${rows.length} rows with ${bytes} bytes of text, over DATASET_PAGE_MAX_BYTES=${dataset.budget}`)
    }
    got.push(...rows)
    cursor = body.next_cursor
    longestCursor = Math.max(longestCursor, cursor?.length ?? 0)
    assert.ok(pages <= expected.rows.length + 1, `${where}: more pages than rows`)
  } while (cursor !== null)
  const wanted = expected.rows.map((row) => row.output)
  const same = (a: unknown, b: unknown): boolean => {
    const x = a as Record<string, unknown>
    const y = b as Record<string, unknown>
    return Object.keys(x).length === Object.keys(y).length && Object.keys(x).every((key) => x[key] === y[key])
  }
  const first = wanted.findIndex((row, index) => got[index] === undefined || !same(row, got[index]))
  if (first !== -1 || got.length !== wanted.length) {
    const at = first === -1 ? wanted.length : first
    assert.fail(`${where}: ${got.length} rows, the oracle ${wanted.length} (ids ${short(wanted.map((row) => row.id))}, got ${short(got.map((row: any) => row.id))}); ` +
      `first difference at position ${at}: expected ${short(wanted[at])}, got ${short(got[at])}`)
  }
  return { status: 200, rows: got.length, pages, cutEarly, longestCursor }
}

// ─── The tests ──────────────────────────────────────────────────────────────────────────────────

const PLANS: Array<TablePlan & { app: 'main' | 'budgeted', runs: number }> = [
  { label: 'csv-mixed', format: 'csv', minRows: 150, maxRows: 220, missing: 15, longLength: 4000, app: 'main', runs: 130 },
  // CRLF line endings (RFC 4180's own): the last field of each line used to keep its \r.
  { label: 'csv-sparse', format: 'csv', minRows: 30, maxRows: 50, missing: 100, longLength: 60, app: 'main', runs: 100, crlf: true },
  { label: 'ndjson', format: 'ndjson', minRows: 80, maxRows: 140, missing: 25, longLength: 400, app: 'main', runs: 100 },
  { label: 'csv-page-budget', format: 'csv', minRows: 60, maxRows: 100, missing: 25, longLength: 700, app: 'budgeted', runs: 80 },
]

describe('oracle self-check', () => {
  it('agrees with Date on calendar days and with code-point arrays on text order', () => {
    for (let days = MIN_DAY; days <= MAX_DAY; days += 997) {
      const date = new Date(0)
      date.setUTCFullYear(...civilFromDays(days).map((part, index) => (index === 1 ? part - 1 : part)) as [number, number, number])
      assert.equal(Math.round(date.getTime() / 86_400_000), days)
      assert.equal(daysFromCivil(...civilFromDays(days)), days)
    }
    assert.equal(isoText(BASE_US + 123_450n), '2026-01-02T10:00:00.12345Z')
    assert.equal(isoText(-1n), '1969-12-31T23:59:59.999999Z')
    assert.equal(isoText(MIN_US), '0001-01-01T00:00:00Z')
    assert.equal(parseTimestamp('0001-01-01T15:59:00+15:59'), MIN_US)
    assert.equal(parseTimestamp('0001-01-01T00:00:00+00:01'), undefined)
    fc.assert(fc.property(fc.string({ unit: textUnit, maxLength: 8 }), fc.string({ unit: textUnit, maxLength: 8 }), (a, b) => {
      const points = (text: string): number[] => Array.from(text, (character) => character.codePointAt(0)!)
      const [x, y] = [points(a), points(b)]
      const index = x.findIndex((point, at) => point !== y[at])
      const reference = index === -1 ? x.length - y.length : y[index] === undefined ? 1 : x[index]! - y[index]
      return Math.sign(compareText(a, b)) === Math.sign(reference)
    }), { seed: SEED, numRuns: 500 })
    fc.assert(fc.property(instantValue, timestampSpelling, (us, s) => parseTimestamp(spellTimestamp(us, s)) === us), { seed: SEED, numRuns: 500 })
    fc.assert(fc.property(numericValue, spelling, (value, s) => compareDecimal(parseNumeric(spellDecimal(value, s))!, value) === 0), { seed: SEED, numRuns: 500 })
    for (const character of UNUSUAL) assert.equal(Array.from(character.toLowerCase()).length, 1, character)
  })
})

describe('GET /datasets/{id}/rows against the oracle', async () => {
  const datasets = await Promise.all(PLANS.map(async (plan, index) => {
    const [generated] = fc.sample(tableArb(plan), { seed: SEED + index, numRuns: 1 })
    return { plan, dataset: await upload(materialise(plan, generated!), plan.app) }
  }))

  // Which operator on which type answered rows in some query (filters of the queries that did).
  const covered = new Set<string>()

  for (const [index, { plan, dataset }] of datasets.entries()) {
    it(`${plan.label} (${dataset.table.rows.length} rows, seed ${SEED + index}): fixed and ${plan.runs * RUNS} random queries, every page`, async (t) => {
      const longest = Math.max(...dataset.table.rows.map((row) => typeof row.values.long === 'string' ? utf8Bytes(row.values.long) : 0))
      const missing = dataset.table.rows.reduce((sum, row) => sum + Object.values(row.values).filter((value) => value === null).length, 0)
      t.diagnostic(`data set: ${missing} missing values, longest text ${longest} bytes`)
      // Every operator on every column with rows to find, but where pages hold a row or two.
      const examples = [...EXAMPLES, ...(dataset.budget === undefined ? operatorExamples(dataset.table) : [])]
      const tally = { refused: 0, empty: 0, rows: 0, pages: 0, cutEarly: 0, longestCursor: 0 }
      await fc.assert(fc.asyncProperty(queryArb(dataset.table), async (query) => {
        const walked = await check(dataset, query)
        tally.refused += walked.status === 400 ? 1 : 0
        tally.empty += walked.status === 200 && walked.rows === 0 ? 1 : 0
        tally.rows += walked.rows
        tally.pages += walked.pages
        tally.cutEarly += walked.cutEarly
        tally.longestCursor = Math.max(tally.longestCursor, walked.longestCursor)
        if (walked.rows > 0) for (const filter of query.filters) covered.add(`${COLUMNS.find((column) => column.name === filter.column)!.type} ${filter.op}`)
      }), { seed: SEED + index, numRuns: examples.length + plan.runs * RUNS, examples: examples.map((query) => [query]) })
      t.diagnostic(`${examples.length} fixed and ${plan.runs * RUNS} random queries: ${tally.refused} answered 400, ${tally.empty} matched no row, ${tally.rows} rows in ${tally.pages} pages, ${tally.cutEarly} pages cut by the byte budget, longest cursor ${tally.longestCursor} characters`)
      if (dataset.budget !== undefined) assert.ok(tally.cutEarly > 0, 'some pages stopped early at the byte budget')
    })
  }

  it('covered every operator on every type it applies to, with rows found', () => {
    const wanted = TYPES.flatMap((type) => OPERATORS.filter((op) => applies(type, op)).map((op) => `${type} ${op}`))
    assert.deepEqual(wanted.filter((pair) => !covered.has(pair)), [])
  })

  it('refuses invalid filters with 400 naming the parameter (and the oracle agrees)', async () => {
    const dataset = datasets[0]!.dataset
    const sample = (name: string, fallback: string): string => {
      const value = dataset.table.rows[0]!.output[name]
      return typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean' ? String(value) : fallback
    }
    const cases: Array<[string, string]> = [['nope__eq', '1'], ['id__like', '1'], ['nope', '1']]
    for (const column of COLUMNS) {
      cases.push([column.name, ''], [`${column.name}__eq`, ''], [`${column.name}__in`, `${sample(column.name, 'x')},`], [`${column.name}__isnull`, 'yes'])
      for (const value of INVALID[column.type]) cases.push([`${column.name}__eq`, value], ...(value.includes(',') ? [] : [[`${column.name}__in`, value] as [string, string]]))
      for (const op of OPERATORS) if (!applies(column.type, op)) cases.push([`${column.name}__${op}`, column.type === 'boolean' ? 'true' : sample(column.name, '1')])
    }
    for (const [name, value] of cases) {
      const filter = COLUMNS.some((column) => column.name === name.split('__')[0]) && !name.endsWith('__like')
        ? expect(dataset.table, { filters: [{ column: name.split('__')[0]!, op: (name.split('__')[1] ?? 'eq') as Operator, value, bare: !name.includes('__') }] })
        : undefined
      if (filter !== undefined) assert.equal(filter.status, 400, `the oracle refuses ${name}=${value} too`)
      const response = await fetch(`${dataset.base}/datasets/${dataset.id}/rows?${queryString([[name, value]])}`)
      const body = await json(response)
      assert.equal(response.status, 400, `${name}=${JSON.stringify(value)}: ${response.status} ${short(body)}`)
      assert.equal(body.errors?.[0]?.pointer, `/${name}`, `${name}=${JSON.stringify(value)}: ${short(body)}`)
    }
  })
})

describe('CSV with CRLF line endings (RFC 4180\'s own)', () => {
  // Found by this test's csv-sparse data set with crlf: true (and by the hostile-input corpus).
  it('imports the last field of each line without its \\r', async () => {
    const response = await fetch(`${bases.main}/datasets`, { method: 'POST', headers: { authorization: `Bearer ${keys.main}`, 'content-type': 'text/csv' }, body: 'a,b\r\n1,2\r\n3,\r\n' })
    const answer = await json(response)
    assert.equal(response.status, 201, JSON.stringify(answer))
    assert.deepEqual(answer.schema.fields.map((field: { type: string, nullable: boolean }) => [field.type, field.nullable]), [['integer', false], ['integer', true]])
    const { rows } = await json(await fetch(`${bases.main}/datasets/${answer.dataset.id}/rows`))
    assert.deepEqual(rows, [{ a: 1, b: 2 }, { a: 3, b: null }])
  })
})
