// Data that changes: appends (POST /datasets/{id}/rows), keys and upserts (`?key=`, PUT …/key,
// `on_conflict`), replaces (PUT …/data), through HTTP on a real PostgreSQL with a worker for the
// jobs. Appends and upserts are checked against an oracle model of the table (written here from
// the documented semantics, nothing of src/routes/datasets imported) over batches fast-check
// generates (fixed seed; FC_SEED overrides it): new columns, widened types, strict columns, key
// clashes and duplicates. Then a replace read in a loop by a reader that must never see a mix or
// nothing, concurrent upserts, hostile bodies, and the job path.
import assert from 'node:assert/strict'
import { after, describe, it } from 'node:test'
import fc from 'fast-check'
import { createApiKeysRepository } from '../src/auth/api-keys.ts'
import { buildTestApp, listen } from './helpers/app.ts'
import { json, until } from './helpers/http.ts'

const SEED = Number(process.env.FC_SEED ?? 20_261_202)
const SYNC_MAX_BYTES = 20_000

const { app, sql } = await buildTestApp({ after }, { JOB_SUPERVISE_INTERVAL_SECONDS: '1', DATASET_SYNC_MAX_BYTES: String(SYNC_MAX_BYTES) }, { worker: true })
const base = await listen(app)
const { id: keyId, key } = await createApiKeysRepository(sql).create('tests')
const auth = { authorization: `Bearer ${key}` }

async function send (method: string, path: string, body: string, contentType = 'text/csv'): Promise<{ status: number, body: any }> {
  const response = await fetch(`${base}${path}`, { method, headers: { ...auth, 'content-type': contentType }, body })
  return { status: response.status, body: await json(response) }
}

/** A body of unknown length (chunked): always written by a job. */
async function sendChunked (method: string, path: string, body: string, contentType = 'text/csv'): Promise<{ status: number, body: any }> {
  const stream = new ReadableStream({ start (controller) { controller.enqueue(new TextEncoder().encode(body)); controller.close() } })
  const response = await fetch(`${base}${path}`, { method, headers: { ...auth, 'content-type': contentType }, body: stream, duplex: 'half' })
  return { status: response.status, body: await json(response) }
}

async function create (csv: string, query = ''): Promise<any> {
  const answer = await send('POST', `/datasets${query}`, csv)
  assert.equal(answer.status, 201, JSON.stringify(answer.body))
  return answer.body
}

async function rowsOf (id: number): Promise<any[]> {
  const response = await fetch(`${base}/datasets/${id}/rows?limit=1000`)
  const page = await json(response)
  assert.equal(response.status, 200, JSON.stringify(page))
  assert.equal(page.next_cursor, null, 'one page holds them all')
  return page.rows
}

/** The data set's history, newest first: [kind, key id, rows, details] of each write. */
async function historyOf (id: number): Promise<Array<[string, number | null, number | null, any]>> {
  const { changes } = await json(await fetch(`${base}/datasets/${id}/changes?limit=100`))
  return changes.map((change: any) => [change.kind, change.api_key_id === null ? null : Number(change.api_key_id), change.rows, change.details])
}

async function detailOf (id: number): Promise<any> {
  const response = await fetch(`${base}/datasets/${id}`)
  assert.equal(response.status, 200)
  return await json(response)
}

const typesOf = (detail: any): Record<string, string> => Object.fromEntries(detail.schema.fields.map((field: { name: string, type: string }) => [field.name, field.type]))

/** Nothing left behind by a refused write: no transaction open, no replacement table. */
async function assertNothingHeld (): Promise<void> {
  await until('no connection idle in a transaction', async () => {
    const [{ count }] = await sql<[{ count: number }]>`
      select count(*)::int as count from pg_stat_activity where datname = current_database() and state like 'idle in transaction%'`
    return count === 0
  }, 10_000)
  const [{ count }] = await sql<[{ count: number }]>`select count(*)::int as count from pg_tables where schemaname = 'dataset_rows' and tablename like '%\_next'`
  assert.equal(count, 0, 'no replacement table left')
}

// ─── The oracle ──────────────────────────────────────────────────────────────────────────────────

type Type = 'integer' | 'numeric' | 'boolean' | 'text'
/** A value as sent in CSV: its text; '' is missing. */
type Cell = string

function typeOfText (text: string): Type {
  if (/^[-+]?\d{1,18}$/.test(text)) return 'integer'
  if (/^[-+]?\d+\.\d+$/.test(text)) return 'numeric'
  if (/^(true|false)$/i.test(text)) return 'boolean'
  return 'text'
}
function widen (a: Type | undefined, b: Type | undefined): Type | undefined {
  if (a === undefined || a === b) return b
  if (b === undefined) return a
  if ((a === 'integer' && b === 'numeric') || (a === 'numeric' && b === 'integer')) return 'numeric'
  return 'text'
}

/** The model: column names and types in order, rows (by row order) as the API sends them under the current types. */
type Stored = string | number | boolean | null
interface Model { columns: Array<{ name: string, type: Type }>, rows: Array<Record<string, Stored>> }

