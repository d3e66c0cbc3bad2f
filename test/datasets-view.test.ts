// The view of a data set (view.ts, rows.ts, export.ts): the naming rule of query parameters (the
// API's own as `_name`, bare names where no column has them, every other parameter a filter),
// `_select`, and GET /datasets/{id}/export streaming exactly the rows of the view GET …/rows pages
// through. The export is checked differentially: for random data (every type, nulls everywhere,
// text with CSV's and JSON's special characters) and random filters, sorts and column choices, the
// export in CSV and NDJSON holds the rows of walking every page, in their order, and both hold the
// rows of the oracle of helpers/rows-oracle.ts; the CSV parses back to the same values and imports
// back as a data set of the same rows. Then an export of several chunks (keyset continuation across
// chunk boundaries, ties and missing values of the sort key), and hostile values of every API
// parameter: always a 4xx problem naming the parameter.
//
// Deterministic: the seed is fixed (FC_SEED overrides it), as in datasets-rows-differential.test.ts.
import assert from 'node:assert/strict'
import { after, describe, it } from 'node:test'
import fc from 'fast-check'
import Papa from 'papaparse'
import { createApiKeysRepository } from '../src/auth/api-keys.ts'
import type { Sql } from '../src/db/pool.ts'
import { buildTestApp, type TestApp } from './helpers/app.ts'
import {
  applies, asText, CODECS, expectRows, OPERATORS, parameterOf, queryString, respell, valueArb,
  type Column, type ColumnType, type Filter, type Operator, type OracleRow,
} from './helpers/rows-oracle.ts'

const SEED = Number(process.env.FC_SEED ?? 20_260_519)
const RUNS = Number(process.env.FC_RUNS ?? 1)

// ─── The service ────────────────────────────────────────────────────────────────────────────────

const env = { LOG_LEVEL: 'silent', OVERLOAD_EVENT_LOOP_DELAY_MS: '0', RATE_LIMIT_WRITES: '0' }
const main = await buildTestApp({ after }, env)
const budgeted = await buildTestApp({ after }, { ...env, DATASET_PAGE_MAX_BYTES: '1024' })

/**
 * The SQL texts given to sql.unsafe (and to that of a connection it reserves: each COPY runs on
 * one), to tell an export's COPY ranges from its walk's chunks.
 */
const statements: string[] = []
function recordUnsafe (sql: Pick<Sql, 'unsafe'> & Partial<Pick<Sql, 'reserve'>>): void {
  const unsafe = sql.unsafe.bind(sql) as (...parameters: unknown[]) => unknown
  sql.unsafe = ((query: string, ...rest: unknown[]) => {
    statements.push(query)
    return unsafe(query, ...rest)
  }) as typeof sql.unsafe
  if (sql.reserve === undefined) return
  const reserve = sql.reserve.bind(sql)
  sql.reserve = (async () => {
    const connection = await reserve()
    recordUnsafe(connection)
    return connection
  }) as typeof sql.reserve
}
recordUnsafe(main.sql)
const copies = (): number => statements.filter((text) => text.startsWith('copy (')).length
/** Each chunk of a walk builds its line once (a CSV line quoted in SQL, or an NDJSON line). */
const walkChunks = (): number => statements.filter((text) => text.startsWith('case when (') || text.startsWith(`'{' ||`)).length

const keys = new Map<TestApp, string>()
async function keyOf (built: TestApp): Promise<string> {
  let key = keys.get(built)
  if (key === undefined) {
    key = (await createApiKeysRepository(built.sql).create('view')).key
    keys.set(built, key)
  }
  return key
}

interface Answer { status: number, type: string, body: string, json: () => any }

async function get (url: string, built: TestApp = main): Promise<Answer> {
  const response = await built.app.inject({ url })
  return { status: response.statusCode, type: String(response.headers['content-type'] ?? ''), body: response.body, json: () => response.json() }
}

async function upload (body: string, contentType = 'text/csv', built: TestApp = main): Promise<{ id: number, names: string[], types: string[] }> {
  const response = await built.app.inject({ method: 'POST', url: '/datasets?name=view', headers: { authorization: `Bearer ${await keyOf(built)}`, 'content-type': contentType }, payload: body })
  assert.equal(response.statusCode, 201, response.body.slice(0, 500))
  const answer = response.json()
  return { id: answer.dataset.id, names: answer.schema.fields.map((field: { name: string }) => field.name), types: answer.schema.fields.map((field: { type: string }) => field.type) }
}

/** Every page of /rows for a query string (without `_cursor`). */
async function walk (id: number, query: string, built: TestApp = main): Promise<{ rows: Array<Record<string, unknown>>, pages: number[] }> {
  const rows: Array<Record<string, unknown>> = []
  const pages: number[] = []
  for (let cursor: string | null = null; ;) {
    const answer = await get(`/datasets/${id}/rows?${[query, cursor === null ? '' : `_cursor=${cursor}`].filter((part) => part !== '').join('&')}`, built)
    assert.equal(answer.status, 200, `rows?${query}: ${answer.body.slice(0, 500)}`)
    const page = answer.json()
    rows.push(...page.rows)
    pages.push(page.rows.length)
    cursor = page.next_cursor
    if (cursor === null) return { rows, pages }
    assert.ok(pages.length < 100_000, 'the walk ends')
  }
}

