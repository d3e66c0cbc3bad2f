// GET /datasets/{id}/aggregate against an oracle. fast-check generates a data set (a column of
// every type, missing values, few distinct values so that groups repeat, integers near 2^53 whose
// sums go beyond it, numerics spelled with padding zeros, text past the cursor's literal length),
// uploaded once; then random queries (group columns, metrics, filters, sorts, page sizes) walk
// every page, and the groups, in order, are compared with the oracle's: grouped, measured and
// sorted here in JavaScript from the same rows, by the documented semantics alone (it imports
// nothing from src/routes/datasets). Averages and deviations are compared within a relative 1e-9;
// every other value exactly.
//
// Deterministic: the seed is fixed (FC_SEED overrides it; FC_RUNS multiplies the random queries).
// The timeout and the disconnect are made deterministic by a lock: a transaction of the test holds
// the data set's table in ACCESS EXCLUSIVE mode, so the aggregate waits until its statement timeout
// (or its client) ends it.
import assert from 'node:assert/strict'
import http from 'node:http'
import { after, describe, it } from 'node:test'
import fc from 'fast-check'
import { createApiKeysRepository } from '../src/auth/api-keys.ts'
import type { Sql } from '../src/db/pool.ts'
import { buildTestApp, listen, recordingLogger } from './helpers/app.ts'
import { json, until } from './helpers/http.ts'

const SEED = Number(process.env.FC_SEED ?? 20_260_519)
const RUNS = Number(process.env.FC_RUNS ?? 1)

// ─── The oracle: values, their order and how they are sent ────────────────────────────────────

type ColumnType = 'integer' | 'numeric' | 'boolean' | 'date' | 'timestamp' | 'text'
/** An exact rational p/q, q > 0: integers, numerics, sums and averages alike. */
interface Rational { p: bigint, q: bigint }
type Value = bigint | Rational | boolean | string | number | null

interface Column { name: string, type: ColumnType }
const COLUMNS: readonly Column[] = [
  { name: 'g', type: 'integer' },
  { name: 'big', type: 'integer' },
  { name: 'score', type: 'numeric' },
  { name: 'flag', type: 'boolean' },
  { name: 'day', type: 'date' },
  { name: 'at', type: 'timestamp' },
  { name: 'kind', type: 'text' },
  { name: 'long', type: 'text' },
]
const typeOf = (name: string): ColumnType => COLUMNS.find((column) => column.name === name)!.type

const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER)
// Instants in time order (the oracle's value is the index), as the service writes them.
const INSTANTS = ['0001-01-01T00:00:00Z', '1969-12-31T23:59:59.999999Z', '1970-01-01T00:00:00Z', '2026-01-02T10:00:00Z', '2026-01-02T10:00:00.000001Z', '2026-01-02T10:00:00.5Z', '9999-12-31T23:59:59.999999Z']
const DAYS = ['0001-01-01', '1999-12-31', '2026-01-01', '2026-01-02', '9999-12-31']
const KINDS = ['a', 'B', 'b', 'ä', 'Z', 'ΟΣ', '𝒳', 'a b', '\ue000']
const LONG = ['a', 'b', 'c'].map((last) => `${'L'.repeat(240)}${last}`)

const rational = (p: bigint, q = 1n): Rational => ({ p, q })
const compareRational = (a: Rational, b: Rational): number => {
  const x = a.p * b.q
  const y = b.p * a.q
  return x < y ? -1 : x > y ? 1 : 0
}
const gcd = (a: bigint, b: bigint): bigint => (b === 0n ? (a < 0n ? -a : a) : gcd(b, a % b))
/** p/q in lowest terms, so that q stays small (a power of ten for sums of numerics). */
const reduced = ({ p, q }: Rational): Rational => {
  const divisor = gcd(p, q) || 1n
  return { p: p / divisor, q: q / divisor }
}
const addRational = (a: Rational, b: Rational): Rational => reduced({ p: a.p * b.q + b.p * a.q, q: a.q * b.q })
/** The double nearest p/q when it is a finite decimal (sums of numerics: what Number() of their exact text gives), else near it. */
function toNumber ({ p, q }: Rational): number {
  let [twos, fives, rest] = [0, 0, q]
  while (rest % 2n === 0n) [twos, rest] = [twos + 1, rest / 2n]
  while (rest % 5n === 0n) [fives, rest] = [fives + 1, rest / 5n]
  const digits = Math.max(twos, fives)
  if (rest === 1n) return Number(`${p * 10n ** BigInt(digits) / q}e-${digits}`) || 0
  return (Number(p) / Number(q)) || 0
}

/** Text ordered by Unicode code point (not by UTF-16 code unit). */
function compareText (a: string, b: string): number {
  const x = Array.from(a, (character) => character.codePointAt(0)!)
  const y = Array.from(b, (character) => character.codePointAt(0)!)
  for (let index = 0; index < Math.min(x.length, y.length); index++) if (x[index] !== y[index]) return x[index]! - y[index]!
  return x.length - y.length
}

