// Writes of data sets on a real PostgreSQL (issue #20): who may write (the key that created a data
// set, or an admin key; the demo data set admin keys only), DELETE /datasets/{id}/rows against an
// oracle over fast-check-generated rows and filters (fixed seed; FC_SEED overrides it), PATCH of
// names, descriptions and column types (a value that does not convert changes nothing; hostile
// names are 400s), and the history of every write (GET /datasets/{id}/changes).
import assert from 'node:assert/strict'
import { after, describe, it } from 'node:test'
import fc from 'fast-check'
import { createApiKeysRepository } from '../src/auth/api-keys.ts'
import { buildTestApp } from './helpers/app.ts'
import { until } from './helpers/http.ts'

const SEED = Number(process.env.FC_SEED ?? 20_261_202)

const main = await buildTestApp({ after }, { RATE_LIMIT_WRITES: '0' })
const { app, sql } = main
const repository = createApiKeysRepository(sql)
const owner = await repository.create('owner')
const other = await repository.create('other')
const admin = await repository.create('admin', { isAdmin: true })
/** A key, or null: a request without one. */
type Caller = { key: string } | null
const auth = (key: Caller): Record<string, string> => (key === null ? {} : { authorization: `Bearer ${key.key}` })

async function upload (csv: string, name = 'owned', by = owner): Promise<number> {
  const response = await app.inject({ method: 'POST', url: `/datasets?name=${encodeURIComponent(name)}`, headers: { ...auth(by), 'content-type': 'text/csv' }, payload: csv })
  assert.equal(response.statusCode, 201, response.body)
  return response.json().dataset.id
}

async function patch (id: number, body: unknown, by: Caller = owner): Promise<{ status: number, body: any }> {
  const response = await app.inject({ method: 'PATCH', url: `/datasets/${id}`, headers: { ...auth(by), 'content-type': 'application/json' }, payload: JSON.stringify(body) })
  return { status: response.statusCode, body: response.json() }
}

async function deleteRows (id: number, query: string, by: Caller = owner): Promise<{ status: number, body: any }> {
  const response = await app.inject({ method: 'DELETE', url: `/datasets/${id}/rows?${query}`, headers: auth(by) })
  return { status: response.statusCode, body: response.json() }
}

async function get (url: string): Promise<any> {
  const response = await app.inject({ url })
  assert.equal(response.statusCode, 200, `${url}: ${response.body}`)
  return response.json()
}

/** The statistics jobs enqueued for a data set (the import's, then one per write). */
async function statsJobs (id: number): Promise<number> {
  const [{ count }] = await sql<[{ count: number }]>`select count(*)::int as count from pgboss.job where name = 'compute_dataset_stats' and data->>'dataset_id' = ${String(id)}`
  return count
}

async function changesOf (id: number): Promise<any[]> {
  return (await get(`/datasets/${id}/changes?limit=100`)).changes
}

/** The demo data set, imported as the seed imports it (no owner). */
async function importDemo (): Promise<number> {
  const csv = (async function * () { yield Buffer.from('id,station\n1,Oslo\n2,Bergen\n') })()
  const dataset = await sql.begin(async (tx) => await main.datasets.importSample(tx, { name: 'weather' }, csv))
  return dataset.id
}