/** A 400 problem naming the parameter. */
function assertRefused (answer: Answer, parameter: string, what: string): void {
  assert.ok(answer.status >= 400 && answer.status < 500, `${what}: ${answer.status} ${answer.body.slice(0, 300)}`)
  assert.match(answer.type, /^application\/problem\+json/, `${what}: ${answer.type}`)
  const problem = answer.json()
  assert.equal(problem.status, answer.status)
  // A list parameter's item may be named: /_select/0.
  const named = problem.errors?.some((error: { pointer?: string }) => error.pointer === `/${parameter}` || error.pointer?.startsWith(`/${parameter}/`) === true) === true
  assert.ok(named, `${what}: the problem names /${parameter}: ${answer.body.slice(0, 300)}`)
}

const ndjsonRows = (text: string): unknown[] => text.split('\n').filter((line) => line !== '').map((line) => JSON.parse(line))
const csvRecords = (text: string): string[][] => {
  const parsed = Papa.parse<string[]>(text, { header: false, skipEmptyLines: false, delimiter: ',', newline: '\n' })
  assert.deepEqual(parsed.errors, [], 'the CSV parses')
  const records = parsed.data
  // The file ends with a line break: papaparse reads an empty last record after it.
  if (records.length > 0 && records.at(-1)!.length === 1 && records.at(-1)![0] === '') records.pop()
  return records
}
/** Key order matters: a view's columns come in the order `_select` gave them. */
const sameRows = (got: unknown[], wanted: unknown[], what: string): void => {
  assert.equal(got.length, wanted.length, `${what}: ${got.length} rows, expected ${wanted.length}`)
  got.forEach((row, index) => {
    assert.deepEqual(Object.keys(row as object), Object.keys(wanted[index] as object), `${what}: the columns of row ${index}`)
    assert.deepEqual({ ...row as object }, { ...wanted[index] as object }, `${what}: row ${index}`)
  })
}

// ─── The naming rule ────────────────────────────────────────────────────────────────────────────

