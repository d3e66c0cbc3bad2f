// POST /datasets/sql (SQL_QUERIES=true) through HTTP on a real PostgreSQL: results checked against
// an oracle computed here from generated rows (fast-check, fixed seed), the views' column names
// (quoting, 63-byte cuts, duplicates), the row and byte caps, the deadline (before and after the
// first rows), the off switch, views kept in step with imports and deletes, and a corpus of escape
// attempts — every one refused, and the database and the reader's sessions unchanged afterwards.
import assert from 'node:assert/strict'
import { after, describe, it } from 'node:test'
import fc from 'fast-check'
import { createApiKeysRepository } from '../src/auth/api-keys.ts'
import { createSql } from '../src/db/pool.ts'
import { syncViews, readerRoleName } from '../src/routes/datasets/sql-queries.ts'
import { viewColumnNames } from '../src/routes/datasets/table.ts'
import { buildTestApp, listen } from './helpers/app.ts'
import { testServerUrl, type Cleanup } from './helpers/database.ts'

const SEED = Number(process.env.FC_SEED ?? 20_261_219)
const MAX_ROWS = 500
const MAX_BYTES = 64 * 1024
const TIMEOUT_MS = 1_500

const { app, sql, sqlQueries } = await buildTestApp({ after }, {
  SQL_QUERIES: 'true', SQL_QUERIES_MAX_ROWS: String(MAX_ROWS), SQL_QUERIES_MAX_BYTES: String(MAX_BYTES), QUERY_TIMEOUT_MS: String(TIMEOUT_MS),
})
const base = await listen(app)
const { key } = await createApiKeysRepository(sql).create('tests')
const auth = { authorization: `Bearer ${key}` }

/** After the test database is dropped: roles are the cluster's, not the database's. */
async function dropReaderRole (of: typeof sql, cleanup: Cleanup): Promise<void> {
  const [{ database }] = await of<[{ database: string }]>`select current_database() as database`
  cleanup.after(async () => {
    const admin = createSql(testServerUrl(), { max: 1 })
    await admin.unsafe(`drop role if exists "${readerRoleName(database)}"`)
    await admin.end()
  })
}
await dropReaderRole(sql, { after })

interface SqlAnswer { status: number, body: any, text: string, contentType: string }

async function query (text: string): Promise<SqlAnswer> {
  const response = await fetch(`${base}/datasets/sql`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ sql: text }) })
  const body = await response.text()
  let parsed: unknown
  try {
    parsed = JSON.parse(body)
  } catch {
    parsed = undefined
  }
  return { status: response.status, body: parsed, text: body, contentType: response.headers.get('content-type') ?? '' }
}

async function ok (text: string): Promise<any> {
  const answer = await query(text)
  assert.equal(answer.status, 200, `${text}: ${answer.text.slice(0, 500)}`)
  assert.match(answer.contentType, /^application\/json/)
  assert.equal(answer.body.truncated, null, `${text}: not truncated`)
  assert.equal(answer.body.row_count, answer.body.rows.length)
  return answer.body
}

async function upload (csv: string, name = 'set'): Promise<{ id: number }> {
  const response = await fetch(`${base}/datasets?name=${name}`, { method: 'POST', headers: { ...auth, 'content-type': 'text/csv' }, body: csv })
  const answer: any = await response.json()
  assert.equal(response.status, 201, JSON.stringify(answer))
  return answer.dataset
}

async function remove (id: number): Promise<void> {
  const response = await fetch(`${base}/datasets/${id}`, { method: 'DELETE', headers: auth })
  assert.equal(response.status, 204)
}

// ─── The oracle ─────────────────────────────────────────────────────────────────────────────────

interface Person { id: number, name: string, score: number | null, active: boolean, day: string }