describe('ownership: a data set is written by its creator or an admin key', () => {
  const writes: Array<[string, (id: number, by: Caller) => Promise<number>, number]> = [
    ['PATCH /datasets/{id}', async (id, by) => (await patch(id, { description: 'changed' }, by)).status, 200],
    ['DELETE /datasets/{id}/rows', async (id, by) => (await deleteRows(id, 'n=1', by)).status, 200],
    ['DELETE /datasets/{id}', async (id, by) => (await app.inject({ method: 'DELETE', url: `/datasets/${id}`, headers: auth(by) })).statusCode, 204],
    ['POST /datasets/{id}/rows (append)', async (id, by) => (await app.inject({ method: 'POST', url: `/datasets/${id}/rows`, headers: { ...auth(by), 'content-type': 'text/csv' }, payload: 'n,t\n5,z\n' })).statusCode, 200],
    ['PUT /datasets/{id}/data (replace)', async (id, by) => (await app.inject({ method: 'PUT', url: `/datasets/${id}/data`, headers: { ...auth(by), 'content-type': 'text/csv' }, payload: 'n,t\n7,y\n' })).statusCode, 200],
    ['PUT /datasets/{id}/key', async (id, by) => (await app.inject({ method: 'PUT', url: `/datasets/${id}/key`, headers: { ...auth(by), 'content-type': 'application/json' }, payload: '{"key":["t"]}' })).statusCode, 200],
  ]
  for (const [name, write, success] of writes) {
    it(`${name}: 401 without a key, 403 for another key, done by the owner and by an admin`, async () => {
      const id = await upload('n,t\n1,a\n2,b\n1,c\n')
      assert.equal(await write(id, null), 401)
      const refused = await app.inject({ method: 'PATCH', url: `/datasets/${id}`, headers: { ...auth(other), 'content-type': 'application/json' }, payload: '{"name":"x"}' })
      assert.equal(refused.statusCode, 403)
      assert.equal(refused.json().type, '/problems/forbidden')
      assert.match(refused.json().detail, new RegExp(`belongs to the API key that created it \\(key ${owner.id}\\); API key ${other.id} may not`))
      assert.equal(await write(id, other), 403)
      assert.equal((await get(`/datasets/${id}`)).dataset.description, null, 'a refused write changes nothing')
      assert.equal((await get(`/datasets/${id}`)).dataset.rows, 3)
      assert.equal(await write(id, owner), success)
      const second = await upload('n,t\n1,a\n2,b\n', 'by owner')
      assert.equal(await write(second, admin), success, 'an admin key writes a data set it did not create')
      assert.equal(await write(999_999, owner), 404, 'a missing data set is a 404, whoever asks')
    })
  }

  it('the demo data set has no owner: admin keys only', async () => {
    const id = await importDemo()
    const refused = await patch(id, { name: 'mine' }, owner)
    assert.equal(refused.status, 403)
    assert.match(refused.body.detail, /no owner.*only an admin key/)
    assert.equal((await deleteRows(id, 'id=1', owner)).status, 403)
    assert.equal((await app.inject({ method: 'DELETE', url: `/datasets/${id}`, headers: auth(owner) })).statusCode, 403)
    assert.equal((await patch(id, { name: 'weather (edited)' }, admin)).status, 200)
    assert.deepEqual((await deleteRows(id, 'id=1', admin)).body, { deleted: 1 })
    const history = await changesOf(id)
    assert.deepEqual(history.map((change) => [change.kind, change.api_key_id]), [['delete_rows', admin.id], ['patch', admin.id], ['create', null]])
  })

  it('reads stay public', async () => {
    const id = await upload('n\n1\n')
    assert.equal((await app.inject({ url: `/datasets/${id}/rows` })).statusCode, 200)
    assert.equal((await app.inject({ url: `/datasets/${id}/changes` })).statusCode, 200)
  })
})

// ─── Row deletes against an oracle ───────────────────────────────────────────────────────────────

interface Row { id: number, cat: string | null, flag: boolean | null, n: number | null, day: string | null }
const CATS = ['Oslo', 'oslo', 'Ørsta', 'Bergen', 'zz', '中文']
const nullable = <T>(arbitrary: fc.Arbitrary<T>): fc.Arbitrary<T | null> => fc.oneof({ weight: 1, arbitrary: fc.constant(null) }, { weight: 5, arbitrary })
const rowsArb = fc.array(fc.record({
  cat: nullable(fc.constantFrom(...CATS)),
  flag: nullable(fc.boolean()),
  n: nullable(fc.integer({ min: -20, max: 20 })),
  day: nullable(fc.integer({ min: 1, max: 28 }).map((day) => `2026-02-${String(day).padStart(2, '0')}`)),
}), { minLength: 40, maxLength: 150 }).map((cells) => cells.map((cell, index): Row => ({ id: index + 1, ...cell })))

function csvOf (rows: Row[]): string {
  // The first row has every value, so that the types are the intended ones.
  rows[0] = { ...rows[0]!, cat: 'Oslo', flag: true, n: 1, day: '2026-02-01' }
  const lines = rows.map((row) => [row.id, row.cat ?? '', row.flag ?? '', row.n ?? '', row.day ?? ''].join(','))
  return ['id,cat,flag,n,day', ...lines].join('\n') + '\n'
}