describe('the naming rule', async () => {
  // Names the API's parameters have, a filter's form, JavaScript's own, a comma, CJK, and names
  // that look empty: an empty and a blank header become column_N; a zero-width space stays.
  const NAMES = ['limit', 'sort', 'cursor', 'select', 'format', '_id', '_limit', 'a__gt', '__proto__', 'constructor', 'x,y', '名前', '', ' ', '\u200b', 'score', 't']
  const header = NAMES.map((name) => `"${name}"`).join(',')
  const line = (k: number): string => [k, `s${k % 2}`, `c${k}`, `d${k}`, `f${k}`, k % 3, k * 10, k + 100, k % 2, `k${k}`, k % 4, `名${k}`, k, k * 2, k === 3 ? '' : `z${k}`, k, k === 2 ? '' : `"t,${k}"`].join(',')
  const csv = [header, ...Array.from({ length: 6 }, (_, index) => line(index + 1))].join('\n') + '\n'
  const { id, names, types } = await upload(csv)
  const columns: Column[] = names.map((name, index) => ({ name, type: types[index] as ColumnType }))
  const table = csvRecords(csv).slice(1).map((record, index): OracleRow => {
    const values: Record<string, unknown> = Object.create(null)
    const output: Record<string, unknown> = Object.create(null)
    columns.forEach((column, position) => {
      const text = record[position]!
      values[column.name] = text === '' ? null : CODECS[column.type].parse(text)
      output[column.name] = text === '' ? null : CODECS[column.type].output(values[column.name])
    })
    return { number: index + 1, values, output }
  })
  const { id: plain } = await upload('score,t\n1,a\n5,b\n7,c\n')

  it('keeps every name the importer allows, empty-looking ones as column_N', () => {
    assert.deepEqual(names, [...NAMES.slice(0, 12), 'column_13', 'column_14', '\u200b', 'score', 't'])
  })

  /** The rows a filter keeps, by the oracle; then by the API, given the parameter as `name`. */
  const cases: Array<{ parameter: string, value: string, filter: Filter }> = [
    { parameter: 'limit', value: '2', filter: { column: 'limit', op: 'eq', value: '2', bare: true } },
    { parameter: 'sort', value: 's1', filter: { column: 'sort', op: 'eq', value: 's1', bare: true } },
    { parameter: 'cursor', value: 'c3', filter: { column: 'cursor', op: 'eq', value: 'c3', bare: true } },
    { parameter: 'select', value: 'd4', filter: { column: 'select', op: 'eq', value: 'd4', bare: true } },
    { parameter: 'format', value: 'f5', filter: { column: 'format', op: 'eq', value: 'f5', bare: true } },
    { parameter: '_id__eq', value: '1', filter: { column: '_id', op: 'eq', value: '1', bare: false } },
    { parameter: '_limit__gte', value: '40', filter: { column: '_limit', op: 'gte', value: '40', bare: false } },
    { parameter: 'a__gt', value: '103', filter: { column: 'a__gt', op: 'eq', value: '103', bare: true } },
    { parameter: 'a__gt__gt', value: '103', filter: { column: 'a__gt', op: 'gt', value: '103', bare: false } },
    { parameter: '__proto____eq', value: '1', filter: { column: '__proto__', op: 'eq', value: '1', bare: false } },
    { parameter: 'constructor', value: 'k2', filter: { column: 'constructor', op: 'eq', value: 'k2', bare: true } },
    { parameter: 'x,y', value: '3', filter: { column: 'x,y', op: 'eq', value: '3', bare: true } },
    { parameter: 'x,y__in', value: '1,2', filter: { column: 'x,y', op: 'in', value: '1,2', bare: false } },
    { parameter: '名前__startswith', value: '名1', filter: { column: '名前', op: 'startswith', value: '名1', bare: false } },
    { parameter: 'column_13', value: '3', filter: { column: 'column_13', op: 'eq', value: '3', bare: true } },
    { parameter: '\u200b__isnull', value: 'true', filter: { column: '\u200b', op: 'isnull', value: 'true', bare: false } },
    { parameter: 't__contains', value: 'T,', filter: { column: 't', op: 'contains', value: 'T,', bare: false } },
  ]
  for (const { parameter, value, filter } of cases) {
    it(`${parameter}=${value} filters "${filter.column}" (${filter.op}), on rows and on export`, async () => {
      const expected = expectRows(columns, table, { filters: [filter] })
      assert.equal(expected.status, 200)
      const wanted = expected.rows.map((row) => row.output)
      assert.ok(wanted.length > 0 && wanted.length < table.length, `the case tells a filter from none (${wanted.length} rows)`)
      const query = queryString([[parameter, value]])
      sameRows((await walk(id, query)).rows, wanted, `rows?${query}`)
      const exported = await get(`/datasets/${id}/export?${query}&_format=ndjson`)
      assert.equal(exported.status, 200, exported.body)
      sameRows(ndjsonRows(exported.body), wanted, `export?${query}`)
    })
  }

  it('takes the API\'s own parameters as _name where bare names are filters', async () => {
    const page = (await get(`/datasets/${id}/rows?_limit=2&_sort=-score&_select=score&_select=x%2Cy&limit__gte=2`)).json()
    assert.deepEqual(page.rows.map((row: any) => ({ ...row })), [{ score: 6, 'x,y': 2 }, { score: 5, 'x,y': 1 }])
    const rest = (await get(`/datasets/${id}/rows?_limit=2&_sort=-score&_select=score&_select=x%2Cy&limit__gte=2&_cursor=${page.next_cursor}`)).json()
    assert.deepEqual(rest.rows.map((row: any) => row.score), [4, 3])
    // `limit` here is a filter of the column, so `limit` and `_limit` together are no conflict.
    assert.deepEqual((await get(`/datasets/${id}/rows?limit=2&_limit=1`)).json().rows.map((row: any) => row.limit), [2])
    const exported = await get(`/datasets/${id}/export?_format=ndjson&_sort=-limit&_select=limit&format__ne=f1&select__ne=d2`)
    assert.deepEqual(ndjsonRows(exported.body), [{ limit: 6 }, { limit: 5 }, { limit: 4 }, { limit: 3 }])
  })

  it('takes the bare names where no column has them', async () => {
    const page = (await get(`/datasets/${plain}/rows?limit=1&sort=-score&select=t`)).json()
    assert.deepEqual(page.rows.map((row: any) => ({ ...row })), [{ t: 'c' }])
    assert.deepEqual((await get(`/datasets/${plain}/rows?limit=1&sort=-score&select=t&cursor=${page.next_cursor}`)).json().rows, [{ t: 'b' }])
    assert.equal((await get(`/datasets/${plain}/export?format=ndjson&sort=-score&select=score`)).body, '{"score":7}\n{"score":5}\n{"score":1}\n')
  })

  it('refuses an unknown _name with a 400 naming the parameters the route takes', async () => {
    for (const [route, accepted] of [['rows', ['_limit', '_sort', '_cursor', '_select', '_q']], ['export', ['_format', '_sort', '_select', '_q']]] as const) {
      for (const parameter of ['_unknown', '_id', '_', route === 'rows' ? '_format' : '_limit']) {
        const answer = await get(`/datasets/${id}/${route}?${parameter}=1`)
        assertRefused(answer, parameter, `${route}?${parameter}=1`)
        const takes = /it takes ([^;)]*)/.exec(answer.json().detail)?.[1]?.split(', ') ?? []
        for (const name of accepted) assert.ok(takes.includes(name), `${route}: ${answer.json().detail} lists ${name}`)
      }
    }
  })

  it('refuses an API parameter given twice, or as both name and _name', async () => {
    const refused: Array<[string, string, string]> = [
      ['rows', '_limit=1&_limit=2', '_limit'], ['rows', 'limit=1&limit=2', 'limit'], ['rows', '_sort=t&_sort=score', '_sort'], ['rows', 'sort=t&sort=t', 'sort'],
      ['rows', 'cursor=a&cursor=b', 'cursor'], ['export', '_format=csv&_format=csv', '_format'], ['export', 'format=csv&format=ndjson', 'format'],
      ['export', '_sort=t&_sort=t', '_sort'],
    ]
    for (const [route, query, parameter] of refused) assertRefused(await get(`/datasets/${plain}/${route}?${query}`), parameter, `${route}?${query}`)
    // Given as both: the message names the one given second.
    for (const [route, query, parameter] of [['rows', '_limit=1&limit=1', 'limit'], ['rows', 'sort=t&_sort=t', '_sort'], ['rows', '_select=t&select=t', 'select'], ['export', 'format=csv&_format=csv', '_format'], ['export', '_select=t&select=t', 'select']] as const) {
      const answer = await get(`/datasets/${plain}/${route}?${query}`)
      assertRefused(answer, parameter, `${route}?${query}`)
      assert.match(answer.json().detail, /given as both/)
    }
  })

  it('holds a filter given twice both times', async () => {
    assert.deepEqual((await walk(plain, 'score__gt=1&score__gt=5')).rows, [{ score: 7, t: 'c' }])
    assert.deepEqual((await walk(plain, 'score__gt=5&score__lt=7')).rows, [])
    assert.deepEqual((await walk(plain, 't=a&t=b')).rows, [])
    assert.equal((await get(`/datasets/${plain}/export?score__gt=1&score__gt=5`)).body, 'score,t\n7,c\n')
  })

  it('sorts by a column whose name starts with "-", and refuses "-" alone', async () => {
    const { id: dashed } = await upload('-k,v\n2,a\n1,b\n3,c\n')
    assert.deepEqual((await walk(dashed, '_sort=-k')).rows.map((row) => row.v), ['b', 'a', 'c'])
    assert.deepEqual((await walk(dashed, '_sort=--k')).rows.map((row) => row.v), ['c', 'a', 'b'])
    assert.equal((await get(`/datasets/${dashed}/export?_sort=--k&_select=v`)).body, 'v\nc\na\nb\n')
    for (const route of ['rows', 'export']) assertRefused(await get(`/datasets/${dashed}/${route}?_sort=-`), '_sort', `${route}?_sort=-`)
    assertRefused(await get(`/datasets/${dashed}/rows?_sort=-v2`), '_sort', 'rows?_sort=-v2')
  })
})

