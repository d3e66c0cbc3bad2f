// Facets of a rows page (`_facet=`): for a column, how many of the rows the filters select hold
// each value (or fall in each bucket), the top `_facet_size` by count (ties by value) with `other`
// (rows with a value outside the top) and `nulls` (rows without one).
//
// How a column is faceted (`by`): text and boolean by value; integer and numeric by equal-width
// bins between the minimum and the maximum under the filters (`column__value` for each value);
// date and timestamp by day, month or year of their UTC date (`column__month` …), by default the
// finest of those with at most `_facet_size` buckets over the filtered rows' span. Bins and the
// default date buckets cost a min/max query first (an index walk without filters) and then one
// grouping scan; the others one scan. Bins come back in order, all of them (at most `_facet_size`),
// `other` 0.
//
// SQL is written over table.ts's physical columns only: a user's column name never reaches SQL.
import type { Fragment } from 'postgres'
import type { Sql } from '../../db/pool.ts'
import { cancellable } from '../../lib/concurrency.ts'
import { invalidParameter } from '../../lib/errors.ts'
import type { ColumnType } from './column-types.ts'
import type { DatasetColumn, Facet, FacetBy } from './schemas.ts'
import { decode, type RowsTable } from './table.ts'
import { columnNames, type DataQuery } from './view.ts'

/**
 * Facets one request may ask for. Each is a scan of the filtered rows on a connection of its own,
 * and the facets of all requests together hold at most half the pool (service.ts): ten keeps one
 * request's facets within about two rounds of those connections, so that most of them finish within
 * FACET_TIMEOUT_MS instead of queueing behind each other until they time out.
 */
export const MAX_FACETS = 10
export const DEFAULT_FACET_SIZE = 20

/** How each type may be faceted, its default first ('auto' for dates: by the span). */
const GRANULARITIES: Record<ColumnType, readonly FacetBy[]> = {
  text: ['value'],
  boolean: ['value'],
  integer: ['bins', 'value'],
  numeric: ['bins', 'value'],
  date: ['day', 'month', 'year', 'value'],
  timestamp: ['day', 'month', 'year', 'value'],
}
const ALL_GRANULARITIES: readonly FacetBy[] = ['value', 'bins', 'day', 'month', 'year']
const TRUNCATED = { day: 'day', month: 'month', year: 'year' } as const

/** One facet asked for: its column, how (undefined: a date column's default, by span), and how many values. */
export interface FacetRequest { column: DatasetColumn, by?: FacetBy, size: number }

/** The facets a query asks for (`_facet`, `_facet_size`), in the order given, each column once; 400s for anything else. */
export function readFacets (query: DataQuery): FacetRequest[] {
  const size = query.one('facet_size')
  const sizeName = query.nameOf('facet_size')
  const resolve = (item: string): { column: DatasetColumn, by?: FacetBy } | undefined => {
    const whole = query.columns.find((column) => column.name === item)
    if (whole !== undefined) return { column: whole }
    const split = item.lastIndexOf('__')
    if (split === -1) return undefined
    const column = query.columns.find((candidate) => candidate.name === item.slice(0, split))
    const by = item.slice(split + 2) as FacetBy
    return column === undefined || !ALL_GRANULARITIES.includes(by) ? undefined : { column, by }
  }
  const given = query.listItems('facet', (value) => resolve(value) !== undefined)
  if (given === undefined) {
    if (size !== undefined) throw invalidParameter(`${sizeName}: applies to facets; give _facet too`, sizeName)
    return []
  }
  const { parameter, items } = given
  const facets = new Map<string, FacetRequest>()
  for (const item of items) {
    const target = resolve(item)
    if (target === undefined) throw invalidParameter(`${parameter}: ${describeUnknown(query.columns, item)}`, parameter)
    const { column, by } = target
    const allowed = GRANULARITIES[column.type]
    if (by !== undefined && !allowed.includes(by)) {
      throw invalidParameter(`${parameter}: "${column.name}" is a ${column.type} column, faceted by ${allowed.join(', ')} (not ${by})`, parameter)
    }
    const chosen = by ?? (column.type === 'date' || column.type === 'timestamp' ? undefined : allowed[0])
    const earlier = facets.get(column.name)
    if (earlier !== undefined && earlier.by !== chosen) throw invalidParameter(`${parameter}: "${column.name}" is faceted twice, in two ways; facet a column once`, parameter)
    facets.set(column.name, { column, by: chosen, size: size ?? DEFAULT_FACET_SIZE })
  }
  if (facets.size > MAX_FACETS) throw invalidParameter(`${parameter}: at most ${MAX_FACETS} facets at once (${facets.size} asked)`, parameter)
  return [...facets.values()]
}

function describeUnknown (columns: DatasetColumn[], item: string): string {
  const split = item.lastIndexOf('__')
  const shown = item.slice(0, 200)
  if (split !== -1 && columns.some((column) => column.name === item.slice(0, split))) {
    return `"${shown}": unknown way to facet "${item.slice(split + 2, split + 102)}" (one of ${ALL_GRANULARITIES.join(', ')}, as column__by)`
  }
  return `there is no column "${shown}" (columns: ${columnNames(columns)})`
}

interface BucketRow { kind: number, value: unknown, count: number }
interface BinRow { bin: string | null, count: number, value: string | null, upper: string | null }

/**
 * Computes one facet on `db` (a connection of the facet's own), every query cancelled in
 * PostgreSQL when the signal fires (its deadline, the client gone, the page failed).
 */