interface Filter { parameter: string, value: string, test: (row: Row) => boolean }
const lower = (text: string): string => Array.from(text, (character) => character.toLowerCase()).join('')
const filterArb: fc.Arbitrary<Filter> = fc.oneof(
  fc.constantFrom(...CATS).map((value): Filter => ({ parameter: 'cat', value, test: (row) => row.cat === value })),
  fc.subarray(CATS, { minLength: 1 }).map((values): Filter => ({ parameter: 'cat__in', value: values.join(','), test: (row) => row.cat !== null && values.includes(row.cat) })),
  fc.constantFrom('o', 'OS', 'ø').map((value): Filter => ({ parameter: 'cat__contains', value, test: (row) => row.cat !== null && lower(row.cat).includes(lower(value)) })),
  fc.boolean().map((value): Filter => ({ parameter: 'flag', value: String(value), test: (row) => row.flag === value })),
  fc.integer({ min: -20, max: 20 }).map((value): Filter => ({ parameter: 'n__gte', value: String(value), test: (row) => row.n !== null && row.n >= value })),
  fc.integer({ min: -20, max: 20 }).map((value): Filter => ({ parameter: 'n__ne', value: String(value), test: (row) => row.n !== null && row.n !== value })),
  fc.integer({ min: 1, max: 28 }).map((day): Filter => {
    const value = `2026-02-${String(day).padStart(2, '0')}`
    return { parameter: 'day__lt', value, test: (row) => row.day !== null && row.day < value }
  }),
  fc.constantFrom('cat', 'flag', 'n', 'day').chain((column) => fc.boolean().map((value): Filter => ({
    parameter: `${column}__isnull`, value: String(value), test: (row) => (row[column as keyof Row] === null) === value,
  }))),
)
const queryOf = (filters: Filter[]): string => filters.map((filter) => `${encodeURIComponent(filter.parameter)}=${encodeURIComponent(filter.value)}`).join('&')