/** Present values of one type, in order; missing values are ordered by the caller. */
function compareValues (type: ColumnType | 'rational', a: Value, b: Value): number {
  switch (type) {
    case 'integer': return (a as bigint) < (b as bigint) ? -1 : (a as bigint) > (b as bigint) ? 1 : 0
    case 'numeric':
    case 'rational': return compareRational(a as Rational, b as Rational)
    case 'boolean': return Number(a) - Number(b)
    case 'timestamp': return (a as number) - (b as number)
    case 'date': return a! < b! ? -1 : a! > b! ? 1 : 0
    case 'text': return compareText(a as string, b as string)
  }
}

/** A value as the service sends it. */
function output (type: ColumnType, value: Value): unknown {
  if (value === null) return null
  switch (type) {
    case 'integer': return Number(value)
    case 'numeric': return toNumber(value as Rational)
    case 'timestamp': return INSTANTS[value as number]
    default: return value
  }
}

/** Canonical text of a value: equal values (1.0 and 1.00) have the same. */
function canonical (type: ColumnType, value: Value): string {
  if (value === null) return '∅'
  if (type === 'numeric') {
    const { p, q } = value as Rational
    return `${p * (10n ** 20n) / q}`
  }
  return typeof value === 'object' ? `${value.p}/${value.q}` : String(value)
}

// ─── The data set ─────────────────────────────────────────────────────────────────────────────

interface Row { values: Record<string, Value>, texts: Record<string, string> }

const maybe = <T>(arbitrary: fc.Arbitrary<T>): fc.Arbitrary<T | null> => fc.option(arbitrary, { nil: null, freq: 7 })
/** A numeric n × 10^-scale written with `pad` more zeros (1.5, 1.50): equal values in different spellings. */
const numericArb = fc.record({
  n: fc.oneof(fc.bigInt({ min: -40n, max: 40n }), fc.constantFrom(10n ** 17n, -(10n ** 17n), 123_456_789_012_345n)),
  scale: fc.integer({ min: 0, max: 3 }),
  pad: fc.nat(2),
})
function spellNumeric ({ n, scale, pad }: { n: bigint, scale: number, pad: number }): string {
  const digits = (n < 0n ? -n : n).toString().padStart(scale + 1, '0') + '0'.repeat(pad)
  const point = digits.length - scale - pad
  const text = scale + pad === 0 ? digits : `${digits.slice(0, point)}.${digits.slice(point)}`
  return (n < 0n ? '-' : '') + text
}
const rowArb = fc.record({
  g: maybe(fc.integer({ min: -3, max: 3 })),
  big: maybe(fc.constantFrom(MAX_SAFE, -MAX_SAFE, MAX_SAFE - 1n, 0n, 12_345n)),
  score: maybe(numericArb),
  flag: maybe(fc.boolean()),
  day: maybe(fc.constantFrom(...DAYS)),
  at: maybe(fc.nat(INSTANTS.length - 1)),
  kind: maybe(fc.constantFrom(...KINDS)),
  long: maybe(fc.constantFrom(...LONG)),
})
type Generated = typeof rowArb extends fc.Arbitrary<infer T> ? T : never

function rowOf (generated: Generated): Row {
  const values: Record<string, Value> = {}
  const texts: Record<string, string> = {}
  const put = (name: string, value: Value, text: string): void => {
    values[name] = value
    texts[name] = value === null ? '' : text
  }
  put('g', generated.g === null ? null : BigInt(generated.g), String(generated.g))
  put('big', generated.big, String(generated.big))
  put('score', generated.score === null ? null : rational(generated.score.n, 10n ** BigInt(generated.score.scale)), generated.score === null ? '' : spellNumeric(generated.score))
  put('flag', generated.flag, String(generated.flag))
  put('day', generated.day, String(generated.day))
  put('at', generated.at, generated.at === null ? '' : INSTANTS[generated.at]!)
  put('kind', generated.kind, String(generated.kind))
  put('long', generated.long, String(generated.long))
  return { values, texts }
}

/** The first row has every value (and a fraction in score), so that each column is inferred as intended. */
const FIRST: Generated = { g: 1, big: MAX_SAFE, score: { n: 5n, scale: 1, pad: 0 }, flag: true, day: '2026-01-01', at: 5, kind: 'a', long: LONG[0]! }

