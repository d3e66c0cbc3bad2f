// Demo data goes into a database once, however many processes start on it at the same time: each
// part is recorded in seed_log, by name, in the transaction that loads it, and a part is never
// loaded into a table that already holds someone else's data.
import type { TransactionSql } from 'postgres'
import type { Sql } from './pool.ts'

/** Runs `load` in a transaction unless `name` was seeded before or `table` already has rows; true when it ran. */
export async function seedOnce (sql: Sql, name: string, table: string, load: (tx: TransactionSql) => Promise<unknown>): Promise<boolean> {
  return await sql.begin(async (tx) => {
    const inserted = await tx`insert into seed_log (name) values (${name}) on conflict do nothing returning name`
    if (inserted.length === 0) return false
    const [found] = await tx`select 1 from ${tx(table)} limit 1`
    if (found !== undefined) return false // someone's data is already here: leave it alone
    await load(tx)
    return true
  })
}