describe('DELETE /datasets/{id}/rows', () => {
  it('deletes exactly the rows the oracle selects; totals, pages, exports and aggregates see them gone', async () => {
    const tables = fc.sample(rowsArb, { seed: SEED, numRuns: 3 })
    for (const [index, generated] of tables.entries()) {
      const csv = csvOf(generated)
      let rows = generated
      const id = await upload(csv, `deletes-${index}`)
      const deletes = fc.sample(fc.array(filterArb, { minLength: 1, maxLength: 2 }), { seed: SEED + index, numRuns: 4 })
      const probe: Filter = { parameter: 'flag__isnull', value: 'false', test: (row) => row.flag !== null }
      for (const filters of deletes) {
        // A filtered total counted (and kept in memory) before the delete…
        const before = await get(`/datasets/${id}/rows?${queryOf([probe])}&_count=exact&_limit=1`)
        assert.equal(before.total, rows.filter(probe.test).length)
        const expected = rows.filter((row) => filters.every((filter) => filter.test(row)))
        const answer = await deleteRows(id, queryOf(filters))
        assert.equal(answer.status, 200, JSON.stringify(answer.body))
        assert.deepEqual(answer.body, { deleted: expected.length }, queryOf(filters))
        rows = rows.filter((row) => !expected.includes(row))
        const ids = rows.map((row) => row.id)
        // …is counted again after it: the data set's version moved.
        const after = await get(`/datasets/${id}/rows?${queryOf([probe])}&_count=exact&_limit=1`)
        assert.equal(after.total, rows.filter(probe.test).length, `total after ${queryOf(filters)}`)
        const page = await get(`/datasets/${id}/rows?_limit=1000&_select=id`)
        assert.deepEqual(page.rows.map((row: { id: number }) => row.id), ids, `rows after ${queryOf(filters)}`)
        assert.equal(page.total, rows.length)
        assert.equal((await get(`/datasets/${id}`)).dataset.rows, rows.length)
        const exported = await app.inject({ url: `/datasets/${id}/export?_format=ndjson&_select=id` })
        assert.deepEqual(exported.body.trim() === '' ? [] : exported.body.trim().split('\n').map((line) => JSON.parse(line).id), ids)
        const sorted = await app.inject({ url: `/datasets/${id}/export?_format=csv&_select=id&_sort=-n` })
        assert.deepEqual(sorted.body.trim().split('\n').slice(1).map(Number).sort((a, b) => a - b), ids)
        const groups = (await get(`/datasets/${id}/aggregate?_metrics=count`)).groups
        assert.equal(groups[0].count, rows.length)
        const history = await changesOf(id)
        if (expected.length > 0) {
          assert.equal(history[0].kind, 'delete_rows')
          assert.equal(history[0].rows, expected.length)
          assert.equal(history[0].api_key_id, owner.id)
          assert.deepEqual(history[0].details.filters, filters.map((filter) => [filter.parameter, filter.value]))
        }
      }
    }
  })

  it('takes _q as GET /rows does, and refuses a delete without a filter, API parameters of other routes and bad filters', async () => {
    const id = await upload('n,t\n1,red apple\n2,green apple\n3,red pear\n', 'search')
    for (const query of ['', '_limit=5', 'nope=1', 'n__gt=abc', 'n=']) {
      const refused = await deleteRows(id, query)
      assert.equal(refused.status, 400, `${query}: ${JSON.stringify(refused.body)}`)
      assert.equal(refused.body.type, '/problems/validation-error')
    }
    assert.match((await deleteRows(id, '')).body.detail, /at least one filter/)
    assert.equal((await get(`/datasets/${id}`)).dataset.rows, 3, 'nothing deleted')
    assert.equal(await statsJobs(id), 1, 'the import\'s')
    assert.deepEqual((await deleteRows(id, '_q=red')).body, { deleted: 2 })
    assert.equal(await statsJobs(id), 2, 'the statistics job runs again after the delete')
    assert.deepEqual((await get(`/datasets/${id}`)).stats.columns, {}, 'stale statistics are gone until it has')
    assert.deepEqual((await get(`/datasets/${id}/rows`)).rows, [{ n: 2, t: 'green apple' }])
    assert.deepEqual((await deleteRows(id, 'n=42')).body, { deleted: 0 })
    assert.deepEqual((await changesOf(id)).map((change) => change.kind), ['delete_rows', 'create'], 'a delete of no row is no change')
  })
})

// ─── PATCH ───────────────────────────────────────────────────────────────────────────────────────

/** The columns of the data set's view for SQL queries, with their PostgreSQL types. */
async function viewColumns (id: number): Promise<Array<[string, string]>> {
  const rows = await sql<Array<{ name: string, type: string }>>`
    select column_name as name, data_type as type from information_schema.columns
    where table_schema = 'dataset_views' and table_name = ${`dataset_${id}`} order by ordinal_position`
  return rows.map((row) => [row.name, row.type])
}