// ─── _select ────────────────────────────────────────────────────────────────────────────────────

describe('_select', async () => {
  const { id } = await upload('a,b,"x,y",x,c\n1,p,10,q,\n2,r,20,s,z\n3,,30,u,w\n')
  const select = async (route: 'rows' | 'export', query: string): Promise<unknown[]> => {
    const answer = await get(`/datasets/${id}/${route}?${query}${route === 'export' ? '&_format=ndjson' : ''}`)
    assert.equal(answer.status, 200, `${route}?${query}: ${answer.body}`)
    return route === 'rows' ? answer.json().rows : ndjsonRows(answer.body)
  }
  for (const route of ['rows', 'export'] as const) {
    it(`${route}: keeps the order given, each column once, a comma name whole, repeated or comma-separated`, async () => {
      const wanted = [{ c: null, a: 1 }, { c: 'z', a: 2 }, { c: 'w', a: 3 }]
      sameRows(await select(route, '_select=c,a'), wanted, 'c,a')
      sameRows(await select(route, '_select=c&_select=a'), wanted, 'c then a')
      sameRows(await select(route, '_select=c,a,c&_select=a'), wanted, 'duplicates')
      sameRows(await select(route, 'select=c,a'), wanted, 'bare select')
      sameRows(await select(route, '_select=x%2Cy'), [{ 'x,y': 10 }, { 'x,y': 20 }, { 'x,y': 30 }], 'the comma name')
      sameRows(await select(route, '_select=x%2Cy&_select=b,x'), [{ 'x,y': 10, b: 'p', x: 'q' }, { 'x,y': 20, b: 'r', x: 's' }, { 'x,y': 30, b: null, x: 'u' }], 'the comma name and others')
      sameRows(await select(route, '_select=b&_sort=-a'), [{ b: null }, { b: 'r' }, { b: 'p' }], 'sorted by a column not selected')
      sameRows(await select(route, '_select=a&b__isnull=false&_sort=-c'), [{ a: 2 }, { a: 1 }], 'filtered and sorted by columns not selected')
    })
    it(`${route}: refuses an unknown column, naming _select`, async () => {
      for (const query of ['_select=nope', '_select=a,nope', '_select=a&_select=nope', '_select=x%2Cy%2Ca', '_select=a,', '_select=', 'select=']) {
        assertRefused(await get(`/datasets/${id}/${route}?${query}`), query.split('=')[0]!, `${route}?${query}`)
      }
    })
  }

  it('counts the page byte budget over the selected columns only', async () => {
    // 1024 bytes a page: a row's wide value takes 400 of them, its narrow one 1.
    const rows = Array.from({ length: 120 }, (_, index) => `${index},${'w'.repeat(400)},${String.fromCharCode(97 + (index % 26))}`)
    const { id: wide } = await upload(`k,wide,narrow\n${rows.join('\n')}\n`, 'text/csv', budgeted)
    const all = await walk(wide, '_limit=100', budgeted)
    assert.ok(all.pages.every((count) => count <= 2), `every page of the wide rows stops at the budget: ${all.pages.join(',')}`)
    const narrow = await walk(wide, '_limit=100&_select=narrow,k', budgeted)
    // k is a number (24 bytes by the page's reckoning), narrow one byte: 40 rows a page.
    assert.deepEqual(narrow.pages, [40, 40, 40])
    assert.deepEqual(narrow.rows.map((row) => row.k), Array.from({ length: 120 }, (_, index) => index))
    const text = await walk(wide, '_limit=100&_select=narrow&_sort=-k', budgeted)
    assert.deepEqual(text.pages, [100, 20])
    assert.deepEqual(text.rows.map((row) => row.narrow), Array.from({ length: 120 }, (_, index) => String.fromCharCode(97 + ((119 - index) % 26))))
  })
})

// ─── The export of a view, against the pages and the oracle ─────────────────────────────────────

const VIEW_COLUMNS: readonly Column[] = [
  { name: 'id', type: 'integer' },
  { name: 'n', type: 'integer' },
  { name: 'x', type: 'numeric' },
  { name: 'flag', type: 'boolean' },
  { name: 'day', type: 'date' },
  { name: 'at', type: 'timestamp' },
  { name: 't', type: 'text' },
  { name: 'x,y', type: 'text' },
]

