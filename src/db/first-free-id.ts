// Sample rows (users, products) carry explicit ids that go on after the rows already there.
import type { TransactionSql } from 'postgres'

/**
 * The first id after the rows already in `table`, for sample rows with explicit ids. Locks the
 * table until the transaction ends: two seeders at once would pick the same first id.
 */
export async function firstFreeId (tx: TransactionSql, table: 'users' | 'products'): Promise<number> {
  await tx`lock table ${tx(table)} in share row exclusive mode`
  const [{ max }] = await tx<[{ max: number }]>`select coalesce(max(id), 0)::int8 as max from ${tx(table)}`
  return max + 1
}
