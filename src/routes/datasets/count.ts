// The `total` of a rows page (`_count=`): the rows the filters select, counted or estimated.
//
// Never capped: a count runs to its end or to its deadline (COUNT_TIMEOUT_MS by default,
// QUERY_TIMEOUT_MS with `_count=exact`), and is cancelled in PostgreSQL past it. The estimate is
// the planner's row estimate of the filtered query: `explain (format json)` sent with the filters'
// values as bound parameters (postgres.js sends EXPLAIN through the extended protocol like any
// query, so the planner sees the values, as in a custom plan), which costs planning only. Without
// filters no query is needed: the data set's row count is the total (every write of rows moves it
// in the transaction of the write: writes.ts, and DELETE …/rows through repository.ts rowsChanged).
import type { Fragment } from 'postgres'
import type { Sql } from '../../db/pool.ts'
import { cancellable } from '../../lib/concurrency.ts'
import type { RowsTable } from './table.ts'

export type CountMode = 'exact' | 'estimated' | 'none'

export async function countRows (db: Sql, table: RowsTable, where: Fragment, signal: AbortSignal): Promise<number> {
  const [row] = await cancellable(db<Array<{ total: number }>>`select count(*)::int8 as total from ${table.identifier(db)} where ${where}`, signal)
  return Number(row?.total ?? 0)
}

interface PlanNode { 'Plan Rows'?: number }

export async function estimateRows (db: Sql, table: RowsTable, where: Fragment, signal: AbortSignal): Promise<number> {
  const [row] = await cancellable(db<Array<{ 'QUERY PLAN': Array<{ Plan?: PlanNode }> }>>`explain (format json) select 1 from ${table.identifier(db)} where ${where}`, signal)
  const rows = row?.['QUERY PLAN'][0]?.Plan?.['Plan Rows']
  return typeof rows === 'number' && Number.isFinite(rows) ? Math.max(0, Math.round(rows)) : 0
}