// Values CSV and the COPY and SQL writers of it have to get right (quotes, separators, line
// breaks, spaces, COPY's own markers), and numbers and instants at the edges of their text.
const EDGES: Partial<Record<ColumnType, string[]>> = {
  numeric: ['1e-30', '-1.5E-30', '1e20', '0.000001', '-0', '123456789012.123456', '0.10'],
  timestamp: ['2026-01-02T10:00:00.123456Z', '2026-01-02T10:00:00.000001+05:30', '1999-12-31T23:59:59.999999-01:00', '2026-01-02T00:00:00Z'],
  text: [' lead', 'trail ', ' both ', ',', '"', '""', 'a"b,c\nd', 'cr\rx', 'crlf\r\n', '\\.', '\\N', 'NULL', 'null', ' ', '\t', '名前', '😀', '\u2028', 'é,"\n', '=1+1'],
}

/** A cell: missing (an empty field, or "" quoted), or a value in one of its spellings. */
const cellArb = (type: ColumnType): fc.Arbitrary<string | null> => {
  const value = type === 'text' ? valueArb(type, []).map(asText) : valueArb(type, [])
  const edges = EDGES[type]
  return fc.oneof(
    { weight: 3, arbitrary: fc.constantFrom(null, '') },
    { weight: 10, arbitrary: value },
    ...(edges === undefined ? [] : [{ weight: 4, arbitrary: fc.constantFrom(...edges).map((edge) => (type === 'text' ? asText(edge) : edge)) }]),
  )
}

interface ViewTable { rows: OracleRow[], csv: string }

const viewTableArb: fc.Arbitrary<ViewTable> = fc.integer({ min: 40, max: 120 }).chain((count) => fc.record({
  cells: fc.array(fc.tuple(...VIEW_COLUMNS.slice(1).map((column) => cellArb(column.type))), { minLength: count, maxLength: count }),
  quote: fc.array(fc.boolean(), { minLength: count, maxLength: count }),
})).map(({ cells, quote }) => {
  // The schema unambiguous: every column has a value in the first row, x a fraction, at a time of day.
  cells[0] = ['7', '0.5', 'true', '2026-01-02', '2026-01-02T10:00:00.5Z', 'Oslo', 'a,b']
  const rows: OracleRow[] = []
  const lines = [VIEW_COLUMNS.map((column) => csvField(column.name, false)).join(',')]
  cells.forEach((texts, index) => {
    const all = [String(index * 3 - 40), ...texts]
    const values: Record<string, unknown> = {}
    const output: Record<string, unknown> = {}
    VIEW_COLUMNS.forEach((column, position) => {
      const text = all[position] ?? null
      values[column.name] = text === null || text === '' ? null : CODECS[column.type].parse(text)
      assert.notEqual(values[column.name], undefined, `generator: ${JSON.stringify(text)} is no ${column.type}`)
      output[column.name] = values[column.name] === null ? null : CODECS[column.type].output(values[column.name])
    })
    rows.push({ number: index + 1, values, output })
    lines.push(all.map((text) => csvField(text, quote[index]!)).join(','))
  })
  return { rows, csv: lines.join('\n') + '\n' }
})