/** A cell stored in a column of `type`, as the API sends it. */
function stored (type: Type, cell: Cell): Stored {
  if (cell === '') return null
  if (type === 'integer' || type === 'numeric') return Number(cell)
  if (type === 'boolean') return cell.toLowerCase() === 'true'
  return cell
}

/** A value kept in a column that widens: numbers stay numbers (integer → numeric), anything becomes its text (→ text). */
function widened (type: Type, value: Stored): Stored {
  return value === null || type !== 'text' ? value : String(value)
}

interface Batch { header: string[], rows: Cell[][], onConflict?: 'update' | 'ignore', strict: boolean }

type Outcome = { status: 200, inserted: number, updated: number, ignored: number } | { status: 400 | 409, match: RegExp }

/** What an append of `batch` to a data set keyed by `id` does to `model` (changed in place when it succeeds). */
function applyBatch (model: Model, batch: Batch): Outcome {
  const known = new Set(model.columns.map((column) => column.name))
  const added = batch.header.filter((name) => !known.has(name))
  if (batch.strict && added.length > 0) return { status: 400, match: new RegExp(`"${added[0]}" is not a column`) }
  const idAt = batch.header.indexOf('id')
  const seen = new Map<string, number>()
  for (const [at, row] of batch.rows.entries()) {
    const id = row[idAt]!
    if (seen.has(id)) return { status: 400, match: new RegExp(`line ${at + 2}: .*is there twice: line ${seen.get(id)! + 2} and here`) }
    seen.set(id, at)
  }
  const byId = new Map(model.rows.map((row) => [String(row.id), row]))
  const clash = batch.rows.findIndex((row) => byId.has(row[idAt]!))
  if (batch.onConflict === undefined && clash !== -1) return { status: 409, match: new RegExp(`^line ${clash + 2}: a row with the key \\("id"\\) = \\("${batch.rows[clash]![idAt]}"\\)`) }
  // Types first: each column of the batch widened by its present values, the values kept with it.
  for (const [index, name] of batch.header.entries()) {
    const column = model.columns.find((candidate) => candidate.name === name)
    let type: Type | undefined = column?.type
    for (const row of batch.rows) if (row[index] !== '') type = widen(type, typeOfText(row[index]!))
    if (column === undefined) {
      model.columns.push({ name, type: type ?? 'text' })
    } else if (column.type !== type) {
      column.type = type!
      for (const row of model.rows) row[name] = widened(column.type, row[name] ?? null)
    }
  }
  const typeOf = (name: string): Type => model.columns.find((column) => column.name === name)!.type
  let inserted = 0
  let updated = 0
  let ignored = 0
  for (const row of batch.rows) {
    const values = Object.fromEntries(batch.header.map((name, index) => [name, stored(typeOf(name), row[index]!)]))
    const existing = byId.get(row[idAt]!)
    if (existing === undefined) {
      model.rows.push(values)
      inserted++
    } else if (batch.onConflict === 'update') {
      Object.assign(existing, values)
      updated++
    } else {
      ignored++
    }
  }
  return { status: 200, inserted, updated, ignored }
}

