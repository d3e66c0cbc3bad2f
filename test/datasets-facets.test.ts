// Facets (`_facet`, `_facet_size`) and totals (`_count`) of GET /datasets/{id}/rows, on a real
// PostgreSQL. fast-check (fixed seed; FC_SEED overrides it) generates data sets, filters and facet
// choices; every facet (values, other, nulls, bins, date buckets, the default granularity) and every
// exact total is compared with an oracle computed here from the generated rows, from the documented
// semantics alone (nothing of src/routes/datasets is imported). Then the deadlines: a facet held by
// a lock the test takes is answered timed_out, cancelled in PostgreSQL, beside right rows and facets.
import assert from 'node:assert/strict'
import { after, describe, it } from 'node:test'
import fc from 'fast-check'
import { createApiKeysRepository } from '../src/auth/api-keys.ts'
import { createSql } from '../src/db/pool.ts'
import { buildTestApp, listen } from './helpers/app.ts'
import { getAndDisconnect, json, until } from './helpers/http.ts'

const SEED = Number(process.env.FC_SEED ?? 20_261_219)

// ─── Generated data: few distinct values (ties, an `other`), missing values, spans of every size ───

interface Row { id: number, cat: string | null, flag: boolean | null, n: number | null, x: number | null, day: number | null, at: number | null }
type Name = Exclude<keyof Row, 'id'>
const TYPES: Record<Name, 'text' | 'boolean' | 'integer' | 'numeric' | 'date' | 'timestamp'> = { cat: 'text', flag: 'boolean', n: 'integer', x: 'numeric', day: 'date', at: 'timestamp' }
const NAMES = Object.keys(TYPES) as Name[]
const CATS = ['Oslo', 'oslo', 'Ørsta', 'Bergen', 'a,b', 'zz', '中文', '😀']
const DAY_MS = 86_400_000
const BASE_DAY = Date.UTC(2024, 0, 15) / DAY_MS

const nullable = <T>(arbitrary: fc.Arbitrary<T>, missing: number): fc.Arbitrary<T | null> => fc.oneof({ weight: missing, arbitrary: fc.constant(null) }, { weight: 10, arbitrary })

/** A table: rows whose values come from small domains, and date spans of days, months or decades. */
const tableArb = fc.record({ count: fc.integer({ min: 30, max: 300 }), spanDays: fc.constantFrom(5, 20, 150, 700, 12_000), intRange: fc.constantFrom(3, 40, 5000), missing: fc.integer({ min: 0, max: 4 }) })
  .chain(({ count, spanDays, intRange, missing }) => fc.array(fc.record({
    cat: nullable(fc.constantFrom(...CATS), missing),
    flag: nullable(fc.boolean(), missing),
    n: nullable(fc.integer({ min: -intRange, max: intRange }), missing),
    x: nullable(fc.integer({ min: -20_000, max: 20_000 }), missing), // cents
    day: nullable(fc.integer({ min: 0, max: spanDays }), missing),
    at: nullable(fc.integer({ min: 0, max: spanDays * 86_400 }), missing), // seconds
  }), { minLength: count, maxLength: count }))
  .map((cells) => cells.map((cell, index): Row => ({
    id: index + 1,
    ...cell,
    day: cell.day === null ? null : BASE_DAY + cell.day,
    at: cell.at === null ? null : BASE_DAY * DAY_MS + cell.at * 1000,
  })))

const dateText = (day: number): string => new Date(day * DAY_MS).toISOString().slice(0, 10)
const isoText = (ms: number): string => new Date(ms).toISOString().replace('.000Z', 'Z')
const centsText = (cents: number): string => `${cents < 0 ? '-' : ''}${Math.floor(Math.abs(cents) / 100)}.${String(Math.abs(cents) % 100).padStart(2, '0')}`

