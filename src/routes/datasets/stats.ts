// Statistics of a data set, computed in SQL by a job after each import and stored, so that
// GET /datasets/{id} reads them instead of scanning the rows. One aggregate pass gives count,
// nulls, min, max, mean and stddev of every column; distinct counts are exact up to
// DISTINCT_EXACT_MAX rows and PostgreSQL's planner estimate (ANALYZE) above; text columns get their
// most frequent values; integer, numeric, date and timestamp columns a histogram (histogram.ts: one
// more scan for all of them). The same job then indexes the columns, so sorting and filtering rows
// stays an index scan however large the data set, and builds the GIN indexes of full-text search.
import type { TransactionSql } from 'postgres'
import { withoutStatementTimeout, type Sql } from '../../db/pool.ts'
import { computeHistograms, HISTOGRAM_TYPES, type HistogramColumn } from './histogram.ts'
import type { DatasetsRepository } from './repository.ts'
import type { ColumnStats, DatasetColumn, DatasetStats } from './schemas.ts'
import { ROWS_SCHEMA, rowsTable, type RowsTable } from './table.ts'

const DISTINCT_EXACT_MAX = 100_000
const TOP_VALUES = 5
// A btree entry must fit in a third of a page; longer text is not indexed (sorting on it scans).
export const INDEXABLE_TEXT_LENGTH = 1_000

type Aggregates = Record<string, string>

/** Aggregates of one column, as SQL over its physical name only (never a user-given name). */
function aggregates (table: RowsTable, column: DatasetColumn, exactDistinct: boolean): Aggregates {
  const c = table.column(column.position)
  const common: Aggregates = { count: `count(${c})`, ...(exactDistinct && { distinct: `count(distinct ${c})` }) }
  switch (column.type) {
    case 'integer':
    case 'numeric':
      // As text, made numbers in JavaScript: a numeric beyond a double's range or precision (1e-400)
      // would make a cast to float8 fail.
      return { ...common, min: `min(${c})::text`, max: `max(${c})::text`, mean: `avg(${c})::text`, stddev: `stddev_samp(${c})::text` }
    case 'date':
    case 'timestamp':
      return { ...common, min: `to_json(min(${c}))#>>'{}'`, max: `to_json(max(${c}))#>>'{}'` }
    case 'boolean':
      return { ...common, true_count: `count(*) filter (where ${c})`, false_count: `count(*) filter (where not ${c})` }
    case 'text':
      return { ...common, min_length: `min(length(${c}))`, max_length: `max(length(${c}))` }
  }
}

const NUMERIC_STATS = new Set(['min', 'max', 'mean', 'stddev'])

/**
 * Computes and stores the statistics of a data set, then indexes its columns; false when it is no
 * longer there (deleted meanwhile, or not ready).
 */
export async function computeDatasetStats (sql: Sql, datasets: DatasetsRepository, datasetId: number): Promise<boolean> {
  const dataset = await datasets.find(datasetId)
  if (dataset?.status !== 'ready') return false
  const columns = await datasets.columns(datasetId)
  const table = rowsTable(datasetId)
  const exactDistinct = dataset.rows <= DISTINCT_EXACT_MAX

  const stats = await withoutStatementTimeout(sql, async (tx) => {
    if (await tx`select to_regclass(${table.name}) as found`.then(([row]) => row?.found === null)) return undefined
    const selects = ['count(*) as rows']
    for (const column of columns) {
      for (const [stat, expression] of Object.entries(aggregates(table, column, exactDistinct))) selects.push(`${expression} as s${column.position}_${stat}`)
    }
    const [totals] = await tx.unsafe<[Record<string, number | string | null>]>(`select ${selects.join(', ')} from ${table.name}`)
    const estimates = exactDistinct ? new Map<string, number>() : await distinctEstimates(tx, table, dataset.rows)

    const result: DatasetStats = { count: Number(totals.rows), columns: {} }
    const histogrammed: HistogramColumn[] = []
    for (const column of columns) {
      const value = (stat: string): number | string | null => totals[`s${column.position}_${stat}`] ?? null
      const count = Number(value('count'))
      const entry: Record<string, unknown> = {
        type: column.type,
        count,
        nulls: result.count - count,
        distinct: exactDistinct ? Number(value('distinct')) : Math.min(count, estimates.get(table.column(column.position)) ?? 0),
        distinct_estimated: !exactDistinct,
      }
      for (const stat of Object.keys(aggregates(table, column, false))) {
        const found = value(stat)
        if (stat !== 'count') entry[stat] = NUMERIC_STATS.has(stat) && found !== null && column.type !== 'date' && column.type !== 'timestamp' ? Number(found) : found
      }
      if (column.type === 'text') entry.top = await topValues(tx, table, column)
      if (HISTOGRAM_TYPES.has(column.type)) {
        const [min, max] = [value('min'), value('max')]
        if (min !== null && max !== null) histogrammed.push({ ...column, type: column.type as HistogramColumn['type'], min: String(min), max: String(max), distinct: entry.distinct as number })
        else entry.histogram = { bins: [] }
      }
      result.columns[column.name] = entry as ColumnStats
    }
    const histograms = await computeHistograms(tx, table, histogrammed)
    for (const column of columns) {
      const histogram = histograms.get(column.position)
      if (histogram !== undefined) result.columns[column.name]!.histogram = histogram
    }
    return result
  })
  if (stats === undefined || await datasets.find(datasetId) === undefined) return false
  await datasets.saveStats(datasetId, stats)
  await indexColumns(sql, table, columns, stats)
  return true
}