describe('paging past rows deleted since', () => {
  // Each value of each column distinct, so that every sort is a strict order; one long text key.
  const csv = 'n,t,d,ts,x,b,long\n' + Array.from({ length: 30 }, (_, at) =>
    [at, `word${(at * 7) % 30} w`, `2026-01-${String(1 + ((at * 11) % 30)).padStart(2, '0')}`, `2026-02-01T${String((at * 13) % 24).padStart(2, '0')}:${String(at).padStart(2, '0')}:00.${String(at).padStart(6, '0')}Z`,
      ((at * 17) % 30) / 8, at % 2 === 0, `${'x'.repeat(1100)}${String((at * 19) % 30).padStart(2, '0')}`].join(',')).join('\n') + '\n'
  const sorts = ['', 'n', '-n', 't', '-t', 'd', '-d', 'ts', '-ts', 'x', '-x', 'long', '-long', '_rank&_q=w', '-_rank&_q=w']

  for (const sort of sorts) {
    it(`_sort=${sort || '(row order)'}: the walk goes on after the last row sent, deleted since`, async () => {
      const id = await upload(csv, 'paging')
      const base = `/datasets/${id}/rows?limit=5${sort === '' ? '' : `&_sort=${sort}`}`
      const all = (await get(base.replace('limit=5', 'limit=100'))).rows.map((row: { n: number }) => row.n)
      assert.equal(all.length, 30)
      const first = await get(base)
      // The last row sent, unless its key is longer than a cursor carries: then it is read back from the row.
      if (!sort.includes('long')) assert.equal((await deleteRows(id, `n=${first.rows.at(-1).n}`)).body.deleted, 1)
      // A row of the next page deleted too, and one before: neither moves the walk.
      await deleteRows(id, `n=${all[6]}`)
      await deleteRows(id, `n=${all[0]}`)
      const walked = []
      for (let cursor = first.next_cursor; cursor !== null;) {
        const page = await get(`${base}&_cursor=${cursor}`)
        walked.push(...page.rows.map((row: { n: number }) => row.n))
        cursor = page.next_cursor
      }
      assert.deepEqual(walked, all.slice(5).filter((n: number) => n !== all[6]))
    })
  }

  it('refuses a cursor whose key is not a value of the sort column, or too long to be one this API made', async () => {
    const id = await upload(csv, 'paging')
    const cursorOf = (position: object): string => Buffer.from(JSON.stringify(position)).toString('base64url')
    const forged: Array<[string, string]> = [['n', 'ten'], ['d', '2026-02-30'], ['ts', 'soon'], ['b', 'maybe'], ['t', 'a\u0000b'], ['_rank&_q=w', 'NaN'], ['t', 'y'.repeat(1100)]]
    for (const [sort, k] of forged) {
      const response = await app.inject({ url: `/datasets/${id}/rows?_sort=${sort}&_cursor=${cursorOf({ s: sort.split('&')[0], v: '', r: 3, k })}` })
      assert.equal(response.statusCode, 400, `${sort} ${k}: ${response.body}`)
      assert.match(response.json().detail, /not a cursor returned by this API/)
    }
  })
})