const people = fc.array(fc.record({
  name: fc.constantFrom('Ada', 'Bo', 'Cy', 'Dee', 'Éva', 'Zoë'),
  score: fc.option(fc.integer({ min: -1000, max: 1000 }), { nil: null, freq: 5 }),
  active: fc.boolean(),
  day: fc.integer({ min: 0, max: 3650 }).map((days) => new Date(Date.UTC(2020, 0, 1) + days * 86_400_000).toISOString().slice(0, 10)),
}), { minLength: 1, maxLength: 60 }).map((rows) => rows.map((row, index): Person => ({ id: index + 1, ...row })))

function csvOf (rows: Person[]): string {
  return 'id,name,score,active,day\n' + rows.map((row) => `${row.id},${row.name},${row.score ?? ''},${row.active},${row.day}`).join('\n') + '\n'
}

describe('POST /datasets/sql', () => {
  it('answers queries over the views as an oracle computes them from the same rows', async () => {
    await fc.assert(fc.asyncProperty(people, fc.integer({ min: -1000, max: 1000 }), async (rows, threshold) => {
      const { id } = await upload(csvOf(rows))
      try {
        const all = await ok(`select * from dataset_${id} order by id`)
        assert.deepEqual(all.columns, [
          { name: 'id', type: 'bigint' }, { name: 'name', type: 'text' }, { name: 'score', type: 'bigint' }, { name: 'active', type: 'boolean' }, { name: 'day', type: 'date' },
        ].map((column) => rows.every((row) => row.score === null) && column.name === 'score' ? { ...column, type: 'text' } : column))
        assert.deepEqual(all.rows, rows.map((row) => [row.id, row.name, row.score === null ? null : row.score, row.active, row.day]))

        const groups = await ok(`select name, count(*) as n, sum(score) as total, bool_or(active) as any_active, max(day) as last_day
          from dataset_${id} where score > ${threshold} or score is null group by name order by name collate "C"`)
        const expected = new Map<string, { n: number, total: number | null, any: boolean, last: string }>()
        for (const row of rows) {
          if (row.score !== null && row.score <= threshold) continue
          const group = expected.get(row.name) ?? { n: 0, total: null, any: false, last: '' }
          group.n++
          if (row.score !== null) group.total = (group.total ?? 0) + row.score
          group.any ||= row.active
          if (row.day > group.last) group.last = row.day
          expected.set(row.name, group)
        }
        const scoreIsText = rows.every((row) => row.score === null)
        if (!scoreIsText) {
          assert.deepEqual(groups.rows, [...expected.entries()].sort(([a], [b]) => a < b ? -1 : a > b ? 1 : 0)
            .map(([name, group]) => [name, group.n, group.total, group.any, group.last]))
          assert.deepEqual(groups.columns.map((column: { type: string }) => column.type), ['text', 'bigint', 'numeric', 'boolean', 'date'])
        }
      } finally {
        await remove(id)
      }
    }), { seed: SEED, numRuns: 8 })
  })

  it('names the view\'s columns as the users did: quoted, cut to 63 bytes, unique again once cut', async () => {
    const long = 'å'.repeat(40) // 80 bytes
    const names = ['Mixed Case', 'with "quotes"', 'select', `${long}x`, `${long}y`, 'a;b']
    assert.deepEqual(viewColumnNames(names), ['Mixed Case', 'with "quotes"', 'select', 'å'.repeat(31), `${'å'.repeat(30)}_5`, 'a;b'])
    assert.deepEqual(viewColumnNames(['a', 'a', 'a_2']), ['a', 'a_2', 'a_2_3'])
    const csv = names.map((name) => `"${name.replaceAll('"', '""')}"`).join(',') + '\n1,2,3,4,5,6\n'
    const { id } = await upload(csv)
    const answer = await ok(`select "Mixed Case", "with ""quotes""", "select", "${'å'.repeat(31)}", "${'å'.repeat(30)}_5", "a;b" from dataset_${id}`)
    assert.deepEqual(answer.rows, [[1, 2, 3, 4, 5, 6]])
    assert.deepEqual((await ok(`select * from dataset_${id}`)).columns.map((column: { name: string }) => column.name), viewColumnNames(names))
    await remove(id)
  })

  it('sends values as the rest of the API does: numbers, ISO 8601 timestamps in UTC, dates, JSON', async () => {
    const answer = await ok(`select 1::int as i, 9007199254740993::int8 as big, 1.50::numeric as n, 'NaN'::float8 as nan, true as b,
      '2026-01-02'::date as d, '2026-01-02 10:00:00.123456+02'::timestamptz as ts, '2026-01-02 10:00:00'::timestamp as local,
      '{"a": [1, null]}'::jsonb as j, array[1, 2] as arr, null::text as nothing, '\\x0102'::bytea as bytes, 1 as i`)
    assert.deepEqual(answer.rows, [[1, '9007199254740993', 1.5, 'NaN', true, '2026-01-02', '2026-01-02T08:00:00.123456Z', '2026-01-02T10:00:00', { a: [1, null] }, [1, 2], null, '\\x0102', 1]])
    assert.deepEqual(answer.columns.map((column: { type: string }) => column.type), ['integer', 'bigint', 'numeric', 'double precision', 'boolean', 'date', 'timestamp with time zone', 'timestamp without time zone', 'jsonb', 'integer[]', 'text', 'bytea', 'integer'])
    assert.equal(answer.columns.length, 13, 'two columns of the same name both come back')
  })

  it('caps the rows and the bytes, and says so', async () => {
    // In the select list, generate_series streams (in FROM, PostgreSQL materialises it first: that
    // one meets the deadline, below).
    const rows = await query('select generate_series(1, 1000000000000) as x')
    assert.equal(rows.status, 200)
    assert.equal(rows.body.truncated, 'max_rows')
    assert.equal(rows.body.row_count, MAX_ROWS)
    assert.deepEqual(rows.body.rows.at(-1), [MAX_ROWS])
    const exact = await ok(`select x from generate_series(1, ${MAX_ROWS}) x`)
    assert.equal(exact.row_count, MAX_ROWS, 'exactly the cap is not truncated')

    const wide = await query("select x, repeat('x', 1000) from generate_series(1, 1000) x")
    assert.equal(wide.body.truncated, 'max_bytes')
    assert.ok(wide.text.length < MAX_BYTES + 1024, `${wide.text.length} bytes`)
    assert.ok(wide.body.row_count > 50 && wide.body.row_count < 70, String(wide.body.row_count))
  })

  it('leaves out a value beyond the byte cap however large (10^8 bytes)', async (t) => {
    // Building it takes PostgreSQL seconds on a slow machine: an app of its own, with a longer deadline.
    const patient = await buildTestApp(t, { SQL_QUERIES: 'true', SQL_QUERIES_MAX_BYTES: String(MAX_BYTES), QUERY_TIMEOUT_MS: '60000' })
    await dropReaderRole(patient.sql, t)
    const response = await patient.app.inject({ method: 'POST', url: '/datasets/sql', payload: { sql: "select 1 as n, repeat('x', (10^8)::int) as x" } })
    assert.equal(response.statusCode, 200, response.body.slice(0, 300))
    assert.ok(response.body.length < 1024)
    const huge = response.json()
    assert.equal(huge.truncated, 'max_bytes')
    assert.equal(huge.row_count, 0)
  })

  it('cancels a query at QUERY_TIMEOUT_MS: a 503 timeout before the first rows, an error at the end after them', async () => {
    const started = performance.now()
    const slow = await query('select pg_sleep(30)')
    assert.equal(slow.status, 503, slow.text)
    assert.equal(slow.body.type, '/problems/timeout')
    // Cancelled, not waited out: answered long before the 30 s sleep would end (slack for a busy machine).
    assert.ok(performance.now() - started < 30_000 / 2)
    const late = await query('select x, pg_sleep(case when x > 150 then 30 else 0 end) from generate_series(1, 200) x')
    assert.equal(late.status, 200)
    assert.equal(late.body.truncated, 'error')
    assert.equal(late.body.error.type, '/problems/timeout')
    assert.ok(late.body.row_count >= 100 && late.body.row_count <= 150, String(late.body.row_count))
    const materialised = await query('select count(*) from generate_series(1, 1000000000000) x')
    assert.equal(materialised.status, 503)
    const setting = await query("select set_config('statement_timeout', '0', false), pg_sleep(30)")
    assert.equal(setting.status, 503, 'a query cannot lift its own timeout')
  })

  it('answers the query\'s own errors as 400 problems with PostgreSQL\'s message and position', async () => {
    const syntax = await query('select from where')
    assert.equal(syntax.status, 400)
    assert.match(syntax.contentType, /application\/problem\+json/)
    assert.equal(syntax.body.sqlstate, '42601')
    assert.equal(syntax.body.position, 13)
    assert.match(syntax.body.detail, /syntax error at or near "where"/)
    const missing = await query('select * from dataset_999999')
    assert.equal(missing.body.sqlstate, '42P01')
    const division = await query('select 1/0')
    assert.equal(division.body.sqlstate, '22012')
    const invalid = await fetch(`${base}/datasets/sql`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"sql": 1}' })
    assert.equal(invalid.status, 400)
  })

  it('keeps the views in step: created by an import, dropped by a delete, recreated at start', async () => {
    const { id } = await upload('a,b\n1,x\n')
    assert.deepEqual((await ok(`select a, b from dataset_${id}`)).rows, [[1, 'x']])
    await sql.unsafe(`drop view dataset_views.dataset_${id}`)
    assert.equal((await query(`select * from dataset_${id}`)).status, 400)
    assert.equal(await syncViews(sql), 1)
    assert.deepEqual((await ok(`select a, b from dataset_${id}`)).rows, [[1, 'x']], 'recreated, and readable by the reader role')
    await remove(id)
    const [{ count }] = await sql<[{ count: number }]>`select count(*)::int as count from pg_class where relname = ${`dataset_${id}`}`
    assert.equal(count, 0)
    assert.equal((await query(`select * from dataset_${id}`)).body.sqlstate, '42P01')
  })

  it('runs as the reader role, read-only, with only the views on its search path', async () => {
    const answer = await ok("select current_user, session_user, current_setting('transaction_read_only'), current_setting('search_path'), current_setting('statement_timeout')")
    assert.deepEqual(answer.rows, [[sqlQueries!.roleName, sqlQueries!.roleName, 'on', 'dataset_views', `${TIMEOUT_MS}ms`]])
    const [role] = await sql`select rolsuper, rolcreaterole, rolcreatedb, rolreplication, rolbypassrls, rolconnlimit, rolcanlogin from pg_roles where rolname = ${sqlQueries!.roleName}`
    assert.deepEqual({ ...role }, { rolsuper: false, rolcreaterole: false, rolcreatedb: false, rolreplication: false, rolbypassrls: false, rolconnlimit: 64, rolcanlogin: true })
  })
})