function csvOf (header: string[], rows: Cell[][]): string {
  const field = (text: string): string => (/[",\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text)
  return [header.map(field).join(','), ...rows.map((row) => row.map(field).join(','))].join('\n') + '\n'
}

const EXTRA_COLUMNS = ['n', 'flag', 'note', 'x1', 'x2']
const cellArb: Record<string, fc.Arbitrary<Cell>> = {
  n: fc.oneof({ weight: 6, arbitrary: fc.integer({ min: -50, max: 50 }).map(String) }, { weight: 1, arbitrary: fc.constantFrom('1.5', '-0.25') }, { weight: 2, arbitrary: fc.constant('') }),
  flag: fc.oneof({ weight: 6, arbitrary: fc.constantFrom('true', 'false', 'TRUE') }, { weight: 1, arbitrary: fc.constant('maybe') }, { weight: 2, arbitrary: fc.constant('') }),
  note: fc.oneof(fc.constantFrom('a', 'b, c', 'Ørsta', 'quote "q"', 'multi\nline', '7'), fc.constant('')),
  x1: fc.oneof(fc.integer({ min: 0, max: 9 }).map(String), fc.constant('')),
  x2: fc.constant(''), // a new column with no value at all: text
}

/** A batch: the key, some columns in any order, rows whose ids may clash (with the data set, within the batch). */
const batchArb: fc.Arbitrary<Batch> = fc.record({
  columns: fc.shuffledSubarray(EXTRA_COLUMNS, { minLength: 0, maxLength: 4 }),
  idAt: fc.nat(),
  ids: fc.array(fc.integer({ min: 1, max: 60 }), { minLength: 0, maxLength: 12 }),
  duplicateFree: fc.boolean(),
  onConflict: fc.constantFrom(undefined, 'update' as const, 'ignore' as const),
  strict: fc.oneof({ weight: 1, arbitrary: fc.constant(true) }, { weight: 3, arbitrary: fc.constant(false) }),
}).chain(({ columns, idAt, ids, duplicateFree, onConflict, strict }) => {
  const header = [...columns]
  header.splice(idAt % (columns.length + 1), 0, 'id')
  const unique = duplicateFree ? [...new Set(ids)] : ids
  return fc.tuple(...unique.map((id) => fc.tuple(...header.map((name) => (name === 'id' ? fc.constant(String(id)) : cellArb[name]!))))).map((rows) => ({ header, rows, onConflict, strict }))
})

describe('appends and upserts, against the oracle', () => {
  it('matches the model after every generated batch: rows, types, counts, refusals', async () => {
    const runs = fc.sample(fc.array(batchArb, { minLength: 4, maxLength: 8 }), { seed: SEED, numRuns: 8 })
    // What the batches reached, so that a generator that drifts to trivial batches fails the test.
    const reached = new Set<string>()
    for (const [run, batches] of runs.entries()) {
      const model: Model = { columns: [{ name: 'id', type: 'integer' }, { name: 'n', type: 'integer' }, { name: 'flag', type: 'boolean' }, { name: 'note', type: 'text' }], rows: [] }
      const initial = { header: ['id', 'n', 'flag', 'note'], rows: [['1', '3', 'true', 'first'], ['2', '', 'false', '']], strict: false }
      const created = await create(csvOf(initial.header, initial.rows), `?key=id&name=oracle-${run}`)
      assert.deepEqual(created.dataset.key, ['id'])
      applyBatch(model, initial)
      const id = created.dataset.id
      for (const [step, batch] of batches.entries()) {
        const context = `run ${run} step ${step}: ${JSON.stringify(batch)}`
        const before = (await detailOf(id)).dataset
        const typesBefore = model.columns.map((column) => `${column.name}:${column.type}`).join()
        const outcome = applyBatch(model, batch)
        reached.add(outcome.status === 200 ? `200 ${batch.onConflict ?? 'plain'}${outcome.updated > 0 ? ' updated' : ''}${outcome.ignored > 0 ? ' ignored' : ''}` : String(outcome.match).includes('strict') || String(outcome.match).includes('is not a column') ? `${outcome.status} strict` : String(outcome.match).includes('twice') ? `${outcome.status} twice` : String(outcome.status))
        if (outcome.status === 200 && typesBefore !== model.columns.map((column) => `${column.name}:${column.type}`).join()) reached.add('schema changed')
        const query = new URLSearchParams({ ...(batch.onConflict !== undefined && { on_conflict: batch.onConflict }), ...(batch.strict && { columns: 'strict' }) })
        const answer = await send('POST', `/datasets/${id}/rows?${query.toString()}`, csvOf(batch.header, batch.rows))
        assert.equal(answer.status, outcome.status, `${context} → ${JSON.stringify(answer.body)}`)
        if (outcome.status === 200) {
          assert.equal(answer.body.write.status, 'done')
          assert.deepEqual({ inserted: answer.body.write.inserted, updated: answer.body.write.updated, ignored: answer.body.write.ignored },
            { inserted: outcome.inserted, updated: outcome.updated, ignored: outcome.ignored }, context)
          assert.ok(new Date(answer.body.dataset.updated_at) > new Date(before.updated_at), `${context}: updated_at moves`)
        } else {
          assert.match(answer.body.detail, outcome.match, context)
          const after = (await detailOf(id)).dataset
          assert.equal(after.updated_at, before.updated_at, `${context}: a refused write changes nothing`)
        }
        const detail = await detailOf(id)
        assert.deepEqual(typesOf(detail), Object.fromEntries(model.columns.map((column) => [column.name, column.type])), context)
        assert.equal(detail.dataset.rows, model.rows.length, context)
        const want = model.rows.map((row) => Object.fromEntries(model.columns.map((column) => [column.name, row[column.name] ?? null])))
        assert.deepEqual(await rowsOf(id), want, context)
        // A filter on the (maybe widened) key finds the row: the codec and the table agree.
        if (model.rows.length > 0) {
          const page = await json(await fetch(`${base}/datasets/${id}/rows?id=${String(model.rows[0]!.id)}`))
          assert.equal(page.rows.length, 1, `${context}: ${JSON.stringify(page)}`)
        }
      }
    }
    for (const kind of ['200 plain', '200 update updated', '200 ignore ignored', '400 strict', '400 twice', '409', 'schema changed']) assert.ok(reached.has(kind), `the batches reached ${kind}: ${[...reached].join('; ')}`)
    const widenedTo = (await sql<Array<{ type: string }>>`select distinct c.type from dataset_columns c join datasets d on d.id = c.dataset_id where d.name like 'oracle-%' and c.name in ('n', 'flag')`).map((row) => row.type)
    assert.ok(widenedTo.includes('numeric') && widenedTo.includes('text'), `columns widened: ${widenedTo.join(', ')}`)
    await assertNothingHeld()
  })

  it('appends JSON and NDJSON by name in any order, a missing column null, a new key a new column', async () => {
    const { dataset } = await create('city,population\nOslo,709000\n')
    let answer = await send('POST', `/datasets/${dataset.id}/rows`, JSON.stringify([{ population: 291000, city: 'Bergen' }, { city: 'Tromsø', founded: '1794-01-01' }]), 'application/json')
    assert.equal(answer.status, 200, JSON.stringify(answer.body))
    answer = await send('POST', `/datasets/${dataset.id}/rows`, '{"city":"Bodø","population":"many"}\n', 'application/x-ndjson')
    assert.equal(answer.status, 200, JSON.stringify(answer.body))
    assert.deepEqual(typesOf(answer.body), { city: 'text', population: 'text', founded: 'date' })
    assert.deepEqual(await rowsOf(dataset.id), [
      { city: 'Oslo', population: '709000', founded: null },
      { city: 'Bergen', population: '291000', founded: null },
      { city: 'Tromsø', population: null, founded: '1794-01-01' },
      { city: 'Bodø', population: 'many', founded: null },
    ])
    assert.equal(answer.body.dataset.rows, 4)
    assert.equal(answer.body.schema.fields.find((field: { name: string }) => field.name === 'founded').nullable, true)
    // The SQL view follows the new columns and types (it is dropped and made again with them).
    const [view] = await sql<[{ columns: string[] }]>`
      select array_agg(attname::text order by attnum) as columns from pg_attribute where attrelid = ${`dataset_views.dataset_${dataset.id}`}::regclass and attnum > 0`
    assert.deepEqual(view.columns, ['city', 'population', 'founded'])
  })

  it('moves what is kept per version (totals, facets) and the statistics and search indexes with the rows', async () => {
    const { dataset } = await create('word,n\nalpha,1\nbeta,2\nalpha,3\n')
    const view = async (): Promise<any> => await json(await fetch(`${base}/datasets/${dataset.id}/rows?word=alpha&_facet=n&_count=exact`))
    assert.equal((await view()).total, 2)
    await until('statistics and indexes', async () => (await detailOf(dataset.id)).stats.computed_at !== null)
    const searchIndex = async (): Promise<string | undefined> => (await sql<Array<{ indexdef: string }>>`
      select indexdef from pg_indexes where schemaname = 'dataset_rows' and indexname = ${`ds_${dataset.id}_search`}`)[0]?.indexdef
    assert.doesNotMatch((await searchIndex()) ?? '', /c2/, 'one text column: the document is c1')
    const appended = await send('POST', `/datasets/${dataset.id}/rows`, 'word,n\nalpha,many\n')
    assert.equal(appended.status, 200)
    const after = await view()
    assert.equal(after.total, 3, 'the kept total is of the old version')
    assert.equal(after.facets.n.by, 'value', 'n is text now: faceted by value, not bins')
    await until('the search index of the new document', async () => /c2/.test((await searchIndex()) ?? ''))
    const found = await json(await fetch(`${base}/datasets/${dataset.id}/rows?_q=many`))
    assert.deepEqual(found.rows, [{ word: 'alpha', n: 'many' }])
    assert.equal((await detailOf(dataset.id)).stats.count, 4)
  })

  it('refuses on_conflict without a key, and appends to a data set that failed or is missing', async () => {
    const { dataset } = await create('a\n1\n')
    const noKey = await send('POST', `/datasets/${dataset.id}/rows?on_conflict=update`, 'a\n2\n')
    assert.equal(noKey.status, 400)
    assert.match(noKey.body.detail, /no key/)
    assert.equal((await send('POST', '/datasets/999999/rows', 'a\n2\n')).status, 404)
    const broken = await sendChunked('POST', '/datasets', 'a,b\n1,2\n3\n')
    assert.equal(broken.status, 202)
    await until('the import failed', async () => (await detailOf(broken.body.dataset.id)).dataset.status === 'failed')
    const refused = await send('POST', `/datasets/${broken.body.dataset.id}/rows`, 'a,b\n1,2\n')
    assert.equal(refused.status, 409)
    assert.equal((await send('PUT', `/datasets/${broken.body.dataset.id}/data`, 'a,b\n1,2\n')).status, 409)
  })
})

describe('keys', () => {
  it('refuses a key given twice in one file, naming both lines, and keeps nothing', async () => {
    const [{ count: tablesBefore }] = await sql<[{ count: number }]>`select count(*)::int as count from pg_tables where schemaname = 'dataset_rows'`
    const answer = await send('POST', '/datasets?key=country,year', 'country,year,value\nNO,2020,1\nSE,2020,2\n"NO",2020,3\n')
    assert.equal(answer.status, 400, JSON.stringify(answer.body))
    assert.match(answer.body.detail, /^line 4: the key \("country", "year"\) = \("NO", "2020"\) is there twice: line 2 and here/)
    assert.equal(answer.body.line, 4)
    assert.deepEqual(answer.body.duplicate_of, { line: 2 })
    const [{ count: tablesAfter }] = await sql<[{ count: number }]>`select count(*)::int as count from pg_tables where schemaname = 'dataset_rows'`
    assert.equal(tablesAfter, tablesBefore)
    const missing = await send('POST', '/datasets?key=country', 'country,value\nNO,1\n,2\n')
    assert.equal(missing.status, 400)
    assert.match(missing.body.detail, /^line 3: the key column "country" has no value/)
    const unknown = await send('POST', '/datasets?key=nope', 'country\nNO\n')
    assert.equal(unknown.status, 400)
    assert.match(unknown.body.detail, /"nope" is not a column/)
  })

  it('declares and drops a key on a data set: checked against its rows, then enforced', async () => {
    const { dataset } = await create('k,v\n1,a\n2,b\n2,c\n')
    const clash = await fetch(`${base}/datasets/${dataset.id}/key`, { method: 'PUT', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify({ key: ['k'] }) })
    assert.equal(clash.status, 409)
    assert.match((await json(clash)).detail, /\("k"\) = \("2"\) is there twice/)
    const unknown = await fetch(`${base}/datasets/${dataset.id}/key`, { method: 'PUT', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify({ key: ['zz'] }) })
    assert.equal(unknown.status, 400)
    const declared = await fetch(`${base}/datasets/${dataset.id}/key`, { method: 'PUT', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify({ key: ['v'] }) })
    assert.equal(declared.status, 200)
    assert.deepEqual((await json(declared)).dataset.key, ['v'])
    const twice = await send('POST', `/datasets/${dataset.id}/rows`, 'k,v\n9,a\n')
    assert.equal(twice.status, 409)
    assert.match(twice.body.detail, /line 2: a row with the key \("v"\) = \("a"\) is already in data set/)
    const dropped = await fetch(`${base}/datasets/${dataset.id}/key`, { method: 'PUT', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify({ key: null }) })
    assert.equal(dropped.status, 200)
    assert.equal((await json(dropped)).dataset.key, null)
    assert.equal((await send('POST', `/datasets/${dataset.id}/rows`, 'k,v\n9,a\n')).status, 200)
  })

  it('keeps the key unique under concurrent upserts and appends', async () => {
    const { dataset } = await create(csvOf(['id', 'v'], Array.from({ length: 10 }, (_, at) => [String(at + 1), 'initial'])), '?key=id')
    const batch = (from: number, to: number, tag: string): string => csvOf(['id', 'v'], Array.from({ length: to - from + 1 }, (_, at) => [String(from + at), tag]))
    const [first, second] = await Promise.all([
      send('POST', `/datasets/${dataset.id}/rows?on_conflict=update`, batch(5, 30, 'first')),
      send('POST', `/datasets/${dataset.id}/rows?on_conflict=update`, batch(20, 40, 'second')),
    ])
    assert.equal(first.status, 200, JSON.stringify(first.body))
    assert.equal(second.status, 200, JSON.stringify(second.body))
    const rows = await rowsOf(dataset.id)
    assert.equal(rows.length, 40)
    assert.equal(new Set(rows.map((row) => row.id)).size, 40, 'every key once')
    assert.equal(first.body.write.inserted + second.body.write.inserted, 30, 'each new key inserted by exactly one of them')
    assert.equal((await detailOf(dataset.id)).dataset.rows, 40)
    // Plain appends of the same new key at once: one wins, the other is told of the clash.
    const racing = await Promise.all([send('POST', `/datasets/${dataset.id}/rows`, 'id,v\n41,a\n'), send('POST', `/datasets/${dataset.id}/rows`, 'id,v\n41,b\n')])
    assert.deepEqual(racing.map((answer) => answer.status).sort(), [200, 409])
    assert.equal((await rowsOf(dataset.id)).filter((row) => row.id === 41).length, 1)
  })
})

describe('replace', () => {
  it('is atomic for a reader reading in a loop: the old rows or the new ones, never a mix, never none', async () => {
    const generation = (g: number): string => csvOf(['id', 'gen', ...(g % 2 === 0 ? [] : ['extra'])], Array.from({ length: 40 + g * 7 }, (_, at) => [String(at + 1), String(g), ...(g % 2 === 0 ? [] : [`e${at}`])]))
    const { dataset } = await create(generation(0), '?key=id')
    let reading = true
    const seen = new Set<number>()
    let reads = 0
    const reader = (async () => {
      while (reading) {
        const rows = await rowsOf(dataset.id)
        reads++
        assert.ok(rows.length > 0, 'never an empty set')
        const gens = new Set(rows.map((row) => row.gen))
        assert.equal(gens.size, 1, `one generation per read, saw ${[...gens].join(', ')}`)
        const g = rows[0].gen as number
        assert.equal(rows.length, 40 + g * 7, `generation ${g} whole`)
        assert.deepEqual(rows.map((row) => row.id), Array.from({ length: rows.length }, (_, at) => at + 1))
        seen.add(g)
      }
    })()
    for (let g = 1; g <= 6; g++) {
      const answer = await send('PUT', `/datasets/${dataset.id}/data`, generation(g))
      assert.equal(answer.status, 200, JSON.stringify(answer.body))
      assert.equal(answer.body.dataset.rows, 40 + g * 7)
      assert.deepEqual(answer.body.dataset.key, ['id'], 'the key stays')
      assert.equal(answer.body.write.kind, 'replace')
    }
    reading = false
    await reader
    assert.ok(reads > 6 && seen.has(6), `the reader read throughout (${reads} reads, generations ${[...seen].join(', ')})`)
    const detail = await detailOf(dataset.id)
    assert.equal(detail.dataset.name, dataset.name)
    assert.deepEqual(typesOf(detail), { id: 'integer', gen: 'integer' })
    // The key holds on the new rows: a replace whose rows repeat it is refused, and nothing changes.
    const repeated = await send('PUT', `/datasets/${dataset.id}/data`, 'id,gen\n1,7\n1,8\n')
    assert.equal(repeated.status, 400)
    assert.match(repeated.body.detail, /line 2 and here/)
    assert.equal((await rowsOf(dataset.id)).length, 40 + 6 * 7)
    await assertNothingHeld()
  })
})

describe('hostile bodies', () => {
  it('leave the data set as it was and no connection in a transaction', async () => {
    const { dataset } = await create('id,name,score\n1,a,1.5\n2,b,2\n', '?key=id')
    const before = await detailOf(dataset.id)
    const bodies: Array<[string, string, string]> = [
      ['a short row', 'id,name,score\n3,c,1\n4,d\n', 'text/csv'],
      ['an unclosed quote', 'id,name,score\n3,"c,1\n', 'text/csv'],
      ['a NUL in a value', 'id,name,score\n3,c\u0000d,1\n', 'text/csv'],
      ['a NUL in a column name', 'id,na\u0000me\n3,c\n', 'text/csv'],
      ['invalid UTF-8', 'id,name\n3,caf\xe9\n', 'text/csv; charset=utf-8'],
      ['JSON that is not an array of objects', '[1, 2]', 'application/json'],
      ['malformed NDJSON', '{"id": 3}\n{"id": \n', 'application/x-ndjson'],
      ['a JSON object (no data)', '{"id": 3}', 'application/json'],
      ['a missing key', 'name\nz\n', 'text/csv'],
      ['a key twice', 'id\n5\n5\n', 'text/csv'],
    ]
    for (const [what, body, type] of bodies) {
      const payload = what === 'invalid UTF-8' ? Buffer.from(body, 'latin1') : body
      for (const [method, path] of [['POST', `/datasets/${dataset.id}/rows`], ['PUT', `/datasets/${dataset.id}/data`]] as const) {
        const response = await fetch(`${base}${path}`, { method, headers: { ...auth, 'content-type': type }, body: payload })
        const answer = await json(response)
        assert.equal(response.status, 400, `${what} (${method}): ${JSON.stringify(answer)}`)
      }
    }
    // Wrong types are no error: they widen the column, as an import would.
    const widened = await send('POST', `/datasets/${dataset.id}/rows`, 'id,score\n3,lots\n')
    assert.equal(widened.status, 200)
    assert.equal(typesOf(widened.body).score, 'text')
    const after = await detailOf(dataset.id)
    assert.equal(after.dataset.rows, before.dataset.rows + 1)
    assert.deepEqual((await rowsOf(dataset.id)).map((row) => row.score), ['1.5', '2', 'lots'])
    await assertNothingHeld()
  })
})

describe('the job path', () => {
  it('appends and replaces a body of unknown length in a job: 202, then the write done on the data set', async () => {
    const { dataset } = await create('id,v\n1,a\n', '?key=id')
    const queued = await sendChunked('POST', `/datasets/${dataset.id}/rows?on_conflict=update`, 'id,v\n1,z\n2,b\n3,c\n')
    assert.equal(queued.status, 202, JSON.stringify(queued.body))
    assert.equal(queued.body.write.status, 'queued')
    const done = await until('the append job', async () => {
      const detail = await detailOf(dataset.id)
      return detail.write?.status === 'done' ? detail : undefined
    })
    assert.deepEqual([done.write.inserted, done.write.updated], [2, 1])
    assert.equal(done.dataset.rows, 3)
    assert.deepEqual(await rowsOf(dataset.id), [{ id: 1, v: 'z' }, { id: 2, v: 'b' }, { id: 3, v: 'c' }])

    const failing = await sendChunked('POST', `/datasets/${dataset.id}/rows`, 'id,v\n4,d\n4,e\n')
    assert.equal(failing.status, 202)
    const failed = await until('the failing append job', async () => {
      const detail = await detailOf(dataset.id)
      return detail.write?.id === failing.body.write.id && detail.write.status === 'failed' ? detail : undefined
    })
    assert.match(failed.write.error.detail, /line 2 and here/)
    assert.equal(failed.write.error.line, 3)
    assert.equal(failed.dataset.rows, 3, 'nothing of it written')

    const large = csvOf(['id', 'v'], Array.from({ length: 3000 }, (_, at) => [String(at + 1), `row ${at + 1}`]))
    assert.ok(large.length > SYNC_MAX_BYTES)
    const replacing = await send('PUT', `/datasets/${dataset.id}/data`, large)
    assert.equal(replacing.status, 202)
    const replaced = await until('the replace job', async () => {
      const detail = await detailOf(dataset.id)
      return detail.write?.id === replacing.body.write.id && detail.write.status === 'done' ? detail : undefined
    })
    assert.equal(replaced.dataset.rows, 3000)
    const [{ pieces }] = await sql<[{ pieces: number }]>`select count(*)::int as pieces from dataset_upload_pieces`
    assert.equal(pieces, 0, 'the stored uploads are gone')
    assert.equal(replaced.write.rows_read, null, 'fewer rows than one progress report')

    // Each write the jobs did is in the history, by the key that sent it; the failed one is not.
    const history = await historyOf(dataset.id)
    assert.deepEqual(history.map(([kind, by, rows]) => [kind, by, rows]), [['replace', Number(keyId), 3000], ['upsert', Number(keyId), 3], ['create', Number(keyId), 1]])
    assert.deepEqual(history[0]![3].columns, [{ name: 'id', type: 'integer' }, { name: 'v', type: 'text' }])
    assert.deepEqual({ ...history[1]![3], bytes: undefined }, { source: 'upload', format: 'csv', bytes: undefined, inserted: 2, updated: 1, ignored: 0, on_conflict: 'update' })
    assert.equal(history[1]![3].bytes, 'id,v\n1,z\n2,b\n3,c\n'.length)
    await assertNothingHeld()
  })

  it('reports the rows a write job has read so far', async () => {
    const { dataset } = await create('id,v\n0,start\n')
    const rows = 120_000
    const body = csvOf(['id', 'v'], Array.from({ length: rows }, (_, at) => [String(at + 1), 'x']))
    const queued = await sendChunked('POST', `/datasets/${dataset.id}/rows`, body)
    assert.equal(queued.status, 202)
    const done = await until('the append job', async () => {
      const detail = await detailOf(dataset.id)
      return detail.write?.status === 'done' ? detail : undefined
    }, 120_000)
    assert.equal(done.write.inserted, rows)
    // Reported every 50,000 rows (at the end of the batch that crosses them): the last report past 100,000.
    assert.ok(done.write.rows_read >= 100_000 && done.write.rows_read < rows, `rows_read ${done.write.rows_read}`)
  })
})

describe('a large append (the data set built again beside its table)', () => {
  it('upserts, widens and adds columns as the row-by-row path does; the indexes come back with the statistics job', async () => {
    const { dataset } = await create(csvOf(['id', 'v', 'note'], Array.from({ length: 1000 }, (_, at) => [String(at + 1), String(at), `old ${at + 1}`])), '?key=id')
    const indexesOf = async (): Promise<string[]> => (await sql<Array<{ indexname: string }>>`
      select indexname from pg_indexes where schemaname = 'dataset_rows' and tablename = ${`ds_${dataset.id}`} order by indexname`).map((row) => row.indexname)
    // The primary key, the key, one per column, one search index (one text column).
    await until('statistics and indexes', async () => (await indexesOf()).length === 6 && (await detailOf(dataset.id)).stats.computed_at !== null)
    const tableOid = async (): Promise<number> => (await sql<[{ oid: number }]>`select ${`dataset_rows.ds_${dataset.id}`}::regclass::oid::int8 as oid`)[0].oid
    const before = await tableOid()
    // 60,000 rows (over the bulk threshold): ids 501…60,500, so 500 update old rows; v widens to numeric; a new column.
    const rows = Array.from({ length: 60_000 }, (_, at) => [String(at + 501), at === 30_000 ? '1.5' : String(-at), `new ${at + 501}`, at % 2 === 0 ? 'true' : 'false'])
    const answer = await send('POST', `/datasets/${dataset.id}/rows?on_conflict=update`, csvOf(['id', 'v', 'note', 'flag'], rows))
    assert.equal(answer.status, 202, JSON.stringify(answer.body))
    const done = await until('the append job', async () => {
      const detail = await detailOf(dataset.id)
      return detail.write?.status === 'done' ? detail : detail.write?.status === 'failed' ? assert.fail(JSON.stringify(detail.write)) : undefined
    }, 120_000)
    assert.deepEqual([done.write.inserted, done.write.updated, done.write.ignored], [59_500, 500, 0])
    assert.equal(done.dataset.rows, 60_500)
    assert.notEqual(await tableOid(), before, 'a table built beside the old one and swapped in')
    assert.deepEqual(typesOf(done), { id: 'integer', v: 'numeric', note: 'text', flag: 'boolean' })
    const page = async (query: string): Promise<any[]> => (await json(await fetch(`${base}/datasets/${dataset.id}/rows?${query}`))).rows
    assert.deepEqual(await page('limit=1'), [{ id: 1, v: 0, note: 'old 1', flag: null }], 'old rows first, in their order')
    assert.deepEqual(await page('id=501'), [{ id: 501, v: 0, note: 'new 501', flag: true }], 'an old row updated in place')
    assert.deepEqual(await page('id=30501'), [{ id: 30_501, v: 1.5, note: 'new 30501', flag: true }])
    assert.deepEqual(await page('sort=-id&limit=1'), [{ id: 60_500, v: -59_999, note: 'new 60500', flag: false }])
    const [{ count, last }] = await sql.unsafe<[{ count: number, last: number }]>(`select count(*)::int as count, (select c1 from dataset_rows.ds_${dataset.id} order by _row desc limit 1)::int as last from dataset_rows.ds_${dataset.id}`)
    assert.deepEqual([count, last], [60_500, 60_500], 'the new rows numbered after the old ones, in file order')
    // The key still holds, and the view of SQL queries has the new column.
    assert.equal((await send('POST', `/datasets/${dataset.id}/rows`, 'id,v\n1,2\n')).status, 409)
    const [view] = await sql<[{ columns: string[] }]>`
      select array_agg(attname::text order by attnum) as columns from pg_attribute where attrelid = ${`dataset_views.dataset_${dataset.id}`}::regclass and attnum > 0`
    assert.deepEqual(view.columns, ['id', 'v', 'note', 'flag'])
    await until('the indexes built again by the statistics job, one more column', async () => (await indexesOf()).length === 7, 120_000)
    assert.deepEqual(await page('note=new%2060000'), [{ id: 60_000, v: -59_499, note: 'new 60000', flag: false }])
    await assertNothingHeld()
  })
})

describe('reading a write as the client asks', () => {
  it('takes delimiter, decimal and types on appends and replaces, at once and by a job', async () => {
    const { dataset } = await create('code,amount,n\n1,1.5,1\n')
    assert.deepEqual(typesOf(await detailOf(dataset.id)), { code: 'integer', amount: 'numeric', n: 'integer' })
    // A chosen type is the type of the body's values: text widens `code`, leading zeros kept.
    const appended = await send('POST', `/datasets/${dataset.id}/rows?delimiter=;&decimal=,&types=code:text,born:date`, 'code;amount;born\n0123;2,5;2020-01-02\n')
    assert.equal(appended.status, 200, JSON.stringify(appended.body))
    assert.deepEqual(typesOf(appended.body), { code: 'text', amount: 'numeric', n: 'integer', born: 'date' })
    const byJob = await sendChunked('POST', `/datasets/${dataset.id}/rows?delimiter=tab&decimal=,&types=n:numeric`, 'code\tamount\tn\n0042\t1.234,5\t7\n')
    assert.equal(byJob.status, 202, JSON.stringify(byJob.body))
    await until('the append job', async () => (await detailOf(dataset.id)).write?.status === 'done')
    assert.deepEqual(await rowsOf(dataset.id), [
      { code: '1', amount: 1.5, n: 1, born: null },
      { code: '0123', amount: 2.5, n: null, born: '2020-01-02' },
      { code: '0042', amount: 1234.5, n: 7, born: null },
    ])
    assert.equal(typesOf(await detailOf(dataset.id)).n, 'numeric')

    const replaced = await sendChunked('PUT', `/datasets/${dataset.id}/data?delimiter=|&types=code:text`, 'code|when\n0099|2021-05-06\n')
    assert.equal(replaced.status, 202)
    await until('the replace job', async () => (await detailOf(dataset.id)).write?.status === 'done')
    assert.deepEqual(await rowsOf(dataset.id), [{ code: '0099', when: '2021-05-06' }])

    // Refused before any row is written: a wrong option at once, a value not of its chosen type with its line.
    const wrongDelimiter = await send('POST', `/datasets/${dataset.id}/rows?delimiter=x`, 'code\n1\n')
    assert.equal(wrongDelimiter.status, 400)
    assert.match(wrongDelimiter.body.detail, /^delimiter must be one of/)
    const notADate = await send('PUT', `/datasets/${dataset.id}/data?types=when:date`, 'code,when\n1,2021-05-06\n2,soon\n')
    assert.equal(notADate.status, 400)
    assert.equal(notADate.body.line, 3)
    assert.match(notADate.body.detail, /"soon".*not a date/)
    const unknown = await send('POST', `/datasets/${dataset.id}/rows?types=nope:text`, 'code\n1\n')
    assert.equal(unknown.status, 400)
    assert.match(unknown.body.detail, /`types` names "nope"/)
    assert.deepEqual(await rowsOf(dataset.id), [{ code: '0099', when: '2021-05-06' }], 'nothing of the refused writes')
    await assertNothingHeld()
  })

  it('records appends, upserts, replaces and key changes in the history, with their key', async () => {
    const { dataset } = await create('id,v\n1,a\n')
    assert.equal((await send('POST', `/datasets/${dataset.id}/rows`, 'id,v,w\n2,b,x\n')).status, 200)
    const keyed = await fetch(`${base}/datasets/${dataset.id}/key`, { method: 'PUT', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify({ key: ['id'] }) })
    assert.equal(keyed.status, 200)
    assert.equal((await send('POST', `/datasets/${dataset.id}/rows?on_conflict=ignore`, 'id,v\n2,B\n3,c\n')).status, 200)
    assert.equal((await send('POST', `/datasets/${dataset.id}/rows`, 'id,v\n3,again\n')).status, 409, 'a refused write')
    assert.equal((await send('PUT', `/datasets/${dataset.id}/data`, 'id\n9\n')).status, 200)
    const by = Number(keyId)
    assert.deepEqual(await historyOf(dataset.id), [
      ['replace', by, 1, { source: 'upload', format: 'csv', bytes: 5, columns: [{ name: 'id', type: 'integer' }] }],
      ['upsert', by, 1, { source: 'upload', format: 'csv', bytes: 13, inserted: 1, updated: 0, ignored: 1, on_conflict: 'ignore' }],
      ['patch', by, null, { key: ['id'] }],
      ['append', by, 1, { source: 'upload', format: 'csv', bytes: 13, inserted: 1, updated: 0, ignored: 0, columns_added: ['w'] }],
      ['create', by, 1, (await historyOf(dataset.id)).at(-1)![3]],
    ])
  })
})
