// The `total` of a rows page (`_count=`): the rows the filters select, counted or estimated.
//
// Never capped: a count runs to its end or to its deadline (COUNT_TIMEOUT_MS by default,
// QUERY_TIMEOUT_MS with `_count=exact`), and is cancelled in PostgreSQL past it. The estimate is
// the planner's row estimate of the filtered query: `explain (format json)` sent with the filters'
// values as bound parameters (postgres.js sends EXPLAIN through the extended protocol like any
// query, so the planner sees the values, as in a custom plan), which costs planning only. Without
// filters no query is needed: a data set's rows never change, so its row count is the total.
//
// An exact total is counted once per data set version and selection (TotalsCache): paging through
// a filtered view, or many clients reading the same one, costs one count, not one per page.
import { createHash } from 'node:crypto'
import type { Fragment } from 'postgres'
import type { Sql } from '../../db/pool.ts'
import { cancellable } from '../../lib/concurrency.ts'
import type { Dataset } from './schemas.ts'
import type { RowsTable } from './table.ts'
import type { DataQuery } from './view.ts'

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

type Remembered = { total: number } | { lateUntil: number }

/**
 * Exact totals already counted, by data set version and selection (its filters and search), and
 * the selections whose default count missed COUNT_TIMEOUT_MS lately: their next pages go to the
 * estimate at once instead of holding a connection for the whole deadline again (a `_count=exact`
 * still counts). The version is the data set's `updated_at` and row count, which every change of
 * its rows moves and every process's metadata cache hears of (metadata-cache.ts), so an entry of
 * an older version is never read again; the oldest entries go first past `maxEntries`.
 */
export class TotalsCache {
  readonly #entries = new Map<string, Remembered>()
  readonly #maxEntries: number
  readonly #lateMs: number

  constructor ({ maxEntries = 10_000, lateMs = 60_000 }: { maxEntries?: number, lateMs?: number } = {}) {
    this.#maxEntries = maxEntries
    this.#lateMs = lateMs
  }

  /** The key of a selection of a data set's rows: a digest, however long the filter values are. */
  static key (dataset: Dataset, view: DataQuery): string {
    return createHash('sha256').update(JSON.stringify([dataset.id, new Date(dataset.updated_at).getTime(), dataset.rows, view.selection])).digest('base64url')
  }

  /** The exact total counted before, if any. */
  exact (key: string): number | undefined {
    const found = this.#entries.get(key)
    return found !== undefined && 'total' in found ? found.total : undefined
  }

  /** Whether the default count of this selection missed its deadline within the last `lateMs`. */
  isLate (key: string, now = Date.now()): boolean {
    const found = this.#entries.get(key)
    if (found === undefined || !('lateUntil' in found)) return false
    if (found.lateUntil > now) return true
    this.#entries.delete(key)
    return false
  }

  saveExact (key: string, total: number): void {
    this.#save(key, { total })
  }

  saveLate (key: string, now = Date.now()): void {
    this.#save(key, { lateUntil: now + this.#lateMs })
  }

  #save (key: string, remembered: Remembered): void {
    this.#entries.delete(key)
    if (this.#entries.size >= this.#maxEntries) this.#entries.delete(this.#entries.keys().next().value!)
    this.#entries.set(key, remembered)
  }
}