const target = await upload('a,b\n1,x\n2,y\n', 'target')
// Other test files share the cluster: locks are counted in the reader's own sessions only.
const [{ database }] = await sql<[{ database: string }]>`select current_database() as database`
const reader = readerRoleName(database)

describe('POST /datasets/sql: escape attempts', () => {
  async function fingerprint (): Promise<unknown> {
    const [state] = await sql`
      select
        (select string_agg(n.nspname || '.' || c.relname || ':' || c.relkind::text, ',' order by n.nspname, c.relname) from pg_class c join pg_namespace n on n.oid = c.relnamespace
          where n.nspname not in ('pg_catalog', 'information_schema', 'pg_toast') and n.nspname not like 'pg_temp%' and n.nspname not like 'pg_toast_temp%') as relations,
        (select string_agg(rolname || ':' || rolsuper || rolcreaterole || rolcreatedb || rolcanlogin, ',' order by rolname) from pg_roles) as roles,
        (select string_agg(nspname, ',' order by nspname) from pg_namespace) as schemas,
        (select count(*)::int from api_keys) as keys,
        (select count(*)::int from users) as users,
        (select count(*)::int from datasets) as datasets,
        (select count(*)::int from pg_largeobject_metadata) as large_objects,
        (select count(*)::int from pgboss.job) as jobs,
        (select count(*)::int from pg_locks l join pg_stat_activity a on a.pid = l.pid
          where l.locktype = 'advisory' and a.datname = current_database() and a.usename = ${reader}) as reader_advisory_locks,
        (select count(*)::int from pg_prepared_xacts where database = current_database()) as prepared_xacts`
    return state
  }

  const id = target.id
  const attempts: Array<[string, RegExp]> = [
    ['reset role; select * from api_keys', /cannot insert multiple commands/],
    ['select 1; select 2', /cannot insert multiple commands/],
    ["select set_config('role', 'postgres', false)", /permission denied to set role/],
    ["select set_config('session_authorization', 'postgres', false)", /permission denied to set session authorization|permission denied/],
    ['reset role', /return rows/],
    ['set role postgres', /return rows/],
    ['set session authorization postgres', /return rows/],
    ['select * from api_keys', /does not exist/],
    ['select * from public.api_keys', /permission denied for schema public|permission denied for table api_keys/],
    ['select * from public.users', /permission denied/],
    [`select * from dataset_rows.ds_${id}`, /permission denied for schema dataset_rows/],
    ['select * from pgboss.job', /permission denied for schema pgboss/],
    ['select * from public.dataset_sql_reader', /permission denied/],
    ['select * from pg_authid', /permission denied for table pg_authid/],
    ['select * from pg_catalog.pg_statistic', /permission denied/],
    ['select * from pg_shadow', /permission denied/],
    ["select pg_read_file('/etc/passwd')", /permission denied for function pg_read_file/],
    ["select pg_read_binary_file('/etc/passwd')", /permission denied/],
    ["select pg_ls_dir('.')", /permission denied/],
    ["select lo_import('/etc/passwd')", /permission denied|read-only transaction/],
    ["select lo_export(1, '/tmp/x')", /permission denied|read-only transaction/],
    ['select lo_create(0)', /read-only transaction/],
    ["copy (select 1) to program 'id'", /return rows/],
    ["copy (select 1) to '/tmp/x'", /return rows/],
    ['create table x ()', /return rows/],
    ['create temp table t ()', /return rows/],
    ['select 1 as a into temp t', /return rows/],
    ['create function f() returns int language sql as $$select 1$$', /return rows/],
    [`insert into dataset_${id} (a, b) values (3, 'z') returning *`, /read-only transaction|permission denied/],
    [`update dataset_${id} set b = 'z' returning *`, /read-only transaction|permission denied/],
    [`delete from dataset_${id} returning *`, /read-only transaction|permission denied/],
    [`insert into dataset_${id} (a, b) values (3, 'z')`, /return rows/],
    [`select * from dataset_${id} for update`, /read-only transaction|permission denied/],
    ['with x as (delete from api_keys returning *) select * from x', /read-only transaction|does not exist|permission denied/],
    ['select pg_advisory_lock(1)', /permission denied for function pg_advisory_lock/],
    ['select pg_try_advisory_xact_lock(7301042)', /permission denied/],
    ['listen x', /return rows/],
    ["notify x, 'y'", /return rows/],
    ['do $$ begin perform 1; end $$', /return rows/],
    ['prepare p as select 1', /return rows/],
    ['execute p', /does not exist|return rows/],
    ['declare c cursor with hold for select 1', /return rows/],
    ['fetch all from c', /does not exist|return rows/],
    ['select pg_terminate_backend(pid) from pg_stat_activity', /permission denied for function pg_terminate_backend/],
    ['select pg_cancel_backend(pg_backend_pid())', /permission denied for function pg_cancel_backend/],
    ["select current_setting('data_directory')", /permission denied|must be superuser/],
    ['show data_directory', /permission denied|must be superuser/],
    ["select current_setting('config_file')", /permission denied|must be superuser/],
    ['select txid_current()', /permission denied for function txid_current/],
    ['select pg_current_xact_id()', /permission denied for function pg_current_xact_id/],
    ['vacuum', /return rows/],
    ['analyze', /return rows/],
    ['select pg_reload_conf()', /permission denied/],
    ["select query_to_xml('delete from public.api_keys', true, false, '')", /permission denied|read-only|not allowed/],
    ["select query_to_xml('select pg_advisory_lock(2)', true, false, '')", /permission denied/],
    ["select dblink('dbname=postgres', 'select 1')", /does not exist/],
    ['select $1::int', /parameters/],
    ['commit', /return rows/],
    ['begin read write', /return rows/],
    ["set transaction read write", /return rows/],
    ["select set_config('transaction_read_only', 'off', true)", /read-write mode must be set before any query/],
    ["select set_config('search_path', 'public', false), (select count(*) from api_keys)", /does not exist|permission denied/],
  ]

  it('refuses every one, leaving the database as it was', async () => {
    const before = await fingerprint()
    const outcomes: string[] = []
    for (const [text, expected] of attempts) {
      const answer = await query(text)
      outcomes.push(`${answer.status} ${text} → ${answer.body?.detail ?? answer.text.slice(0, 200)}`)
      assert.equal(answer.status, 400, `${text}: ${answer.text.slice(0, 300)}`)
      assert.match(answer.body.detail, expected, text)
    }
    if (process.env.SQL_ESCAPES_VERBOSE !== undefined) console.log(outcomes.join('\n'))
    assert.deepEqual(await fingerprint(), before)
  })

  it('leaves nothing behind in the reader\'s sessions for the next query', async () => {
    // Settings and locks a query takes are gone before its connection serves the next one.
    for (let i = 0; i < 4; i++) assert.equal((await query("select set_config('search_path', 'pg_catalog', false), set_config('work_mem', '1GB', false)")).status, 200)
    for (let i = 0; i < 4; i++) {
      const answer = await ok("select current_setting('search_path'), current_setting('work_mem'), current_setting('transaction_read_only'), (select count(*)::int from pg_locks where locktype = 'advisory' and pid = pg_backend_pid()), (select count(*)::int from pg_prepared_statements), (select count(*)::int from pg_cursors where name <> '')")
      assert.deepEqual(answer.rows, [['dataset_views', '4MB', 'on', 0, 0, 0]])
    }
  })

  it('delivers no notification: pg_notify is queued in the transaction, which is rolled back', async () => {
    const heard: string[] = []
    const listening = await sql.listen('sql_escape', (payload) => { heard.push(payload) })
    assert.equal((await query("select pg_notify('sql_escape', 'from a query')")).status, 200)
    await sql`select pg_notify('sql_escape', 'from the service')`
    await new Promise((resolve) => setTimeout(resolve, 200))
    await listening.unlisten()
    assert.deepEqual(heard, ['from the service'])
  })

  it('shows other sessions in pg_stat_activity without their query text', async () => {
    const waiting = sql`select pg_sleep(1), 'the service''s own query'`.execute()
    await new Promise((resolve) => setTimeout(resolve, 200))
    const answer = await ok("select usename, query from pg_stat_activity where query like '%own query%' and pid <> pg_backend_pid()")
    await waiting
    assert.ok(answer.rows.every(([, text]: [string, string]) => text === '<insufficient privilege>' || text === null), JSON.stringify(answer.rows))
  })
})

describe('POST /datasets/sql with SQL_QUERIES off', () => {
  it('answers 404, saying so', async () => {
    const off = await buildTestApp({ after })
    const response = await off.app.inject({ method: 'POST', url: '/datasets/sql', payload: { sql: 'select 1' } })
    assert.equal(response.statusCode, 404)
    assert.match(response.json().detail, /SQL_QUERIES/)
  })
})