describe('PATCH /datasets/{id}', () => {
  it('renames the data set and edits its description', async () => {
    const id = await upload('a\n1\n')
    const { status, body } = await patch(id, { name: 'renamed', description: 'now with a description' })
    assert.equal(status, 200, JSON.stringify(body))
    assert.deepEqual([body.dataset.name, body.dataset.description], ['renamed', 'now with a description'])
    assert.equal((await patch(id, { description: null })).body.dataset.description, null)
    assert.equal((await get(`/datasets/${id}`)).dataset.name, 'renamed')
  })

  it('renames columns (two may swap names) and changes types; rows, filters and the SQL view follow', async () => {
    const id = await upload('code,when,label\n1,2026-01-02,x\n22,2026-01-03,y\n', 'retype')
    // `code` is an integer column, `when` a date column: make code text and swap when/label names.
    const { status, body } = await patch(id, { columns: { code: { name: 'zip', type: 'text' }, when: { name: 'label' }, label: { name: 'when' } } })
    assert.equal(status, 200, JSON.stringify(body))
    assert.deepEqual(body.schema.fields.map((field: { name: string, type: string }) => [field.name, field.type]), [['zip', 'text'], ['label', 'date'], ['when', 'text']])
    assert.deepEqual((await get(`/datasets/${id}/rows?zip=22`)).rows, [{ zip: '22', label: '2026-01-03', when: 'y' }])
    assert.deepEqual(await viewColumns(id), [['zip', 'text'], ['label', 'date'], ['when', 'text']])
    // Back: text to integer converts every value here.
    assert.equal(await statsJobs(id), 2, 'the statistics job runs again after a column change')
    assert.equal((await patch(id, { columns: { zip: { type: 'integer' } } })).status, 200)
    assert.deepEqual((await get(`/datasets/${id}/rows?zip__gte=2`)).rows, [{ zip: 22, label: '2026-01-03', when: 'y' }])
    assert.deepEqual(await viewColumns(id), [['zip', 'bigint'], ['label', 'date'], ['when', 'text']])
    const [change] = await changesOf(id)
    assert.equal(change.kind, 'patch')
    assert.deepEqual(change.details, { columns: { zip: { type: 'integer', from_type: 'text' } } })
    assert.equal(change.rows, 2, 'a type change touches every row')
  })

  it('refuses a value that does not convert, naming its row and value, and changes nothing', async () => {
    const id = await upload('d,n\n2026-01-02,1\nsoon,2\n2026-01-04,3\nlater,4\n', 'no-convert')
    const before = await get(`/datasets/${id}`)
    const rowsBefore = await get(`/datasets/${id}/rows`)
    const viewBefore = await viewColumns(id)
    const history = await changesOf(id)
    const refused = await patch(id, { name: 'renamed too', columns: { d: { name: 'day', type: 'date' } } })
    assert.equal(refused.status, 400, JSON.stringify(refused.body))
    assert.equal(refused.body.row, 2)
    assert.equal(refused.body.value, 'soon')
    assert.match(refused.body.detail, /row 2 has the value "soon", which is not a date/)
    assert.equal(refused.body.errors[0].pointer, '/columns/d/type')
    assert.deepEqual(await get(`/datasets/${id}`), before, 'metadata unchanged')
    assert.deepEqual(await get(`/datasets/${id}/rows`), rowsBefore)
    assert.deepEqual(await viewColumns(id), viewBefore)
    assert.deepEqual(await changesOf(id), history, 'no history entry')
    // Without the values that do not convert, it does.
    assert.deepEqual((await deleteRows(id, 'd__in=soon,later')).body, { deleted: 2 })
    const done = await patch(id, { columns: { d: { name: 'day', type: 'date' } } })
    assert.equal(done.status, 200, JSON.stringify(done.body))
    assert.deepEqual((await get(`/datasets/${id}/rows?day__gt=2026-01-03`)).rows, [{ day: '2026-01-04', n: 3 }])
  })

  it('refuses hostile names and shapes with a 400, changing nothing', async () => {
    const id = await upload('a,b\n1,2\n', 'hostile')
    const before = await get(`/datasets/${id}`)
    const cases: Array<[string, unknown, RegExp]> = [
      ['an empty name', { columns: { a: { name: '' } } }, /./],
      ['a 10 KB name', { columns: { a: { name: 'x'.repeat(10_240) } } }, /./],
      ['a NUL character', { columns: { a: { name: 'a\u0000b' } } }, /NUL/],
      ['a duplicate name', { columns: { a: { name: 'b' } } }, /two columns would be named "b"/],
      ['two renamed to one name', { columns: { a: { name: 'c' }, b: { name: 'c' } } }, /two columns would be named "c"/],
      ['an unknown column', { columns: { nope: { name: 'c' } } }, /there is no column "nope"/],
      ['an unknown type', { columns: { a: { type: 'uuid' } } }, /./],
      ['an empty change', { columns: { a: {} } }, /./],
      ['no column changes', { columns: {} }, /./],
      ['an unknown field', { owner: 3 }, /./],
      ['nothing', {}, /./],
      ['an empty data set name', { name: '' }, /./],
      ['an array', [], /./],
    ]
    for (const [what, body, message] of cases) {
      const refused = await patch(id, body)
      assert.equal(refused.status, 400, `${what}: ${JSON.stringify(refused.body).slice(0, 300)}`)
      assert.match(refused.body.detail, message, what)
    }
    const notJson = await app.inject({ method: 'PATCH', url: `/datasets/${id}`, headers: { ...auth(owner), 'content-type': 'application/json' }, payload: '{"name":' })
    assert.equal(notJson.statusCode, 400)
    const csv = await app.inject({ method: 'PATCH', url: `/datasets/${id}`, headers: { ...auth(owner), 'content-type': 'text/csv' }, payload: 'a\n1\n' })
    assert.equal(csv.statusCode, 415)
    assert.deepEqual(await get(`/datasets/${id}`), before)
    // Names that are odd but valid: a line break, "__proto__", a long one within the limit.
    const odd = await patch(id, { columns: { a: { name: '__proto__' }, b: { name: 'line\nbreak' } } })
    assert.equal(odd.status, 200, JSON.stringify(odd.body))
    assert.deepEqual(odd.body.schema.columns, ['__proto__', 'line\nbreak'])
    // (An object literal's __proto__ would set its prototype: the body is built as JSON.)
    const long = await patch(id, JSON.parse(`{"columns": {"__proto__": {"name": "${'é'.repeat(1000)}"}}}`))
    assert.equal(long.status, 200, JSON.stringify(long.body))
    assert.equal(long.body.schema.columns[0], 'é'.repeat(1000))
    assert.equal((await viewColumns(id))[0]![0], 'é'.repeat(31), 'the view cuts a long name to 63 bytes')
  })
})