export async function computeFacet (db: Sql, table: RowsTable, where: Fragment, facet: FacetRequest, signal: AbortSignal): Promise<Facet> {
  const { column, size } = facet
  const c = table.column(column.position)
  const u = (text: string): Fragment => db.unsafe(text)
  const from = table.identifier(db)
  const by = facet.by ?? await dateGranularity(db, table, where, column, size, signal)
  if (by === 'bins') return await bins(db, table, where, column, size, signal)

  // Values (or buckets) counted once (materialized), then the top of them, `other` and `nulls` from that.
  const bucket = by === 'value' ? c : column.type === 'date' ? `date_trunc('${TRUNCATED[by]}', ${c}::timestamp)::date` : `date_trunc('${TRUNCATED[by]}', ${c})`
  const rows = await cancellable(db<BucketRow[]>`
    with g as materialized (
      select ${u(bucket)} as ${u(c)}, count(*)::int8 as n from ${from} where ${where} group by 1
    ), top as (
      select ${u(c)}, n, row_number() over (order by n desc, ${u(c)}) as place from g where ${u(c)} is not null order by n desc, ${u(c)} limit ${size}
    )
    select 0 as kind, place, ${u(table.output(column))} as value, n as count from top
    union all select 1, 0, null, ((select coalesce(sum(n), 0) from g where ${u(c)} is not null) - (select coalesce(sum(n), 0) from top))::int8
    union all select 2, 0, null, coalesce((select n from g where ${u(c)} is null), 0)
    order by kind, place`, signal)
  return {
    by,
    values: rows.filter((row) => row.kind === 0).map((row) => ({ value: decode(column.type, row.value) as number | string | boolean, count: row.count })),
    other: rows.find((row) => row.kind === 1)?.count ?? 0,
    nulls: rows.find((row) => row.kind === 2)?.count ?? 0,
  }
}

/** A date column's default: the finest of day, month, year with at most `size` buckets between the filtered rows' first and last day. */
async function dateGranularity (db: Sql, table: RowsTable, where: Fragment, column: DatasetColumn, size: number, signal: AbortSignal): Promise<FacetBy> {
  const c = db.unsafe(table.column(column.position))
  // min() and max() alone, so that PostgreSQL may answer them from the column's index.
  const [span] = await cancellable(db<Array<{ days: number | null, months: number | null }>>`
    select (hi::date - lo::date) + 1 as days,
      ((extract(year from hi::date) * 12 + extract(month from hi::date)) - (extract(year from lo::date) * 12 + extract(month from lo::date)) + 1)::int8 as months
    from (select min(${c}) as lo, max(${c}) as hi from ${table.identifier(db)} where ${where}) span`, signal)
  if (span === undefined || span.days === null || span.months === null) return 'day'
  return span.days <= size ? 'day' : span.months <= size ? 'month' : 'year'
}

/**
 * Equal-width bins over [min, max] of the filtered rows, at most `size`, in order. Integers: a
 * whole width w = ceil((max − min + 1) / size), bin k holding [min + k·w, min + (k+1)·w). Numerics:
 * w = (max − min) / size, bin k = floor((v − min) · size / (max − min)) (exact, by numeric `div`),
 * the maximum in the last bin. `to` is the bin's upper bound (excluded, but for the maximum).
 */
async function bins (db: Sql, table: RowsTable, where: Fragment, column: DatasetColumn, size: number, signal: AbortSignal): Promise<Facet> {
  const c = db.unsafe(table.column(column.position))
  const from = table.identifier(db)
  const [span] = await cancellable(db<Array<{ lo: string | null, hi: string | null }>>`
    select min(${c})::text as lo, max(${c})::text as hi from ${from} where ${where}`, signal)
  const lo = span?.lo ?? null
  const hi = span?.hi ?? null
  if (lo === null || hi === null) {
    const [missing] = await cancellable(db<Array<{ nulls: number }>>`select count(*)::int8 as nulls from ${from} where ${where} and ${c} is null`, signal)
    return { by: 'bins', values: [], other: 0, nulls: missing?.nulls ?? 0 }
  }
  const low = db`${lo}::text::numeric`
  const high = db`${hi}::text::numeric`
  // An integer bin's width, exact: ceil((max - min + 1) / size).
  const width = column.type === 'integer' ? String((BigInt(hi) - BigInt(lo) + BigInt(size)) / BigInt(size)) : undefined
  const rows = width !== undefined
    ? await cancellable(db<BinRow[]>`
      select g.k::text as bin, n as count, (${low} + k * ${width}::numeric)::text as value, (${low} + (k + 1) * ${width}::numeric)::text as upper
      from (select div(${c}::numeric - ${low}, ${width}::numeric) as k, count(*)::int8 as n from ${from} where ${where} group by 1) g
      order by g.k nulls last`, signal)
    : await cancellable(db<BinRow[]>`
      select g.k::text as bin, n as count, (${low} + k * (${high} - ${low}) / ${size})::text as value,
        (case when k = ${size - 1} or ${high} = ${low} then ${high} else ${low} + (k + 1) * (${high} - ${low}) / ${size} end)::text as upper
      from (
        select case when ${c} is null then null when ${high} = ${low} then 0 else least(div((${c} - ${low}) * ${size}, ${high} - ${low}), ${size - 1}) end as k,
          count(*)::int8 as n
        from ${from} where ${where} group by 1
      ) g
      order by g.k nulls last`, signal)
  // Grouping by k puts the rows without a value in a group of their own (k null).
  const number = (text: string): number | string => {
    const value = Number(text)
    return column.type === 'integer' && !Number.isSafeInteger(value) ? text : value
  }
  return {
    by: 'bins',
    values: rows.flatMap((row) => row.value === null || row.upper === null ? [] : [{ value: number(row.value), to: number(row.upper), count: row.count }]),
    other: 0,
    nulls: rows.find((row) => row.value === null)?.count ?? 0,
  }
}
