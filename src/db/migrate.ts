// Forward-only, numbered SQL migrations (`migrations/0001_name.sql`), applied in one transaction
// under an advisory lock so that processes starting together apply each file exactly once.
// A file that was edited after it was applied is refused: fix forward with a new file instead.
import { createHash } from 'node:crypto'
import fs from 'node:fs/promises'
import path from 'node:path'
import type { Sql } from './pool.ts'

const MIGRATIONS_DIR = path.join(import.meta.dirname, 'migrations')
const MIGRATION_LOCK = 7_301_042 // arbitrary, constant: the advisory lock key for migrations

export interface Migration { version: number, name: string, text: string, checksum: string }

export async function readMigrations (dir = MIGRATIONS_DIR): Promise<Migration[]> {
  const files = (await fs.readdir(dir)).filter((file) => file.endsWith('.sql')).sort()
  return await Promise.all(files.map(async (file) => {
    const match = /^(\d+)_([\w-]+)\.sql$/.exec(file)
    if (match === null) throw new Error(`migration file name ${file} must look like 0001_name.sql`)
    const text = await fs.readFile(path.join(dir, file), 'utf8')
    return { version: Number(match[1]), name: match[2]!, text, checksum: createHash('sha256').update(text).digest('hex') }
  }))
}

/** Applies pending migrations; returns the names of those applied (empty when up to date). */
export async function migrate (sql: Sql, migrations?: Migration[]): Promise<string[]> {
  const all = migrations ?? await readMigrations()
  return await sql.begin(async (tx) => {
    await tx`select pg_advisory_xact_lock(${MIGRATION_LOCK})`
    // A migration may rewrite a large table: no pool's statement timeout applies here.
    await tx`set local statement_timeout to 0`
    await tx`
      create table if not exists schema_migrations (
        version integer primary key,
        name text not null,
        checksum text not null,
        applied_at timestamptz not null default now()
      )`
    const applied = new Map((await tx<Array<{ version: number, checksum: string }>>`select version, checksum from schema_migrations`)
      .map((row) => [row.version, row.checksum]))
    const done: string[] = []
    for (const migration of all) {
      const checksum = applied.get(migration.version)
      if (checksum !== undefined) {
        if (checksum !== migration.checksum) {
          throw new Error(`migration ${migration.version}_${migration.name} changed after it was applied; add a new migration instead of editing it`)
        }
        continue
      }
      await tx.unsafe(migration.text).simple()
      await tx`insert into schema_migrations (version, name, checksum) values (${migration.version}, ${migration.name}, ${migration.checksum})`
      done.push(`${migration.version}_${migration.name}`)
    }
    return done
  })
}