describe('history: GET /datasets/{id}/changes', () => {
  it('lists every write newest first, keyset-paged; the history goes with its data set', async () => {
    const id = await upload('n\n1\n2\n3\n', 'history')
    await patch(id, { name: 'history 2' })
    await deleteRows(id, 'n=2')
    await patch(id, { columns: { n: { name: 'number' } } }, admin)
    const all = await changesOf(id)
    assert.deepEqual(all.map((change) => [change.kind, change.api_key_id, change.rows]), [['patch', admin.id, null], ['delete_rows', owner.id, 1], ['patch', owner.id, null], ['create', owner.id, 3]])
    assert.deepEqual(all[3].details.columns, [{ name: 'n', type: 'integer' }])
    assert.equal(all[3].details.source, 'upload')
    assert.deepEqual(all[2].details, { name: 'history 2' })
    assert.deepEqual(all[0].details, { columns: { n: { name: 'number' } } })
    for (const change of all) assert.ok(!Number.isNaN(Date.parse(change.at)))
    const seen = []
    let cursor: string | null = ''
    while (cursor !== null) {
      const page: { changes: unknown[], next_cursor: string | null } = await get(`/datasets/${id}/changes?limit=1${cursor === '' ? '' : `&cursor=${cursor}`}`)
      assert.equal(page.changes.length, 1)
      seen.push(page.changes[0])
      cursor = page.next_cursor
    }
    assert.deepEqual(seen, all)
    assert.equal((await app.inject({ method: 'DELETE', url: `/datasets/${id}`, headers: auth(owner) })).statusCode, 204)
    assert.equal((await app.inject({ url: `/datasets/${id}/changes` })).statusCode, 404)
    const [{ left }] = await sql<[{ left: number }]>`select count(*)::int as left from dataset_changes where dataset_id = ${id}`
    assert.equal(left, 0)
  })
})

describe('the statistics job after writes', () => {
  it('computes the statistics again for the new rows, names and types, and search works on', async () => {
    const working = await buildTestApp({ after }, { RATE_LIMIT_WRITES: '0' }, { worker: true })
    const key = await createApiKeysRepository(working.sql).create('worker')
    const headers = { authorization: `Bearer ${key.key}` }
    const created = await working.app.inject({ method: 'POST', url: '/datasets?name=stats', headers: { ...headers, 'content-type': 'text/csv' }, payload: 'code,word,day\n1,red apple,2026-01-02\n2,green apple,2026-01-03\n3,red pear,2026-01-04\n' })
    const id = created.json().dataset.id
    const statsOf = async (): Promise<any> => (await working.app.inject({ url: `/datasets/${id}` })).json().stats
    await until('the first statistics', async () => (await statsOf()).computed_at !== null)
    const removed = await working.app.inject({ method: 'DELETE', url: `/datasets/${id}/rows?word__startswith=green`, headers })
    assert.deepEqual(removed.json(), { deleted: 1 })
    const retyped = await working.app.inject({ method: 'PATCH', url: `/datasets/${id}`, headers: { ...headers, 'content-type': 'application/json' }, payload: JSON.stringify({ columns: { code: { name: 'label', type: 'text' }, word: { name: 'words' } } }) })
    assert.equal(retyped.statusCode, 200, retyped.body)
    const stats = await until('the statistics of the new version', async () => {
      const found = await statsOf()
      return found.computed_at !== null && found.columns.label !== undefined ? found : undefined
    })
    assert.equal(stats.count, 2)
    assert.deepEqual([stats.columns.label.type, stats.columns.label.count, stats.columns.words.count], ['text', 2, 2])
    assert.equal(stats.columns.code, undefined)
    const found = await working.app.inject({ url: `/datasets/${id}/rows?_q=3%20pear&_select=label` })
    assert.deepEqual(found.json().rows, [{ label: '3' }], 'the search covers the column that became text')
  })
})