const csvField = (text: string): string => (/[",\n\r]/.test(text) || text !== text.trim() ? `"${text.replaceAll('"', '""')}"` : text)
const csvOf = (rows: Row[]): string => [COLUMNS.map((column) => column.name).join(','), ...rows.map((row) => COLUMNS.map((column) => csvField(row.texts[column.name]!)).join(','))].join('\n') + '\n'

// ─── Queries and what the oracle answers ──────────────────────────────────────────────────────

const FUNCTIONS = ['count', 'count_distinct', 'sum', 'avg', 'stddev', 'min', 'max'] as const
type Fn = typeof FUNCTIONS[number]
interface Metric { key: string, fn: Fn, column?: string }
const applies = (fn: Fn, type: ColumnType): boolean =>
  fn === 'sum' || fn === 'avg' || fn === 'stddev' ? type === 'integer' || type === 'numeric' : fn === 'min' || fn === 'max' ? type !== 'boolean' : true
const METRICS: Metric[] = [
  { key: 'count', fn: 'count' },
  ...FUNCTIONS.flatMap((fn) => COLUMNS.filter((column) => applies(fn, column.type)).map((column) => ({ key: `${fn}:${column.name}`, fn, column: column.name }))),
]

type Operator = 'eq' | 'ne' | 'gt' | 'lte' | 'isnull' | 'in'
interface Filter { column: string, op: Operator, value: string, bare: boolean }
interface Query { groupBy: string[], repeated: boolean, metrics: Metric[], filters: Filter[], sort?: { key: string, descending: boolean }, limit?: number }

/** A value of the column as a filter value (the oracle's value and its text). */
function domain (column: string): Array<[Value, string]> {
  switch (column) {
    case 'g': return [-3, -1, 0, 2, 3].map((value) => [BigInt(value), String(value)])
    case 'big': return [[MAX_SAFE - 1n, String(MAX_SAFE - 1n)], [0n, '0'], [-MAX_SAFE, String(-MAX_SAFE)]]
    case 'score': return [[rational(0n), '0'], [rational(5n, 10n), '0.50'], [rational(-7n), '-7'], [rational(10n ** 17n), '100000000000000000']]
    case 'flag': return [[true, 'true'], [false, 'false']]
    case 'day': return DAYS.map((day) => [day, day])
    case 'at': return INSTANTS.map((text, index) => [index, text])
    case 'kind': return KINDS.map((kind) => [kind, kind])
    default: return LONG.map((text) => [text, text])
  }
}

function matches (row: Row, filter: Filter): boolean {
  const type = typeOf(filter.column)
  const value = row.values[filter.column]!
  if (filter.op === 'isnull') return (value === null) === (filter.value === 'true')
  if (value === null) return false // a missing value matches no comparison
  const find = (text: string): Value => domain(filter.column).find(([, spelled]) => spelled === text)![0]
  const order = (text: string): number => compareValues(type, value, find(text))
  switch (filter.op) {
    case 'eq': return order(filter.value) === 0
    case 'ne': return order(filter.value) !== 0
    case 'gt': return order(filter.value) > 0
    case 'lte': return order(filter.value) <= 0
    case 'in': return filter.value.split(',').some((text) => order(text) === 0)
  }
}

/** What a metric's sort order compares: rationals for sums and averages, the column's own type for min and max. */
function sortType (metric: Metric): ColumnType | 'rational' {
  if (metric.fn === 'min' || metric.fn === 'max') return typeOf(metric.column!)
  return metric.fn === 'count' || metric.fn === 'count_distinct' ? 'integer' : 'rational'
}

interface OracleGroup { keys: Value[], metrics: Value[], output: Record<string, unknown> }

/** A metric of a group's rows: its value for ordering, and what the service sends. */
function measure (metric: Metric, rows: Row[]): { value: Value, sent: unknown } {
  if (metric.column === undefined) return { value: BigInt(rows.length), sent: rows.length }
  const type = typeOf(metric.column)
  const present = rows.map((row) => row.values[metric.column!]!).filter((value) => value !== null)
  const asRational = (value: Value): Rational => (type === 'integer' ? rational(value as bigint) : value as Rational)
  switch (metric.fn) {
    case 'count': return { value: BigInt(present.length), sent: present.length }
    case 'count_distinct': {
      const distinct = new Set(present.map((value) => canonical(type, value))).size
      return { value: BigInt(distinct), sent: distinct }
    }
    case 'sum': {
      if (present.length === 0) return { value: null, sent: null }
      const sum = present.map(asRational).reduce(addRational)
      if (type === 'integer') return { value: sum, sent: Number.isSafeInteger(Number(sum.p)) ? Number(sum.p) : String(sum.p) }
      return { value: sum, sent: toNumber(sum) }
    }
    case 'avg': {
      if (present.length === 0) return { value: null, sent: null }
      const sum = present.map(asRational).reduce(addRational)
      const average = { p: sum.p, q: sum.q * BigInt(present.length) }
      return { value: average, sent: toNumber(average) }
    }
    case 'stddev': {
      if (present.length < 2) return { value: null, sent: null }
      const n = BigInt(present.length)
      const values = present.map(asRational)
      const sum = values.reduce(addRational)
      const squares = values.map((x) => ({ p: x.p * x.p, q: x.q * x.q })).reduce(addRational)
      // (n Σx² − (Σx)²) / (n (n − 1))
      const numerator = addRational({ p: n * squares.p, q: squares.q }, { p: -(sum.p * sum.p), q: sum.q * sum.q })
      const variance = { p: numerator.p, q: numerator.q * n * (n - 1n) }
      return { value: variance, sent: Math.sqrt(toNumber(variance)) }
    }
    case 'min':
    case 'max': {
      if (present.length === 0) return { value: null, sent: null }
      const sign = metric.fn === 'min' ? 1 : -1
      const found = present.reduce((best, value) => (sign * compareValues(type, value, best) < 0 ? value : best))
      return { value: found, sent: output(type, found) }
    }
  }
}

function expectGroups (rows: Row[], query: Query): OracleGroup[] {
  const kept = rows.filter((row) => query.filters.every((filter) => matches(row, filter)))
  const grouped = new Map<string, Row[]>()
  for (const row of kept) {
    const key = JSON.stringify(query.groupBy.map((name) => canonical(typeOf(name), row.values[name]!)))
    grouped.set(key, [...(grouped.get(key) ?? []), row])
  }
  // Without group columns, one group: the whole filtered set, even when it is empty.
  if (query.groupBy.length === 0 && grouped.size === 0) grouped.set('[]', [])
  const groups = [...grouped.values()].map((members): OracleGroup => {
    const keys = query.groupBy.map((name) => members[0]!.values[name]!)
    const measured = query.metrics.map((metric) => measure(metric, members))
    const result: Record<string, unknown> = {}
    query.groupBy.forEach((name, index) => { result[name] = output(typeOf(name), keys[index]!) })
    query.metrics.forEach((metric, index) => { result[metric.key] = measured[index]!.sent })
    return { keys, metrics: measured.map((entry) => entry.value), output: result }
  })
  const nullsLast = (type: ColumnType | 'rational', a: Value, b: Value, descending: boolean): number => {
    if (a === null || b === null) return a === b ? 0 : a === null ? 1 : -1
    return (descending ? -1 : 1) * compareValues(type, a, b)
  }
  const byGroups = (a: OracleGroup, b: OracleGroup): number => {
    for (const [index, name] of query.groupBy.entries()) {
      const order = nullsLast(typeOf(name), a.keys[index]!, b.keys[index]!, false)
      if (order !== 0) return order
    }
    return 0
  }
  const sort = query.sort
  return groups.sort((a, b) => {
    if (sort !== undefined) {
      const group = query.groupBy.indexOf(sort.key)
      const metric = query.metrics.findIndex((candidate) => candidate.key === sort.key)
      const order = group !== -1
        ? nullsLast(typeOf(sort.key), a.keys[group]!, b.keys[group]!, sort.descending)
        : nullsLast(sortType(query.metrics[metric]!), a.metrics[metric]!, b.metrics[metric]!, sort.descending)
      if (order !== 0) return order
    }
    return byGroups(a, b)
  })
}

function parametersOf (query: Query): Array<[string, string]> {
  const parameters: Array<[string, string]> = []
  if (query.groupBy.length > 0) {
    if (query.repeated) for (const name of query.groupBy) parameters.push(['_group_by', name])
    else parameters.push(['_group_by', query.groupBy.join(',')])
  }
  parameters.push(['_metrics', query.metrics.map((metric) => metric.key).join(',')])
  for (const filter of query.filters) parameters.push([filter.bare ? filter.column : `${filter.column}__${filter.op}`, filter.value])
  if (query.sort !== undefined) parameters.push(['_sort', `${query.sort.descending ? '-' : ''}${query.sort.key}`])
  if (query.limit !== undefined) parameters.push(['_limit', String(query.limit)])
  return parameters
}

const queryString = (parameters: Array<[string, string]>): string => new URLSearchParams(parameters).toString()

const filterArb = fc.constantFrom(...COLUMNS).chain((column) => fc.constantFrom<Operator>(...(column.type === 'boolean' ? ['eq', 'ne', 'isnull', 'in'] as const : ['eq', 'ne', 'gt', 'lte', 'isnull', 'in'] as const)).chain((op) => fc.record({
  column: fc.constant(column.name),
  op: fc.constant(op),
  value: op === 'isnull'
    ? fc.constantFrom('true', 'false')
    : op === 'in'
      ? fc.uniqueArray(fc.constantFrom(...domain(column.name).map(([, text]) => text)), { minLength: 1, maxLength: 3 }).map((texts) => texts.join(','))
      : fc.constantFrom(...domain(column.name).map(([, text]) => text)),
  bare: op === 'eq' ? fc.boolean() : fc.constant(false),
})))

const queryArb: fc.Arbitrary<Query> = fc.record({
  groupBy: fc.uniqueArray(fc.constantFrom(...COLUMNS.map((column) => column.name)), { minLength: 0, maxLength: 3 }),
  repeated: fc.boolean(),
  metrics: fc.uniqueArray(fc.constantFrom(...METRICS), { minLength: 1, maxLength: 4, selector: (metric) => metric.key }),
  filters: fc.uniqueArray(filterArb, { minLength: 0, maxLength: 2, selector: (filter) => `${filter.column}__${filter.op}` }),
  limit: fc.option(fc.oneof(fc.integer({ min: 1, max: 6 }), fc.constant(1000)), { nil: undefined, freq: 8 }),
  direction: fc.boolean(),
  pick: fc.nat(),
  sorted: fc.nat(3),
}).map(({ direction, pick, sorted, ...query }) => {
  // Sort by a group column or a metric (not stddev: two equal deviations may differ in their last
  // digit in SQL), or not at all.
  const choices = [...query.groupBy, ...query.metrics.filter((metric) => metric.fn !== 'stddev').map((metric) => metric.key)]
  return { ...query, sort: sorted === 0 || choices.length === 0 ? undefined : { key: choices[pick % choices.length]!, descending: direction } }
})

// ─── The service ──────────────────────────────────────────────────────────────────────────────

const env = { LOG_LEVEL: 'silent', OVERLOAD_EVENT_LOOP_DELAY_MS: '0' }
const QUERY_TIMEOUT_MS = 300
// A client that leaves is no error of the service: what `main` logs is kept, and checked below.
const mainLog = recordingLogger()
const main = await buildTestApp({ after }, env, { logger: mainLog.logger })
const timeoutApp = await buildTestApp({ after }, { ...env, QUERY_TIMEOUT_MS: String(QUERY_TIMEOUT_MS) })
const bases = { main: await listen(main.app), timeout: await listen(timeoutApp.app) }
const keys = { main: (await createApiKeysRepository(main.sql).create('aggregate')).key, timeout: (await createApiKeysRepository(timeoutApp.sql).create('aggregate')).key }

async function upload (base: string, key: string, csv: string): Promise<number> {
  const response = await fetch(`${base}/datasets?name=aggregate`, { method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'text/csv' }, body: csv })
  const answer = await json(response)
  assert.equal(response.status, 201, JSON.stringify(answer))
  return answer.dataset.id as number
}

const short = (value: unknown): string => {
  const text = JSON.stringify(value, (_key, item: unknown) => (typeof item === 'string' && item.length > 40 ? `${item.slice(0, 20)}…(${item.length} chars)` : item))
  return text.length > 800 ? `${text.slice(0, 800)}…` : text
}

/** Equal as the service sends it; averages and deviations within a relative 1e-9. */
function sameGroup (query: Query, expected: Record<string, unknown>, got: Record<string, unknown>): boolean {
  const names = [...query.groupBy, ...query.metrics.map((metric) => metric.key)]
  if (Object.keys(got).length !== names.length) return false
  return names.every((name) => {
    const [x, y] = [expected[name], got[name]]
    const metric = query.metrics.find((candidate) => candidate.key === name)
    if (typeof x === 'number' && typeof y === 'number') {
      if (metric?.fn === 'avg' || metric?.fn === 'stddev') return Math.abs(x - y) <= 1e-9 * Math.max(Math.abs(x), Math.abs(y), 1e-300)
      return x === y || (x === 0 && y === 0)
    }
    return x === y
  })
}

interface Walked { status: number, groups: number, pages: number }

async function walk (base: string, id: number, parameters: Array<[string, string]>): Promise<{ groups: Array<Record<string, unknown>>, pages: number }> {
  const groups: Array<Record<string, unknown>> = []
  let cursor: string | null = null
  let pages = 0
  do {
    const response = await fetch(`${base}/datasets/${id}/aggregate?${queryString(cursor === null ? parameters : [...parameters, ['_cursor', cursor]])}`)
    const body = await json(response)
    assert.equal(response.status, 200, `page ${pages + 1} of ?${queryString(parameters)}: ${response.status} ${short(body)}`)
    pages++
    if (pages > 1) assert.ok(body.groups.length > 0, 'a page after the first is never empty')
    groups.push(...body.groups)
    cursor = body.next_cursor
    assert.ok(pages < 2000, 'the walk ends')
  } while (cursor !== null)
  return { groups, pages }
}

async function check (base: string, id: number, rows: Row[], query: Query): Promise<Walked> {
  const parameters = parametersOf(query)
  const where = `GET /datasets/{id}/aggregate?${queryString(parameters)}`
  const expected = expectGroups(rows, query)
  const { groups, pages } = await walk(base, id, parameters)
  const limit = query.limit ?? 100
  assert.ok(pages <= Math.max(1, Math.ceil(expected.length / limit)), `${where}: ${pages} pages for ${expected.length} groups`)
  const first = expected.findIndex((group, index) => groups[index] === undefined || !sameGroup(query, group.output, groups[index]))
  if (first !== -1 || groups.length !== expected.length) {
    const at = first === -1 ? expected.length : first
    assert.fail(`${where}: ${groups.length} groups, the oracle ${expected.length}; first difference at ${at}: expected ${short(expected[at]?.output)}, got ${short(groups[at])}`)
  }
  return { status: 200, groups: groups.length, pages }
}

/** Queries every data set gets before the random ones: each metric sorted both ways, long text keys, no group columns. */
const EXAMPLES: Query[] = [
  ...METRICS.filter((metric) => metric.fn !== 'stddev').flatMap((metric) => [false, true].map((descending): Query => ({ groupBy: ['kind', 'flag'], repeated: false, metrics: metric.fn === 'count' && metric.column === undefined ? [metric] : [metric, METRICS[0]!], filters: [], sort: { key: metric.key, descending }, limit: 3 }))),
  ...COLUMNS.flatMap((column) => [false, true].map((descending): Query => ({ groupBy: column.name === 'kind' ? [column.name] : [column.name, 'kind'], repeated: true, metrics: [METRICS[0]!], filters: [], sort: { key: column.name, descending }, limit: 2 }))),
  { groupBy: ['long'], repeated: false, metrics: METRICS.filter((metric) => metric.column === 'long'), filters: [], limit: 1 },
  { groupBy: ['g'], repeated: false, metrics: [METRICS.find((metric) => metric.key === 'max:long')!], filters: [], sort: { key: 'max:long', descending: true }, limit: 1 },
  { groupBy: [], repeated: false, metrics: METRICS, filters: [] },
  { groupBy: [], repeated: false, metrics: METRICS, filters: [{ column: 'g', op: 'gt', value: '3', bare: false }] },
  { groupBy: ['score'], repeated: false, metrics: [METRICS[0]!, METRICS.find((metric) => metric.key === 'sum:big')!], filters: [], limit: 4 },
]

// ─── The tests ────────────────────────────────────────────────────────────────────────────────

const [generated] = fc.sample(fc.array(rowArb, { minLength: 250, maxLength: 300 }), { seed: SEED, numRuns: 1 })
const rows = [FIRST, ...generated!].map(rowOf)
const datasetId = await upload(bases.main, keys.main, csvOf(rows))

describe('GET /datasets/{id}/aggregate against the oracle', () => {
  it('the data set is the one intended (types inferred, rows all there)', async () => {
    const answer = await json(await fetch(`${bases.main}/datasets/${datasetId}`))
    assert.deepEqual(answer.schema.fields.map((field: { name: string, type: string }) => [field.name, field.type]), COLUMNS.map((column) => [column.name, column.type]))
    assert.equal(answer.dataset.rows, rows.length)
  })

  it(`fixed and ${150 * RUNS} random queries (seed ${SEED}), every page`, async (t) => {
    const tally = { groups: 0, pages: 0, multiPage: 0 }
    await fc.assert(fc.asyncProperty(queryArb, async (query) => {
      const walked = await check(bases.main, datasetId, rows, query)
      tally.groups += walked.groups
      tally.pages += walked.pages
      tally.multiPage += walked.pages > 1 ? 1 : 0
    }), { seed: SEED, numRuns: EXAMPLES.length + 150 * RUNS, examples: EXAMPLES.map((query) => [query]) })
    t.diagnostic(`${tally.groups} groups in ${tally.pages} pages; ${tally.multiPage} queries took more than one page`)
    assert.ok(tally.multiPage > 50, 'paging was exercised')
  })

  it('groups the rows a full-text search finds, as /rows finds them', async () => {
    const rowsFound = await json(await fetch(`${bases.main}/datasets/${datasetId}/rows?_q=b&_limit=1000&_select=kind`))
    assert.equal(rowsFound.next_cursor, null)
    const expected = new Map<string, number>()
    for (const row of rowsFound.rows as Array<{ kind: string }>) expected.set(row.kind, (expected.get(row.kind) ?? 0) + 1)
    assert.ok(expected.size >= 2, 'the search finds rows of several kinds')
    const { groups } = await walk(bases.main, datasetId, [['_q', 'b'], ['_group_by', 'kind'], ['_limit', '1']])
    assert.deepEqual(new Map(groups.map((group) => [group.kind as string, group.count as number])), expected)
  })

  it('pages a sum of integers beyond 2^53 as a decimal string, exactly', async () => {
    const { groups } = await walk(bases.main, datasetId, [['_metrics', 'sum:big'], ['big', String(MAX_SAFE)]])
    const count = rows.filter((row) => row.values.big === MAX_SAFE).length
    assert.deepEqual(groups, [{ 'sum:big': String(MAX_SAFE * BigInt(count)) }])
  })
})

describe('cursors', () => {
  it('stay short: a long text group value goes by the number of one of its rows, a long min or max is computed again', async () => {
    const cursorsOf = async (parameters: Array<[string, string]>): Promise<string[]> => {
      const cursors: string[] = []
      for (let cursor: string | null = null; ;) {
        const body = await json(await fetch(`${bases.main}/datasets/${datasetId}/aggregate?${queryString(cursor === null ? parameters : [...parameters, ['_cursor', cursor]])}`))
        if (body.next_cursor === null) return cursors
        cursor = body.next_cursor as string
        cursors.push(cursor)
      }
    }
    const decoded = (cursor: string): { k: unknown[] } => JSON.parse(Buffer.from(cursor, 'base64url').toString())
    const byLong = await cursorsOf([['_group_by', 'long'], ['_limit', '1']])
    assert.equal(byLong.length, LONG.length) // four groups (three values and the missing one), three cursors
    assert.ok(byLong.every((cursor) => cursor.length < 100), 'short cursors')
    assert.ok(byLong.some((cursor) => typeof (decoded(cursor).k[0] as { r?: number }).r === 'number'), 'a row reference')
    const byMax = await cursorsOf([['_group_by', 'g'], ['_metrics', 'max:long'], ['_sort', '-max:long'], ['_limit', '1']])
    assert.ok(byMax.some((cursor) => (decoded(cursor).k[0] as { x?: number }).x === 1), 'a value computed again')
  })
})

describe('refusals', () => {
  const cases: Array<[string, Array<[string, string]>, string, string]> = [
    ['sum of text', [['_metrics', 'sum:kind']], '_metrics', '_metrics: sum:kind: sum applies to integer and numeric columns; "kind" is text'],
    ['avg of a date', [['_metrics', 'count,avg:day']], '_metrics', 'avg:day: avg applies to integer and numeric columns; "day" is date'],
    ['stddev of a boolean', [['_metrics', 'stddev:flag']], '_metrics', 'stddev:flag: stddev applies to integer and numeric columns; "flag" is boolean'],
    ['min of a boolean', [['_metrics', 'min:flag']], '_metrics', 'min:flag: min applies to ordered columns (all but boolean); "flag" is boolean'],
    ['an unknown function', [['_metrics', 'median:g']], '_metrics', 'unknown metric "median"'],
    ['a function without a column', [['_metrics', 'sum']], '_metrics', 'sum needs a column'],
    ['a metric of an unknown column', [['_metrics', 'max:nope']], '_metrics', 'there is no column "nope"'],
    ['an empty metric', [['_metrics', 'count,,sum:g']], '_metrics', 'an empty metric'],
    ['an unknown group column', [['_group_by', 'kind,nope']], '_group_by', 'there is no column "nope"'],
    ['a sort that is no output', [['_group_by', 'kind'], ['_sort', 'g']], '_sort', 'neither a group column nor one of the metrics'],
    ['a sort by a metric not asked for', [['_sort', '-sum:g']], '_sort', 'a metric must be in _metrics'],
    ['an unknown parameter', [['_having', 'x']], '_having', 'not a parameter of this route'],
    ['a filter on an unknown column', [['nope__eq', '1']], 'nope__eq', 'there is no column "nope"'],
    ['a limit of 0', [['_limit', '0']], '_limit', ''],
    ['a limit beyond 1000', [['_limit', '1001']], '_limit', ''],
  ]
  for (const [what, parameters, pointer, detail] of cases) {
    it(`refuses ${what} with a 400 naming ${pointer}`, async () => {
      const response = await fetch(`${bases.main}/datasets/${datasetId}/aggregate?${queryString(parameters)}`)
      const body = await json(response)
      assert.equal(response.status, 400, short(body))
      assert.equal(body.type, '/problems/validation-error')
      assert.equal(body.errors?.[0]?.pointer, `/${pointer}`, short(body))
      assert.ok(body.detail.includes(detail), `${body.detail} says ${detail}`)
    })
  }

  it('refuses forged cursors, and cursors of another sort or grouping', async () => {
    const parameters: Array<[string, string]> = [['_group_by', 'g,kind'], ['_metrics', 'count'], ['_sort', '-count'], ['_limit', '2']]
    const first = await json(await fetch(`${bases.main}/datasets/${datasetId}/aggregate?${queryString(parameters)}`))
    const cursor = first.next_cursor as string
    const decoded = JSON.parse(Buffer.from(cursor, 'base64url').toString()) as { s: string, g: string[], k: unknown[] }
    const encode = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64url')
    const forged: Array<[string, Array<[string, string]>, string]> = [
      ['not base64 JSON', parameters, '!!!'],
      ['not an object', parameters, encode([1, 2])],
      ['keys missing', parameters, encode({ s: '-count', g: ['g', 'kind'] })],
      ['a key too few', parameters, encode({ ...decoded, k: decoded.k.slice(1) })],
      ['a count that is no integer', parameters, encode({ ...decoded, k: ['many', ...decoded.k.slice(1)] })],
      ['a group value that is no integer', parameters, encode({ ...decoded, k: [decoded.k[0], '1.5', decoded.k[2]] })],
      ['a row reference for an integer key', parameters, encode({ ...decoded, k: [decoded.k[0], { r: 1 }, decoded.k[2]] })],
      ['a recomputation for a group key', parameters, encode({ ...decoded, k: [decoded.k[0], decoded.k[1], { x: 1 }] })],
      ['a negative row reference', parameters, encode({ ...decoded, k: [decoded.k[0], decoded.k[1], { r: -1 }] })],
      ['another sort', parameters.map(([name, value]): [string, string] => [name, name === '_sort' ? 'count' : value]), cursor],
      ['another grouping', parameters.map(([name, value]): [string, string] => [name, name === '_group_by' ? 'kind,g' : value]), cursor],
    ]
    for (const [what, query, text] of forged) {
      const response = await fetch(`${bases.main}/datasets/${datasetId}/aggregate?${queryString([...query, ['_cursor', text]])}`)
      const body = await json(response)
      assert.equal(response.status, 400, `${what}: ${short(body)}`)
      assert.equal(body.errors?.[0]?.pointer, '/_cursor', `${what}: ${short(body)}`)
    }
  })

  it('refuses a metric named like a group column, and answers 404 for a data set that is not there', async () => {
    const id = await upload(bases.main, keys.main, 'count,v\n1,2\n1,3\n')
    const response = await fetch(`${bases.main}/datasets/${id}/aggregate?_group_by=count&_metrics=count,sum:v`)
    const body = await json(response)
    assert.equal(response.status, 400, short(body))
    assert.match(body.detail, /count: a group column of that name is in the output already/)
    // Bare names mean the parameter unless a column has the name: here `count` filters nothing, `metrics` is the parameter.
    assert.deepEqual((await json(await fetch(`${bases.main}/datasets/${id}/aggregate?group_by=count&metrics=sum:v,max:v`))).groups, [{ count: 1, 'sum:v': 5, 'max:v': 3 }])
    assert.equal((await fetch(`${bases.main}/datasets/999999/aggregate`)).status, 404)
  })
})

/** Queries of the app's pool on the data set's table still running, seen from another session. */
async function runningOn (sql: Sql, id: number): Promise<number> {
  const [row] = await sql<[{ count: number }]>`
    select count(*)::int as count from pg_stat_activity
    where datname = current_database() and pid <> pg_backend_pid() and state = 'active' and query like ${`%ds_${id}%`}`
  return row.count
}

/** Holds the table in ACCESS EXCLUSIVE mode (no query reads it meanwhile) while `work` runs. */
async function withTableLocked (sql: Sql, id: number, work: () => Promise<void>): Promise<void> {
  await sql.begin(async (tx) => {
    await tx.unsafe(`lock table dataset_rows.ds_${id} in access exclusive mode`)
    await work()
  })
}

describe('deadline and cancellation', () => {
  it('answers an aggregate past QUERY_TIMEOUT_MS with the 503 timeout problem saying so, and leaves nothing running', async () => {
    const id = await upload(bases.timeout, keys.timeout, 'g,v\n1,2\n2,3\n')
    assert.equal((await fetch(`${bases.timeout}/datasets/${id}/aggregate?_group_by=g`)).status, 200)
    await withTableLocked(timeoutApp.sql, id, async () => {
      const started = performance.now()
      const response = await fetch(`${bases.timeout}/datasets/${id}/aggregate?_group_by=g&_metrics=sum:v`)
      const body = await json(response)
      assert.equal(response.status, 503, short(body))
      assert.equal(body.type, '/problems/timeout')
      assert.equal(body.detail, `The aggregate took longer than QUERY_TIMEOUT_MS (${QUERY_TIMEOUT_MS} ms) and was cancelled; narrow it with filters or fewer group columns, or ask the operator to raise QUERY_TIMEOUT_MS.`)
      assert.ok(response.headers.get('retry-after') !== null)
      assert.ok(performance.now() - started >= QUERY_TIMEOUT_MS * 0.9, 'it waited for its deadline')
      assert.equal(await runningOn(timeoutApp.sql, id), 0, 'no query of it is left running')
    })
    assert.equal((await fetch(`${bases.timeout}/datasets/${id}/aggregate?_group_by=g`)).status, 200, 'and the next one runs')
  })

  it('cancels the aggregate on the server when the client leaves', async () => {
    await withTableLocked(main.sql, datasetId, async () => {
      const request = http.get(`${bases.main}/datasets/${datasetId}/aggregate?_group_by=kind`)
      request.on('error', () => {}) // ECONNRESET: we hang up
      await until('the aggregate to wait for the table', async () => await runningOn(main.sql, datasetId) === 1, 5_000)
      request.destroy()
      // Well before QUERY_TIMEOUT_MS (10 s here): cancelled, not timed out.
      await until('the aggregate to be cancelled', async () => await runningOn(main.sql, datasetId) === 0, 3_000)
    })
    assert.deepEqual(mainLog.errors(), [], 'no error logged')
  })
})