function csvField (text: string | null, quote: boolean): string {
  if (text === null) return ''
  return quote || text === '' || /[",\r\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text
}

interface View { filters: Filter[], sort?: { column: string, descending: boolean }, select?: string[][], limit: number, format: 'csv' | 'ndjson' }

/** A character in upper case where that is one character (ß stays ß: SS would not find it). */
const upper = (character: string): string => (Array.from(character.toUpperCase()).length === 1 ? character.toUpperCase() : character)

function filterArb (table: ViewTable): fc.Arbitrary<Filter> {
  return fc.constantFrom(...VIEW_COLUMNS).chain((column) => {
    const present = table.rows.map((row) => row.values[column.name]).filter((value) => value !== null)
    const ops = OPERATORS.filter((op) => applies(column.type, op))
    return fc.oneof({ weight: 6, arbitrary: fc.constantFrom(...ops) }, { weight: 1, arbitrary: fc.constantFrom(...OPERATORS) }).chain((op: Operator) => {
      const existing = fc.constantFrom(...present).chain((value) => respell(column.type, value))
      const value = op === 'isnull'
        ? fc.constantFrom('true', 'false')
        : op === 'in'
          ? fc.array(existing.map((text) => text.replaceAll(',', '')), { minLength: 1, maxLength: 3 }).map((texts) => texts.join(','))
          : (op === 'contains' || op === 'startswith') && column.type === 'text'
              ? fc.tuple(fc.constantFrom(...present as string[]), fc.nat(20), fc.integer({ min: 1, max: 3 })).map(([text, from, length]) => Array.from(text).slice(op === 'startswith' ? 0 : from % Array.from(text).length).slice(0, length).map(upper).join(''))
              : existing
      return fc.record({ column: fc.constant(column.name), op: fc.constant(op), value, bare: fc.constant(op === 'eq' && column.name !== 'id') })
    })
  })
}

/** Columns to select: some of them, shuffled, some twice, as repeated values of comma-joined names (the comma name alone). */
const selectArb: fc.Arbitrary<string[][]> = fc.shuffledSubarray(VIEW_COLUMNS.map((column) => column.name), { minLength: 1 })
  .chain((names) => fc.tuple(fc.constant(names), fc.array(fc.constantFrom(...names), { maxLength: 2 }), fc.nat(3)))
  .map(([names, again, groups]) => {
    const listed = [...names, ...again]
    const values: string[][] = []
    for (const [index, name] of listed.entries()) {
      if (name === 'x,y') values.push([name])
      else if (values.length === 0 || values.at(-1)![0] === 'x,y' || index % (groups + 1) === 0) values.push([name])
      else values.at(-1)!.push(name)
    }
    return values
  })

const viewArb = (table: ViewTable): fc.Arbitrary<View> => fc.record({
  filters: fc.array(filterArb(table), { maxLength: 3 }),
  sort: fc.option(fc.record({ column: fc.constantFrom(...VIEW_COLUMNS.map((column) => column.name)), descending: fc.boolean() }), { nil: undefined, freq: 4 }),
  select: fc.option(selectArb, { nil: undefined, freq: 3 }),
  limit: fc.oneof(fc.integer({ min: 1, max: 30 }), fc.constant(1000)),
  format: fc.constantFrom('csv' as const, 'ndjson' as const),
})

function viewParameters (view: View): Array<[string, string]> {
  const parameters = view.filters.map((filter): [string, string] => [parameterOf(filter), filter.value])
  if (view.sort !== undefined) parameters.push(['_sort', `${view.sort.descending ? '-' : ''}${view.sort.column}`])
  for (const names of view.select ?? []) parameters.push(['_select', names.join(',')])
  return parameters
}

const selectedNames = (view: View): string[] => (view.select === undefined ? VIEW_COLUMNS.map((column) => column.name) : [...new Set(view.select.flat())])

/** A CSV field as exported: the value it stands for by the oracle's codec (empty: missing). */
function assertField (field: string, column: Column, row: OracleRow, what: string): void {
  const value = row.values[column.name]
  if (value === null) {
    assert.equal(field, '', `${what}: a missing value is an empty field`)
    return
  }
  const parsed = CODECS[column.type].parse(field)
  assert.ok(parsed !== undefined && CODECS[column.type].compare(parsed, value) === 0, `${what}: ${JSON.stringify(field)} is not the ${column.type} ${JSON.stringify(row.output[column.name])}`)
  if (column.type !== 'integer' && column.type !== 'numeric') assert.equal(field, String(row.output[column.name]), `${what}: as the rows route writes it`)
}

describe('GET /datasets/{id}/export of a view, against the pages and the oracle', () => {
  const tally = { runs: 0, refused: 0, copied: 0, walked: 0, rows: 0, imported: 0 }

  it(`holds exactly the rows of every page, in order, as CSV and NDJSON (seed ${SEED}, ${20 * RUNS} data sets)`, async () => {
    await fc.assert(fc.asyncProperty(viewTableArb.chain((table) => fc.tuple(fc.constant(table), fc.array(viewArb(table), { minLength: 1, maxLength: 3 }))), async ([table, views]) => {
      const { id, names, types } = await upload(table.csv)
      assert.deepEqual(names, VIEW_COLUMNS.map((column) => column.name))
      assert.deepEqual(types, VIEW_COLUMNS.map((column) => column.type))
      // The whole set and its row order (COPY), then random views.
      for (const view of [{ filters: [], limit: 1000, format: 'csv' } satisfies View, ...views]) {
        tally.runs++
        const parameters = viewParameters(view)
        const query = queryString(parameters)
        const what = `data set ${id}, view ?${query}&_format=${view.format}`
        const expected = expectRows(VIEW_COLUMNS, table.rows, { filters: view.filters, sort: view.sort })
        const before = { copies: copies(), chunks: walkChunks() }
        const exported = await get(`/datasets/${id}/export?${query === '' ? '' : `${query}&`}_format=${view.format}`)
        if (expected.status === 400) {
          tally.refused++
          assert.equal(exported.status, 400, `${what}: expected 400 for ${[...expected.invalid].join(', ')}: ${exported.body.slice(0, 300)}`)
          assert.ok([...expected.invalid].some((name) => exported.json().errors?.[0]?.pointer === `/${name}`), `${what}: ${exported.body.slice(0, 300)}`)
          assert.equal((await get(`/datasets/${id}/rows?${query}`)).status, 400)
          continue
        }
        assert.equal(exported.status, 200, `${what}: ${exported.body.slice(0, 500)}`)
        const rowOrder = view.filters.length === 0 && view.sort === undefined
        assert.equal(copies() > before.copies, rowOrder, `${what}: COPY ranges exactly for the row order of all rows`)
        assert.equal(walkChunks() > before.chunks, !rowOrder, `${what}: the walk for any other view`)
        if (rowOrder) tally.copied++
        else tally.walked++
        const selected = selectedNames(view).map((name) => VIEW_COLUMNS.find((column) => column.name === name)!)
        const wanted = expected.rows.map((row) => Object.fromEntries(selected.map((column) => [column.name, row.output[column.name]])))
        tally.rows += wanted.length

        const pages = await walk(id, queryString([...parameters, ['_limit', String(view.limit)]]))
        sameRows(pages.rows, wanted, `${what}: the pages`)
        if (view.format === 'ndjson') {
          sameRows(ndjsonRows(exported.body), pages.rows, `${what}: the NDJSON export`)
          continue
        }
        assert.match(exported.type, /^text\/csv/)
        const [header, ...records] = csvRecords(exported.body)
        assert.deepEqual(header, selected.map((column) => column.name), `${what}: the header`)
        assert.equal(records.length, expected.rows.length, `${what}: CSV records`)
        records.forEach((record, index) => {
          assert.equal(record.length, selected.length, `${what}: fields of record ${index}`)
          selected.forEach((column, position) => { assertField(record[position]!, column, expected.rows[index]!, `${what}: record ${index}, ${column.name}`) })
        })
        // The CSV of a view with rows imports back as a data set of its rows.
        if (wanted.length > 0 && (view.filters.length > 0 || tally.imported < 3)) {
          tally.imported++
          const copy = await upload(exported.body)
          sameRows((await walk(copy.id, '_limit=1000')).rows, wanted, `${what}: the export imported back`)
        }
      }
    }), { seed: SEED, numRuns: 20 * RUNS })
    assert.ok(tally.copied > 0 && tally.walked > 0 && tally.imported > 3 && tally.refused > 0, JSON.stringify(tally))
  })

  it('exports a view of several chunks: the keyset goes on across them, through ties and missing sort keys', async () => {
    // About 12 MB of CSV, three chunks of 4 MiB and more: g has ten values and missing ones, so a
    // chunk ends inside a run of one value; rows keep their number as the tie-breaker.
    const ROWS = 60_000
    const g = (k: number): number | null => (k % 11 === 0 ? null : (k * 7) % 10)
    const w = (k: number): string => `${k % 3 === 0 ? '"q' : 'v'}${String(k).padStart(6, '0')},${'é'.repeat(60)}${'x'.repeat(k % 90)}${k % 5 === 0 ? '\n' : ''}`
    const lines = ['k,g,w']
    for (let k = 1; k <= ROWS; k++) lines.push(`${k},${g(k) ?? ''},"${w(k).replaceAll('"', '""')}"`)
    const { id } = await upload(lines.join('\n') + '\n')
    const numbers = Array.from({ length: ROWS }, (_, index) => index + 1)
    const sorted = (descending: boolean, keep: (k: number) => boolean = () => true): number[] => {
      const direction = descending ? -1 : 1
      const present = numbers.filter((k) => g(k) !== null && keep(k)).sort((a, b) => direction * (g(a)! - g(b)! || a - b))
      return [...present, ...numbers.filter((k) => g(k) === null && keep(k)).sort((a, b) => direction * (a - b))]
    }

    for (const [query, order] of [['_sort=g', sorted(false)], ['_sort=-g', sorted(true)], ['_sort=-g&g__ne=3&k__gt=5', sorted(true, (k) => g(k) !== null && g(k) !== 3 && k > 5)], ['', numbers]] as const) {
      for (const format of ['csv', 'ndjson'] as const) {
        const before = { copies: copies(), chunks: walkChunks() }
        const exported = await get(`/datasets/${id}/export?${query}&_format=${format}`)
        assert.equal(exported.status, 200, exported.body.slice(0, 300))
        const chunks = query === '' ? copies() - before.copies : walkChunks() - before.chunks
        assert.ok(chunks >= 3, `${query} ${format}: ${chunks} chunks`)
        const rows = format === 'csv'
          ? csvRecords(exported.body).slice(1).map(([k, gText, wText]) => ({ k: Number(k), g: gText === '' ? null : Number(gText), w: wText }))
          : ndjsonRows(exported.body) as Array<{ k: number, g: number | null, w: string }>
        assert.equal(rows.length, order.length, `${query} ${format}: rows`)
        const wrong = rows.findIndex((row, index) => row.k !== order[index] || row.g !== g(row.k) || row.w !== w(row.k))
        assert.equal(wrong, -1, `${query} ${format}: row ${wrong} is ${JSON.stringify(rows[wrong])}, expected k=${order[wrong]}`)
      }
    }
  })
})

// ─── Hostile values of each API parameter ───────────────────────────────────────────────────────

describe('hostile values of the API parameters', async () => {
  const { id } = await upload('a,b\n1,x\n2,y\n')
  const huge = (unit: string): string => unit.repeat(Math.ceil(100_000 / unit.length))
  const common = [huge('9'), huge('%E2%82%AC'), '%00', 'a%00b', '%FF', '%C0%80', '%ED%A0%80', '%F4%90%80%80', '%']
  const VALUES: Record<string, string[]> = {
    limit: [...common, '', '0', '-1', '1001', '1.5', '1e309', 'NaN', 'Infinity', '5abc'],
    sort: [...common, '', '-', '--', '-%00', huge('a,')],
    cursor: [...common, '', 'x', Buffer.from('{"s":"","v":null}').toString('base64url'), Buffer.from('{"s":"","v":null,"r":1e400}').toString('base64url'), Buffer.from('[]').toString('base64url'), Buffer.from('{"s":"a","v":"","r":1}').toString('base64url')],
    select: [...common, '', ',', 'a,,b', ',a', huge('a,'), huge('zz,'), Array.from({ length: 10_000 }, (_, index) => `c${index}`).join(',')],
    format: [...common, '', 'xml', 'CSV', 'csv%00', 'ndjson,csv'],
    facet: [...common, '', ',', 'a__', 'a__week', 'a,,b', huge('a,'), 'nope__value'],
    facet_size: [...common, '', '0', '-1', '101', '1.5', '1e309', 'NaN', 'Infinity', '5abc'],
    count: [...common, '', 'EXACT', 'exact,none', 'exact%00'],
    group_by: [...common, '', ',', 'a,,b', huge('a,'), 'nope', '_rank'],
    metrics: [...common, '', ',', 'sum', 'sum:', 'sum:b', 'median:a', 'count:nope', huge('count,'), 'sum:a:b'],
  }
  const LISTS = new Set(['select', 'facet', 'group_by', 'metrics'])
  const ROUTES = { rows: ['limit', 'sort', 'cursor', 'select', 'facet', 'facet_size', 'count'], export: ['format', 'sort', 'select'], aggregate: ['group_by', 'metrics'] }
  for (const [route, parameters] of Object.entries(ROUTES)) {
    for (const name of parameters) {
      it(`${route}: malformed _${name} and ${name}, one at a time, repeated, and 10,000 times`, async () => {
        let cases = 0
        for (const parameter of [`_${name}`, name]) {
          for (const value of VALUES[name]!) {
            await check(`${parameter}=${value}`, parameter)
            cases++
          }
          // Repeated where one value is expected (a list may be repeated: then its values are bad).
          await check(`${parameter}=a&${parameter}=${LISTS.has(name) ? 'nope' : 'b'}`, parameter)
          await check(`${parameter}[]=a`, `${parameter}[]`)
          await check(Array.from({ length: 10_000 }, (_, index) => `${parameter}=c${index}`).join('&'), parameter)
          cases += 3
        }
        assert.ok(cases > 20)

        async function check (query: string, parameter: string): Promise<void> {
          const answer = await get(`/datasets/${id}/${route}?${query}`)
          assertRefused(answer, parameter, `${route}?${query.slice(0, 80)}`)
          assert.ok(String(answer.json().detail).length < 2_000, `${route}?${query.slice(0, 80)}: a short detail (${String(answer.json().detail).length} characters)`)
        }
      })
    }
  }

  it('_q of any text is answered (a search, or a 400 naming _q), never a 500, on every route that takes it', async () => {
    const values = [...common, ...['', '!!!', ':*', '&|!()', '<->', '"', '\\', 'a:A', huge('a '), huge('-'), huge('"a" ')].map(encodeURIComponent)]
    let cases = 0
    for (const route of ['rows', 'export', 'aggregate']) {
      for (const query of [...values.map((value) => `_q=${value}`), '_q=a&_q=b', '_q[]=a', Array.from({ length: 10_000 }, (_, index) => `_q=c${index}`).join('&')]) {
        const answer = await get(`/datasets/${id}/${route}?${query}${route === 'aggregate' ? '&_group_by=a' : ''}`)
        const what = `${route}?${query.slice(0, 80)}`
        if (answer.status === 200) continue
        assertRefused(answer, query.startsWith('_q[]') ? '_q[]' : '_q', what)
        assert.equal(answer.status, 400, what)
        cases++
      }
    }
    assert.ok(cases > 0, 'some were refused (a repeated _q)')
  })

  it('a filter of hostile name or value is a 400 naming it, never a 500', async () => {
    for (const [parameter, value] of [['a%00', '1'], ['%FF', '1'], [huge('a'), '1'], ['a', '%00'], ['b', 'x%00'], ['a', huge('9')], ['a__in', huge('1,')], ['a__', '1'], ['__', '1'], ['a____eq', '1']] as Array<[string, string]>) {
      for (const route of ['rows', 'export']) {
        const answer = await get(`/datasets/${id}/${route}?${parameter}=${value}`)
        assert.ok(answer.status === 400, `${route}?${parameter.slice(0, 40)}=${value.slice(0, 40)}: ${answer.status} ${answer.body.slice(0, 200)}`)
        assert.match(answer.type, /^application\/problem\+json/)
      }
    }
    // Invalid UTF-8 is read as some text (a text filter then finds nothing), never as a lone surrogate PostgreSQL refuses.
    for (const value of ['%ED%A0%80', '%FF', '%C0%80', '%F4%90%80%80']) {
      for (const route of ['rows', 'export']) {
        const answer = await get(`/datasets/${id}/${route}?b__contains=${value}&_select=a`)
        assert.ok(answer.status === 200 || answer.status === 400, `${route}?b__contains=${value}: ${answer.status} ${answer.body.slice(0, 200)}`)
      }
    }
  })
})

// ─── The documentation ──────────────────────────────────────────────────────────────────────────

describe('the OpenAPI document', () => {
  it('describes _limit, _sort, _cursor, _select (and _q) of rows and _format, _sort, _select (and _q) of export, and the naming rule', async () => {
    const spec = (await get('/openapi.json')).json()
    for (const [path, names] of [['/datasets/{dataset_id}/rows', ['_limit', '_sort', '_cursor', '_select', '_q']], ['/datasets/{dataset_id}/export', ['_format', '_sort', '_select', '_q']]] as const) {
      const operation = spec.paths[path].get
      const query = operation.parameters.filter((parameter: { in: string }) => parameter.in === 'query')
      const listed = query.map((parameter: { name: string }) => parameter.name)
      for (const name of names) assert.ok(listed.includes(name), `${path} lists ${name}: ${listed.join(', ')}`)
      // The filters are one free-form object parameter, each of its properties a parameter of its own.
      assert.equal(query.find((parameter: { name: string }) => parameter.name === 'filters')?.schema.type, 'object', `${path}: the filters are described`)
      assert.ok(listed.every((name: string) => name.startsWith('_') || name === 'filters'), `${path}: only _names are declared (bare names are not): ${listed.join(', ')}`)
      for (const parameter of query) {
        assert.ok(typeof (parameter.description ?? parameter.schema?.description) === 'string', `${path} ${parameter.name} has a description`)
        assert.equal(parameter.required, false, `${path} ${parameter.name} is optional`)
      }
      assert.match(operation.description, /start with `_`/, `${path}: the naming rule`)
      const select = query.find((parameter: { name: string }) => parameter.name === '_select')
      const forms = [select.schema, ...(select.schema.anyOf ?? select.schema.oneOf ?? [])]
      assert.ok(forms.some((form: { type?: string }) => form.type === 'array'), `${path}: _select may be repeated: ${JSON.stringify(select.schema)}`)
    }
  })
})