function csvOf (rows: Row[]): string {
  // The first row has every value, x a fraction and `at` a time of day: the schema is unambiguous.
  rows[0] = { ...rows[0]!, cat: 'Oslo', flag: true, n: 1, x: 150, day: BASE_DAY, at: BASE_DAY * DAY_MS + 3_600_000 }
  const field = (text: string): string => (/[",\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text)
  const lines = rows.map((row) => [String(row.id), row.cat === null ? '' : field(row.cat), row.flag === null ? '' : String(row.flag), row.n === null ? '' : String(row.n),
    row.x === null ? '' : centsText(row.x), row.day === null ? '' : dateText(row.day), row.at === null ? '' : isoText(row.at)].join(','))
  return ['id,cat,flag,n,x,day,at', ...lines].join('\n') + '\n'
}

// ─── The oracle ─────────────────────────────────────────────────────────────────────────────────

interface Filter { column: Name, op: 'eq' | 'gte' | 'lt' | 'in' | 'isnull', value: string, test: (row: Row) => boolean }
type By = 'value' | 'bins' | 'day' | 'month' | 'year'
interface FacetAsk { column: Name, by?: By }

const compareCodePoints = (a: string, b: string): number => {
  const x = Array.from(a).map((c) => c.codePointAt(0)!)
  const y = Array.from(b).map((c) => c.codePointAt(0)!)
  for (let i = 0; i < Math.min(x.length, y.length); i++) if (x[i] !== y[i]) return x[i]! - y[i]!
  return x.length - y.length
}
/** The native value a facet groups by, as something comparable: a number, or text for text. */
const native = (column: Name, row: Row): number | string | null => {
  const value = row[column]
  return value === null ? null : typeof value === 'boolean' ? Number(value) : value
}
const compareNative = (column: Name) => (a: number | string, b: number | string): number => (TYPES[column] === 'text' ? compareCodePoints(a as string, b as string) : (a as number) - (b as number))

function monthIndex (day: number): number {
  const date = new Date(day * DAY_MS)
  return date.getUTCFullYear() * 12 + date.getUTCMonth()
}

interface ExpectedFacet { by: By, values: Array<{ value: unknown, count: number, to?: unknown }>, other: number, nulls: number }

function expectedFacet (rows: Row[], ask: FacetAsk, size: number): ExpectedFacet {
  const type = TYPES[ask.column]
  const present = rows.filter((row) => row[ask.column] !== null)
  const nulls = rows.length - present.length
  let by = ask.by ?? (type === 'integer' || type === 'numeric' ? 'bins' : 'value')
  if (ask.by === undefined && (type === 'date' || type === 'timestamp')) {
    const days = present.map((row) => (type === 'date' ? row.day! : Math.floor(row.at! / DAY_MS)))
    if (days.length === 0) by = 'day'
    else {
      const lo = Math.min(...days)
      const hi = Math.max(...days)
      by = hi - lo + 1 <= size ? 'day' : monthIndex(hi) - monthIndex(lo) + 1 <= size ? 'month' : 'year'
    }
  }
  if (by === 'bins') return expectedBins(present, ask.column, size, nulls)
  // Buckets: the value itself, or the first day of its day, month or year (UTC).
  const bucket = (row: Row): number | string => {
    const value = native(ask.column, row)!
    if (by === 'value' || (type !== 'date' && type !== 'timestamp')) return value
    const day = type === 'date' ? row.day! : Math.floor(row.at! / DAY_MS)
    const date = new Date(day * DAY_MS)
    const start = by === 'day' ? day : by === 'month' ? Date.UTC(date.getUTCFullYear(), date.getUTCMonth(), 1) / DAY_MS : Date.UTC(date.getUTCFullYear(), 0, 1) / DAY_MS
    return type === 'date' ? start : start * DAY_MS
  }
  const counts = new Map<number | string, number>()
  for (const row of present) counts.set(bucket(row), (counts.get(bucket(row)) ?? 0) + 1)
  const compare = compareNative(ask.column)
  const ranked = [...counts].sort(([a, x], [b, y]) => y - x || compare(a, b))
  const top = ranked.slice(0, size)
  const shown = (value: number | string): unknown => {
    if (type === 'boolean') return value === 1
    if (type === 'numeric') return (value as number) / 100
    if (type === 'date') return dateText(value as number)
    if (type === 'timestamp') return isoText(value as number)
    return value
  }
  return { by, values: top.map(([value, count]) => ({ value: shown(value), count })), other: present.length - top.reduce((sum, [, count]) => sum + count, 0), nulls }
}

function expectedBins (present: Row[], column: Name, size: number, nulls: number): ExpectedFacet {
  if (present.length === 0) return { by: 'bins', values: [], other: 0, nulls }
  const values = present.map((row) => row[column] as number)
  const lo = Math.min(...values)
  const hi = Math.max(...values)
  const bins = new Map<number, number>()
  let bound: (k: number) => [number, number]
  if (TYPES[column] === 'integer') {
    const width = Math.floor((hi - lo + size) / size)
    for (const v of values) bins.set(Math.floor((v - lo) / width), (bins.get(Math.floor((v - lo) / width)) ?? 0) + 1)
    bound = (k) => [lo + k * width, lo + (k + 1) * width]
  } else {
    // Cents: (v - lo) * size / (hi - lo) is exact in integers.
    const binOf = (v: number): number => (hi === lo ? 0 : Math.min(Math.floor((v - lo) * size / (hi - lo)), size - 1))
    for (const v of values) bins.set(binOf(v), (bins.get(binOf(v)) ?? 0) + 1)
    bound = (k) => [(lo + k * (hi - lo) / size) / 100, (k === size - 1 || hi === lo ? hi : lo + (k + 1) * (hi - lo) / size) / 100]
  }
  return { by: 'bins', values: [...bins].sort(([a], [b]) => a - b).map(([k, count]) => ({ value: bound(k)[0], to: bound(k)[1], count })), other: 0, nulls }
}

/** Facets compared with bounds of bins near enough (numeric division), everything else exactly. */
function assertFacet (got: any, expected: ExpectedFacet, where: string): void {
  assert.equal(got?.by, expected.by, `${where}: by`)
  assert.deepEqual([got.other, got.nulls], [expected.other, expected.nulls], `${where}: other, nulls (got ${JSON.stringify(got)})`)
  assert.equal(got.values.length, expected.values.length, `${where}: ${JSON.stringify(got.values)} vs ${JSON.stringify(expected.values)}`)
  got.values.forEach((entry: any, index: number) => {
    const wanted = expected.values[index]!
    assert.equal(entry.count, wanted.count, `${where}: count of value ${index}: ${JSON.stringify(got.values)} vs ${JSON.stringify(expected.values)}`)
    for (const key of ['value', 'to'] as const) {
      if (typeof wanted[key] === 'number') assert.ok(Math.abs((entry[key] as number) - (wanted[key])) < 1e-9, `${where}: ${key} ${String(entry[key])} vs ${String(wanted[key])}`)
      else assert.deepEqual(entry[key], wanted[key], `${where}: ${key} of value ${index}`)
    }
  })
}

function filterArb (rows: Row[]): fc.Arbitrary<Filter> {
  const some = <T>(pick: (row: Row) => T | null): T[] => rows.map(pick).filter((value): value is T => value !== null)
  return fc.oneof(
    fc.constantFrom(...some((row) => row.cat)).map((value): Filter => ({ column: 'cat', op: 'eq', value, test: (row) => row.cat === value })),
    fc.subarray(CATS.filter((cat) => !cat.includes(',')), { minLength: 1 }).map((values): Filter => ({ column: 'cat', op: 'in', value: values.join(','), test: (row) => row.cat !== null && values.includes(row.cat) })),
    fc.boolean().map((value): Filter => ({ column: 'flag', op: 'eq', value: String(value), test: (row) => row.flag === value })),
    fc.constantFrom(...some((row) => row.n)).map((value): Filter => ({ column: 'n', op: 'gte', value: String(value), test: (row) => row.n !== null && row.n >= value })),
    fc.constantFrom(...some((row) => row.x)).map((value): Filter => ({ column: 'x', op: 'lt', value: centsText(value), test: (row) => row.x !== null && row.x < value })),
    fc.constantFrom(...some((row) => row.day)).map((value): Filter => ({ column: 'day', op: 'lt', value: dateText(value), test: (row) => row.day !== null && row.day < value })),
    fc.constantFrom(...NAMES).chain((column) => fc.boolean().map((value): Filter => ({ column, op: 'isnull', value: String(value), test: (row) => (row[column] === null) === value }))),
  )
}

const ALLOWED: Record<Name, Array<By | undefined>> = {
  cat: [undefined, 'value'], flag: [undefined], n: [undefined, 'bins', 'value'], x: [undefined, 'value'], day: [undefined, 'day', 'month', 'year', 'value'], at: [undefined, 'day', 'month', 'year'],
}
const facetsArb = fc.uniqueArray(fc.constantFrom(...NAMES), { minLength: 1, maxLength: 6 })
  .chain((columns) => fc.tuple(...columns.map((column) => fc.constantFrom(...ALLOWED[column]).map((by): FacetAsk => ({ column, by })))))

interface Query { filters: Filter[], facets: FacetAsk[], size?: number, count?: 'exact' | 'estimated' | 'none', comma: boolean }
const queryArb = (rows: Row[]): fc.Arbitrary<Query> => fc.record({
  filters: fc.array(filterArb(rows), { maxLength: 2 }),
  facets: facetsArb,
  size: fc.option(fc.integer({ min: 1, max: 8 }), { nil: undefined, freq: 4 }),
  count: fc.option(fc.constantFrom('exact' as const, 'estimated' as const, 'none' as const), { nil: undefined, freq: 2 }),
  comma: fc.boolean(),
})

const item = (ask: FacetAsk): string => (ask.by === undefined ? ask.column : `${ask.column}__${ask.by}`)
function urlOf (base: string, id: number, query: Query): string {
  const parameters = new URLSearchParams()
  for (const filter of query.filters) parameters.append(filter.op === 'eq' ? filter.column : `${filter.column}__${filter.op}`, filter.value)
  if (query.comma) parameters.append('_facet', query.facets.map(item).join(','))
  else for (const ask of query.facets) parameters.append('_facet', item(ask))
  if (query.size !== undefined) parameters.append('_facet_size', String(query.size))
  if (query.count !== undefined) parameters.append('_count', query.count)
  parameters.append('_limit', '5')
  return `${base}/datasets/${id}/rows?${parameters.toString()}`
}

// ─── The service ────────────────────────────────────────────────────────────────────────────────

const main = await buildTestApp({ after }, { FACET_TIMEOUT_MS: '60000', COUNT_TIMEOUT_MS: '60000' })
// The deadline tests: a facet waits on a lock the test holds, long past this deadline.
const tight = await buildTestApp({ after }, { FACET_TIMEOUT_MS: '1000', COUNT_TIMEOUT_MS: '1000' })
// The same database with deadlines that do not pass during a test: to see facets wait, and a client leave.
const patient = await buildTestApp({ after }, { FACET_TIMEOUT_MS: '60000', COUNT_TIMEOUT_MS: '60000' }, { sql: tight.sql, databaseUrl: tight.databaseUrl })
const bases = { main: await listen(main.app), tight: await listen(tight.app), patient: await listen(patient.app) }
const key = async (sql: typeof main.sql): Promise<string> => (await createApiKeysRepository(sql).create('facets')).key
const keys = { main: await key(main.sql), tight: await key(tight.sql) }

async function upload (app: 'main' | 'tight', body: string, name: string): Promise<number> {
  const response = await fetch(`${bases[app]}/datasets?name=${name}`, { method: 'POST', headers: { authorization: `Bearer ${keys[app]}`, 'content-type': 'text/csv' }, body })
  const answer = await json(response)
  assert.equal(response.status, 201, JSON.stringify(answer))
  return answer.dataset.id
}

describe('facets and counts against the oracle', () => {
  it('match the oracle on random data, filters and facet choices', async () => {
    const tables = fc.sample(tableArb, { seed: SEED, numRuns: 3 })
    for (const [index, rows] of tables.entries()) {
      const id = await upload('main', csvOf(rows), `facets-${index}`)
      const fields = (await json(await fetch(`${bases.main}/datasets/${id}`))).schema.fields.map((field: { name: string, type: string }) => [field.name, field.type])
      assert.deepEqual(Object.fromEntries(fields), { id: 'integer', ...TYPES }, 'the inferred schema is the intended one')
      await fc.assert(fc.asyncProperty(queryArb(rows), async (query) => {
        const url = urlOf(bases.main, id, query)
        const response = await fetch(url)
        const body = await json(response)
        assert.equal(response.status, 200, `${url}: ${JSON.stringify(body)}`)
        const selected = rows.filter((row) => query.filters.every((filter) => filter.test(row)))
        const size = query.size ?? 20
        for (const ask of query.facets) assertFacet(body.facets[ask.column], expectedFacet(selected, ask, size), `${url} facet ${item(ask)}`)
        assert.deepEqual(Object.keys(body.facets), query.facets.map((ask) => ask.column), 'facets in the order asked')
        if (query.count === 'none') assert.equal(body.total, undefined)
        else if (query.count === 'estimated' && query.filters.length > 0) {
          assert.equal(body.total_is_estimate, true)
          assert.ok(Number.isSafeInteger(body.total) && body.total >= 0, `${url}: an estimate is a count: ${body.total}`)
        } else assert.deepEqual([body.total, body.total_is_estimate], [selected.length, false], `${url}: exact total`)
        assert.deepEqual(body.rows.map((row: { id: number }) => row.id), selected.slice(0, 5).map((row) => row.id), `${url}: the page`)
        const timing = response.headers.get('server-timing') ?? ''
        const names = timing.split(', ').map((entry) => entry.split(';')[0])
        assert.deepEqual(new Set(names), new Set(['rows', ...(query.count === 'none' || (query.filters.length === 0) ? [] : ['count']), ...query.facets.map((_, at) => `facet${at + 1}`)]), timing)
      }), { seed: SEED + index, numRuns: 40 })
    }
  })

  it('estimates a filtered total from the planner, and gives the whole data set\'s row count exactly', async () => {
    const rows = fc.sample(tableArb, { seed: SEED + 7, numRuns: 1 })[0]!
    const id = await upload('main', csvOf(rows), 'estimates')
    await main.sql.unsafe(`analyze dataset_rows.ds_${id}`)
    const whole = await json(await fetch(`${bases.main}/datasets/${id}/rows?_count=estimated&_limit=1`))
    assert.deepEqual([whole.total, whole.total_is_estimate], [rows.length, false])
    const some = await json(await fetch(`${bases.main}/datasets/${id}/rows?_count=estimated&flag=true&_limit=1`))
    const truly = rows.filter((row) => row.flag === true).length
    assert.equal(some.total_is_estimate, true)
    // ANALYZE saw every row (a small table): the planner's estimate of an equality is near the truth.
    assert.ok(Math.abs(some.total - truly) <= Math.max(3, truly * 0.2), `estimate ${some.total}, truly ${truly}`)
  })
})

describe('exact totals counted once per selection and version', () => {
  it('serves the count of a selection seen before from memory, in any order of its filters, and counts again once the rows change', async () => {
    const rows = fc.sample(tableArb, { seed: SEED + 13, numRuns: 1 })[0]!
    const id = await upload('main', csvOf(rows), 'totals')
    const truly = rows.filter((row) => row.flag === true && row.n !== null && row.n >= 0).length
    const ask = async (query: string): Promise<{ total: number, cached: boolean }> => {
      const response = await fetch(`${bases.main}/datasets/${id}/rows?${query}&_limit=2`)
      const body = await json(response)
      assert.equal(response.status, 200, JSON.stringify(body))
      assert.equal(body.total_is_estimate, false)
      return { total: body.total, cached: /count;desc="cached"/.test(response.headers.get('server-timing') ?? '') }
    }
    assert.deepEqual(await ask('flag=true&n__gte=0'), { total: truly, cached: false })
    assert.deepEqual(await ask('flag=true&n__gte=0'), { total: truly, cached: true })
    assert.deepEqual(await ask('n__gte=0&flag=true&_count=exact'), { total: truly, cached: true })
    assert.deepEqual(await ask('flag=true&n__gte=1'), { total: rows.filter((row) => row.flag === true && row.n !== null && row.n >= 1).length, cached: false })
    // A change of the rows (as a write does: rows and updated_at together) is a new version.
    await main.sql.unsafe(`insert into dataset_rows.ds_${id} (_row, c1, c2, c3, c4) values (100000, 100000, 'Oslo', true, 5)`)
    await main.sql`update datasets set rows = rows + 1, updated_at = now() where id = ${id}`
    await until('the new row counted', async () => (await ask('flag=true&n__gte=0')).total === truly + 1)
  })
})

describe('hostile facet and count parameters', () => {
  const rows = fc.sample(tableArb, { seed: SEED + 11, numRuns: 1 })[0]!
  const ready = upload('main', csvOf(rows), 'hostile')
  const wide = upload('main', `${Array.from({ length: 12 }, (_, i) => `c${i}`).join(',')}\n${Array.from({ length: 12 }, (_, i) => String(i)).join(',')}\n`, 'wide')
  const cases: Array<[string, string, RegExp]> = [
    ['_facet=nope', '/_facet', /there is no column "nope"/],
    ['_facet=n__week', '/_facet', /unknown way to facet "week"/],
    ['_facet=cat__bins', '/_facet', /"cat" is a text column, faceted by value \(not bins\)/],
    ['_facet=n__day', '/_facet', /integer column/],
    ['_facet=n__bins&_facet=n__value', '/_facet', /faceted twice/],
    ['_facet=cat&_facet_size=0', '/_facet_size', /./],
    ['_facet=cat&_facet_size=101', '/_facet_size', /./],
    ['_facet=cat&_facet_size=1e309', '/_facet_size', /./],
    ['_facet=cat&_facet_size=Infinity', '/_facet_size', /./],
    ['_facet=cat&_facet_size=2.5', '/_facet_size', /./],
    ['_facet_size=5', '/_facet_size', /give _facet too/],
    ['_count=exact&_count=none', '/_count', /./],
    ['_count=maybe', '/_count', /./],
    ['_facet=', '/_facet', /./],
  ]
  for (const [query, pointer, message] of cases) {
    it(`refuses ${query} with a 400 naming ${pointer}`, async () => {
      const response = await fetch(`${bases.main}/datasets/${await ready}/rows?${query}`)
      const body = await json(response)
      assert.equal(response.status, 400, JSON.stringify(body))
      assert.equal(body.type.endsWith('validation-error'), true, JSON.stringify(body))
      assert.ok(body.errors.some((error: { pointer: string }) => error.pointer.startsWith(pointer)), JSON.stringify(body))
      assert.match(body.detail, message)
    })
  }
  it('refuses more than 10 facets, and takes 10', async () => {
    const id = await wide
    const over = await fetch(`${bases.main}/datasets/${id}/rows?_facet=${Array.from({ length: 11 }, (_, i) => `c${i}`).join(',')}`)
    const body = await json(over)
    assert.equal(over.status, 400)
    assert.match(body.detail, /at most 10 facets/)
    const ten = await json(await fetch(`${bases.main}/datasets/${id}/rows?_facet=${Array.from({ length: 10 }, (_, i) => `c${i}`).join(',')}`))
    assert.equal(Object.keys(ten.facets).length, 10)
    assert.deepEqual(ten.facets.c3, { by: 'bins', values: [{ value: 3, to: 4, count: 1 }], other: 0, nulls: 0 })
  })
})

describe('deadlines: a late facet is cancelled, the rest of the page stands', () => {
  // A long text is stored out of line (TOAST): reading it locks the TOAST table, which nothing else
  // of the page reads. The test holds that TOAST table locked, so the facet on `long` waits
  // (visibly, in pg_stat_activity) while the page and the other facets run: no timing involved.
  const admin = createSql(tight.databaseUrl, { max: 2 })
  after(async () => { await admin.end() })
  const rows = Array.from({ length: 40 }, (_, index) => ({ id: index + 1, flag: index % 3 === 0, long: `${index % 4}${'x'.repeat(3000)}` }))
  const ready = (async () => {
    const id = await upload('tight', `id,flag,long,long2\n${rows.map((row) => `${row.id},${row.flag},${row.long},${row.long}`).join('\n')}\n`, 'toasted')
    await admin.unsafe(`alter table dataset_rows.ds_${id} alter column c3 set storage external, alter column c4 set storage external`)
    await admin.unsafe(`update dataset_rows.ds_${id} set c3 = c3 || '', c4 = c4 || ''`) // rewritten out of line, uncompressed
    return id
  })()
  const toastOf = async (id: number): Promise<string> => (await admin`select reltoastrelid::regclass::text as toast from pg_class where oid = ${`dataset_rows.ds_${id}`}::regclass`)[0]!.toast as string
  const running = async (id: number): Promise<Array<{ query: string, wait_event_type: string | null }>> => [...await admin<Array<{ query: string, wait_event_type: string | null }>>`
    select query, wait_event_type from pg_stat_activity
    where datname = current_database() and pid <> pg_backend_pid() and state = 'active' and query like ${`%ds_${id}%`}`]

  /** Holds the TOAST table of data set `id` locked while `work` runs. */
  async function withToastLocked<T> (id: number, work: () => Promise<T>): Promise<T> {
    const toast = await toastOf(id)
    let release!: () => void
    const released = new Promise<void>((resolve) => { release = resolve })
    let locked!: () => void
    const isLocked = new Promise<void>((resolve) => { locked = resolve })
    const holding = admin.begin(async (tx) => {
      // LOCK refuses TOAST tables; REINDEX holds its index exclusively until the transaction ends.
      await tx.unsafe(`reindex table ${toast}`)
      locked()
      await released
    })
    await Promise.race([isLocked, holding])
    try {
      return await work()
    } finally {
      release()
      await holding
    }
  }

  it('answers the locked facet timed_out, the others and the rows right, and leaves nothing running', async () => {
    const id = await ready
    const response = await withToastLocked(id, async () => await fetch(`${bases.tight}/datasets/${id}/rows?_facet=long,flag,id&_limit=3&_select=id,flag&flag=true&_count=exact`))
    const body = await json(response)
    assert.equal(response.status, 200, JSON.stringify(body))
    assert.deepEqual(body.facets.long, { timed_out: true })
    const selected = rows.filter((row) => row.flag)
    assert.deepEqual(body.facets.flag, { by: 'value', values: [{ value: true, count: selected.length }], other: 0, nulls: 0 })
    assert.equal(body.facets.id.by, 'bins')
    assert.equal(body.facets.id.values.reduce((sum: number, bin: { count: number }) => sum + bin.count, 0), selected.length)
    assert.deepEqual(body.rows, selected.slice(0, 3).map((row) => ({ id: row.id, flag: true })))
    assert.deepEqual([body.total, body.total_is_estimate], [selected.length, false])
    assert.match(response.headers.get('server-timing') ?? '', /facet1;desc="long";dur=/)
    assert.deepEqual(await running(id), [], 'no query of the request runs on after it')
  })

  it('runs the facets at once: every facet query of a request waits on the lock together', async () => {
    const id = await ready
    await withToastLocked(id, async () => {
      // Both facets of one request, and those of two more, wait on the lock at the same time.
      const base = bases.patient
      const pending = fetch(`${base}/datasets/${id}/rows?_facet=long,long2&_limit=1&_count=none`).then(json)
      await until('both facets of one request waiting on the lock at the same time', async () => (await running(id)).filter((query) => query.wait_event_type === 'Lock').length >= 2)
      const pending2 = fetch(`${base}/datasets/${id}/rows?_facet=long&flag=true&_limit=1&_count=none`).then(json)
      const pending3 = fetch(`${base}/datasets/${id}/rows?_facet=long,flag&flag=false&_limit=1&_count=none`).then(json)
      await until('the facets of three requests waiting on the lock at the same time', async () => (await running(id)).filter((query) => query.wait_event_type === 'Lock').length >= 4)
      return { pending, pending2, pending3 }
    }).then(async ({ pending, pending2, pending3 }) => {
      const answers = await Promise.all([pending, pending2, pending3])
      const sum = (facet: { values: Array<{ count: number }> }): number => facet.values.reduce((total, entry) => total + entry.count, 0)
      assert.deepEqual(answers.map((answer) => sum(answer.facets.long)), [rows.length, rows.filter((row) => row.flag).length, rows.filter((row) => !row.flag).length])
      assert.deepEqual(answers[0].facets.long.values.map((entry: { value: string }) => entry.value[0]), ['0', '1', '2', '3'], 'ten rows each, ties by value')
      assert.deepEqual(answers[0].facets.long2.values.map((entry: { count: number }) => entry.count), [10, 10, 10, 10])
      assert.equal(answers[2].facets.flag.values[0].count, rows.filter((row) => !row.flag).length)
    })
    assert.deepEqual(await running(id), [])
  })

  it('answers a facet computed before from memory, even while its scan could not run', async () => {
    const id = await ready
    const url = `${bases.tight}/datasets/${id}/rows?_facet=long&_limit=2&_select=id&flag=false&id__lt=30&_count=none`
    const before = await json(await fetch(url))
    const selected = rows.filter((row) => !row.flag && row.id < 30)
    assert.equal(before.facets.long.values.reduce((sum: number, entry: { count: number }) => sum + entry.count, 0), selected.length)
    const during = await withToastLocked(id, async () => await json(await fetch(url)))
    assert.deepEqual(during.facets, before.facets)
    assert.deepEqual(during.rows, selected.slice(0, 2).map((row) => ({ id: row.id })))
  })

  it('falls back to the estimate when the exact count misses COUNT_TIMEOUT_MS, and goes to it at once for the pages after', async () => {
    // The first rows are short (stored inline), the rest out of line: a page of the first rows
    // reads no TOAST, while counting the filter reads every value, so only the count waits.
    const count = 2000
    const id = await upload('tight', `id,text\n${Array.from({ length: count }, (_, index) => `${index + 1},x${index < 10 ? '' : 'y'.repeat(3000)}`).join('\n')}\n`, 'count-fallback')
    await admin.unsafe(`alter table dataset_rows.ds_${id} alter column c2 set storage external`)
    await admin.unsafe(`update dataset_rows.ds_${id} set c2 = c2 || ''`)
    await admin.unsafe(`analyze dataset_rows.ds_${id}`)
    const url = `${bases.tight}/datasets/${id}/rows?text__startswith=x&_select=id&_limit=3`
    const late = await withToastLocked(id, async () => {
      const response = await fetch(url)
      return { status: response.status, body: await json(response), timing: response.headers.get('server-timing') ?? '' }
    })
    assert.equal(late.status, 200, JSON.stringify(late.body))
    assert.deepEqual(late.body.rows, [{ id: 1 }, { id: 2 }, { id: 3 }])
    assert.equal(late.body.total_is_estimate, true, JSON.stringify(late.body))
    assert.ok(Number.isInteger(late.body.total) && late.body.total > 0, JSON.stringify(late.body))
    assert.match(late.timing, /count;dur=/)
    await until('the cancelled count gone from the server', async () => (await running(id)).length === 0)
    // The next page of the same view does not wait for a count that was late a moment ago…
    const next = await fetch(`${url}&_cursor=${encodeURIComponent(late.body.next_cursor)}`)
    const nextBody = await json(next)
    assert.deepEqual([nextBody.rows, nextBody.total_is_estimate], [[{ id: 4 }, { id: 5 }, { id: 6 }], true], JSON.stringify(nextBody))
    assert.match(next.headers.get('server-timing') ?? '', /count;desc="late-recently";dur=/)
    // …and `_count=exact` still counts.
    const exact = await json(await fetch(`${url}&_count=exact`))
    assert.deepEqual([exact.total, exact.total_is_estimate], [count, false])
  })

  it('answers ten identical faceted requests at once, each whole and the same, within the side-scan slots', async () => {
    const id = await ready
    const url = `${bases.patient}/datasets/${id}/rows?_facet=flag,id,long2&_limit=4&_select=id&flag=false&_count=exact`
    const answers = await Promise.all(Array.from({ length: 10 }, async () => {
      const response = await fetch(url)
      return { status: response.status, body: await json(response) }
    }))
    const selected = rows.filter((row) => !row.flag)
    for (const answer of answers) {
      assert.equal(answer.status, 200, JSON.stringify(answer.body))
      assert.deepEqual(answer.body.rows, selected.slice(0, 4).map((row) => ({ id: row.id })))
      assert.deepEqual([answer.body.total, answer.body.total_is_estimate], [selected.length, false])
      assert.deepEqual(answer.body.facets.flag, { by: 'value', values: [{ value: false, count: selected.length }], other: 0, nulls: 0 })
      assert.deepEqual(answer.body.facets, answers[0]!.body.facets)
    }
    assert.deepEqual(await running(id), [])
  })

  it('cancels every part in PostgreSQL when the client goes away', async () => {
    const id = await ready
    await withToastLocked(id, async () => {
      // Filters no other test uses: a facet computed before would be answered from memory.
      const leaving = getAndDisconnect(`${bases.patient}/datasets/${id}/rows?_facet=long&_facet=flag&_limit=1&flag=true&id__gt=1`, 3000)
      await until('the facet waiting on the lock', async () => (await running(id)).some((query) => query.wait_event_type === 'Lock'))
      await leaving
      await until('no query of the request left', async () => (await running(id)).length === 0)
    })
  })
})