/** PostgreSQL's estimate of distinct values per column, from ANALYZE's sample. */
async function distinctEstimates (tx: TransactionSql, table: RowsTable, rows: number): Promise<Map<string, number>> {
  await tx.unsafe(`analyze ${table.name}`)
  const found = await tx<Array<{ attname: string, n_distinct: number }>>`
    select attname, n_distinct::float8 as n_distinct from pg_stats where schemaname = ${ROWS_SCHEMA} and tablename = ${table.relation}`
  // n_distinct < 0 is a fraction of the rows (-1: all distinct).
  return new Map(found.map(({ attname, n_distinct: n }) => [attname, n < 0 ? Math.round(-n * rows) : n]))
}

async function topValues (tx: TransactionSql, table: RowsTable, column: DatasetColumn): Promise<Array<{ value: string, count: number }>> {
  const c = table.column(column.position)
  return await tx.unsafe<Array<{ value: string, count: number }>>(`
    select ${c} as value, count(*)::int8 as count from ${table.name} where ${c} is not null
    group by ${c} order by count desc, value limit ${TOP_VALUES}`)
}

/**
 * One (column, _row) index per column: keyset paging under any sort, filters by index. Then the
 * GIN indexes of full-text search (table.ts), and ANALYZE: the planner knows how often each word
 * occurs only from the statistics of the indexed expressions, which ANALYZE gathers; without them
 * it guessed 5,000 rows for any word and walked the primary key for `_q` pages (6.6 s on 1,000,000
 * rows instead of 0.05 ms).
 */
async function indexColumns (sql: Sql, table: RowsTable, columns: DatasetColumn[], stats: DatasetStats): Promise<void> {
  // Two statistics jobs of one data set may run at once (an append's beside the one before), and
  // CREATE INDEX IF NOT EXISTS is not safe against a concurrent one (a unique violation in
  // pg_class): its SHARE lock admits another. SHARE UPDATE EXCLUSIVE conflicts with itself (and
  // with nothing CREATE INDEX's SHARE does not already block): the second job waits for the
  // first's index, then finds it there.
  const build = async (create: (tx: TransactionSql) => Promise<unknown>): Promise<void> => {
    await withoutStatementTimeout(sql, async (tx) => {
      await tx.unsafe(`lock table ${table.name} in share update exclusive mode`)
      await create(tx)
    })
  }
  for (const column of columns) {
    const entry = stats.columns[column.name]
    if (column.type === 'text' && Number(entry?.max_length ?? 0) > INDEXABLE_TEXT_LENGTH) continue
    await build(async (tx) => { await table.index(tx, column.position) })
  }
  const searchIndexes = table.searchIndexStatements(columns)
  for (const statement of searchIndexes) await build(async (tx) => await tx.unsafe(statement))
  if (searchIndexes.length > 0) await withoutStatementTimeout(sql, async (tx) => { await tx.unsafe(`analyze ${table.name}`) })
}
