// Statistics of a data set, computed in SQL by a job after each import and stored, so that
// GET /datasets/{id} reads them instead of scanning the rows. One aggregate pass gives count,
// nulls, min, max, mean and stddev of every column; distinct counts are exact up to
// DISTINCT_EXACT_MAX rows and PostgreSQL's planner estimate (ANALYZE) above; text columns get their
// most frequent values. The same job then indexes the columns, so sorting and filtering rows stays
// an index scan however large the data set.
import type { Sql } from '../db/pool.ts'
import { physical } from './importer.ts'
import type { ColumnType } from './types.ts'

const DISTINCT_EXACT_MAX = 100_000
const TOP_VALUES = 5
// A btree entry must fit in a third of a page; longer text is not indexed (sorting on it scans).
const INDEXABLE_TEXT_LENGTH = 1_000

export interface ColumnStats {
  type: ColumnType
  count: number
  nulls: number
  distinct: number
  distinct_estimated: boolean
  min?: number | string | null
  max?: number | string | null
  mean?: number | null
  stddev?: number | null
  true_count?: number
  false_count?: number
  min_length?: number | null
  max_length?: number | null
  top?: Array<{ value: string, count: number }>
}

export interface DatasetStats { count: number, columns: Record<string, ColumnStats> }

interface ColumnRow { position: number, name: string, type: ColumnType }

/** Aggregates of one column, as SQL over its physical name only (never a user-given name). */
function aggregates (column: ColumnRow, exactDistinct: boolean): Record<string, string> {
  const c = physical(column.position)
  const common: Record<string, string> = { count: `count(${c})`, ...(exactDistinct && { distinct: `count(distinct ${c})` }) }
  switch (column.type) {
    case 'integer':
    case 'numeric':
      return { ...common, min: `min(${c})::float8`, max: `max(${c})::float8`, mean: `avg(${c})::float8`, stddev: `stddev_samp(${c})::float8` }
    case 'date':
    case 'timestamp':
      return { ...common, min: `to_json(min(${c}))#>>'{}'`, max: `to_json(max(${c}))#>>'{}'` }
    case 'boolean':
      return { ...common, true_count: `count(*) filter (where ${c})`, false_count: `count(*) filter (where not ${c})` }
    case 'text':
      return { ...common, min_length: `min(length(${c}))`, max_length: `max(length(${c}))` }
  }
}

/** Computes and stores the statistics of a data set; false if it no longer exists. */
export async function computeDatasetStats (sql: Sql, datasetId: number): Promise<boolean> {
  const columns = await sql<ColumnRow[]>`
    select position, name, type from dataset_columns where dataset_id = ${datasetId} order by position`
  const [dataset] = await sql<[{ rows: number }?]>`select rows from datasets where id = ${datasetId} and status = 'ready'`
  if (dataset === undefined) return false
  const table = `dataset_rows.ds_${datasetId}`
  const exactDistinct = dataset.rows <= DISTINCT_EXACT_MAX

  const selects = ['count(*) as rows']
  columns.forEach((column) => {
    for (const [stat, expression] of Object.entries(aggregates(column, exactDistinct))) selects.push(`${expression} as s${column.position}_${stat}`)
  })
  const [totals] = await sql.unsafe<[Record<string, number | string | null>]>(`select ${selects.join(', ')} from ${table}`)
  const estimates = new Map<string, number>()
  if (!exactDistinct) {
    await sql.unsafe(`analyze ${table}`)
    const rows = await sql<Array<{ attname: string, n_distinct: number }>>`
      select attname, n_distinct::float8 as n_distinct from pg_stats where schemaname = 'dataset_rows' and tablename = ${`ds_${datasetId}`}`
    // n_distinct < 0 is a fraction of the rows (-1: all distinct).
    for (const { attname, n_distinct: n } of rows) estimates.set(attname, n < 0 ? Math.round(-n * dataset.rows) : n)
  }

  const stats: DatasetStats = { count: Number(totals.rows), columns: {} }
  for (const column of columns) {
    const value = (stat: string): number | string | null => totals[`s${column.position}_${stat}`] ?? null
    const count = Number(value('count'))
    const entry: ColumnStats = {
      type: column.type,
      count,
      nulls: stats.count - count,
      distinct: exactDistinct ? Number(value('distinct')) : Math.min(count, estimates.get(physical(column.position)) ?? 0),
      distinct_estimated: !exactDistinct,
    }
    for (const stat of Object.keys(aggregates(column, false))) {
      if (stat !== 'count') (entry as unknown as Record<string, unknown>)[stat] = value(stat)
    }
    if (column.type === 'text') entry.top = await topValues(sql, table, physical(column.position))
    stats.columns[column.name] = entry
  }

  await sql`
    insert into dataset_stats (dataset_id, stats) values (${datasetId}, ${sql.json(stats as never)})
    on conflict (dataset_id) do update set stats = excluded.stats, computed_at = now()`
  await indexColumns(sql, datasetId, columns, stats)
  return true
}

async function topValues (sql: Sql, table: string, column: string): Promise<Array<{ value: string, count: number }>> {
  return await sql.unsafe<Array<{ value: string, count: number }>>(`
    select ${column} as value, count(*)::int8 as count from ${table} where ${column} is not null
    group by ${column} order by count desc, value limit ${TOP_VALUES}`)
}

/** One (column, _row) index per column: keyset paging under any sort, filters by index. */
async function indexColumns (sql: Sql, datasetId: number, columns: ColumnRow[], stats: DatasetStats): Promise<void> {
  for (const column of columns) {
    const entry = stats.columns[column.name]
    if (column.type === 'text' && Number(entry?.max_length ?? 0) > INDEXABLE_TEXT_LENGTH) continue
    const c = physical(column.position)
    await sql.unsafe(`create index if not exists ds_${datasetId}_${c} on dataset_rows.ds_${datasetId} (${c}, _row)`)
  }
}
