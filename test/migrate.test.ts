import assert from 'node:assert/strict'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { after, describe, it } from 'node:test'
import { migrate, readMigrations } from '../src/db/migrate.ts'
import { createSql, type Sql } from '../src/db/pool.ts'
import { createTestDatabase } from './helpers/database.ts'

/** The test database is cloned from the migrated template; these tests start from nothing. */
async function emptyDatabase (sql: Sql): Promise<void> {
  await sql`drop schema if exists dataset_rows cascade`
  await sql`drop schema if exists dataset_views cascade`
  await sql`drop schema public cascade`
  await sql`create schema public`
}

describe('migrations', () => {
  it('applies every migration once; running again is a no-op', async () => {
    const { url } = await createTestDatabase({ after })
    const sql = createSql(url, { max: 1 })
    after(async () => { await sql.end() })
    await emptyDatabase(sql)
    const all = await readMigrations()
    assert.deepEqual(await migrate(sql), all.map((m) => `${m.version}_${m.name}`))
    assert.deepEqual(await migrate(sql), [])
    const [{ count }] = await sql<[{ count: number }]>`select count(*)::int as count from schema_migrations`
    assert.equal(count, all.length)
    const tables = await sql`select table_name from information_schema.tables where table_schema = 'public' order by 1`
    assert.ok(tables.some((row) => row.table_name === 'users'))
  })

  it('refuses a migration that was edited after it was applied, and applies nothing', async () => {
    const { sql } = await createTestDatabase({ after })
    await emptyDatabase(sql)
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'migrations-'))
    after(async () => { await fs.rm(dir, { recursive: true, force: true }) })
    await fs.writeFile(path.join(dir, '0001_first.sql'), 'create table first (id int);')
    assert.deepEqual(await migrate(sql, await readMigrations(dir)), ['1_first'])
    await fs.writeFile(path.join(dir, '0001_first.sql'), 'create table first (id bigint);')
    await fs.writeFile(path.join(dir, '0002_second.sql'), 'create table second (id int);')
    await assert.rejects(migrate(sql, await readMigrations(dir)), /0*1_first changed after it was applied/)
    const [row] = await sql`select to_regclass('second') as second`
    assert.equal(row?.second, null)
  })
})
