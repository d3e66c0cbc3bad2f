// Histograms of the integer, numeric, date and timestamp columns, part of a data set's statistics
// (stats.ts): up to HISTOGRAM_BINS bins of equal width between the column's min and max, fewer
// when it has fewer distinct values. Bin i holds the values v with from ≤ v < to; the last one also
// v = to, which is the max. Integers, dates and timestamps are whole numbers of their unit (1, a
// day, a microsecond): a bin is a whole number of units wide and starts on one (integer bins start
// on whole numbers, date bins on days), and the last bin may be narrower. Numeric bins split
// max − min in exact decimal arithmetic (edges cut 20 digits below the finest digit of min and max).
//
// The edges are computed here from the first pass's exact min and max (text, never a float: an
// 18-digit integer or 1e-400 lose nothing), and all columns are counted in one more scan of the
// table: one query grouping by each column's bin number (width_bucket over the lower edges) with
// GROUPING SETS. On 1,000,000 rows and four columns it took 1.25 s, against 1.6 s for one
// `count(*) filter (where bin = i)` per bin and column, and 2.5 s for a lateral join of (column,
// bin) pairs. Missing values are in no bin (they are `nulls`).
import type { Fragment, TransactionSql } from 'postgres'
import type { ColumnType } from './column-types.ts'
import type { Histogram } from './schemas.ts'
import type { RowsTable, TableColumn } from './table.ts'

export const HISTOGRAM_BINS = 20
const NUMERIC_EXTRA_DIGITS = 20

export type HistogramType = Extract<ColumnType, 'integer' | 'numeric' | 'date' | 'timestamp'>
export const HISTOGRAM_TYPES: ReadonlySet<ColumnType> = new Set<ColumnType>(['integer', 'numeric', 'date', 'timestamp'])

/** The histogram of a column to compute: its min and max as the first pass returns them, as text. */
export interface HistogramColumn extends TableColumn { type: HistogramType, min: string, max: string, distinct: number }

const US_PER_DAY = 86_400_000_000n
const TIMESTAMP = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,6}))?\+00:00$/
const DECIMAL = /^(-?)(\d+)(?:\.(\d+))?$/

/** Days since 1970-01-01 of YYYY-MM-DD (years 1 to 9999). */
function daysOf (text: string): bigint {
  const [year, month, day] = text.split('-').map(Number) as [number, number, number]
  const date = new Date(0)
  date.setUTCFullYear(year, month - 1, day) // not Date.UTC: it reads years 0..99 as 1900..1999
  return BigInt(date.getTime()) * 1000n / US_PER_DAY
}

function dateText (days: bigint): string {
  return new Date(Number(days * US_PER_DAY / 1000n)).toISOString().slice(0, 10)
}

/** Microseconds since the epoch of a timestamp as to_json writes it in UTC (the pool's TimeZone). */
function microsecondsOf (text: string): bigint {
  const match = TIMESTAMP.exec(text)
  if (match === null) throw new Error(`not a timestamp in UTC as to_json writes it: ${text}`)
  const [, year, month, day, hour, minute, second, fraction = ''] = match
  return daysOf(`${year}-${month}-${day}`) * US_PER_DAY +
    BigInt(((Number(hour) * 60 + Number(minute)) * 60 + Number(second)) * 1e6) + BigInt(fraction.padEnd(6, '0'))
}

/** The same text back: to_json's form (fractional zeros dropped, +00:00), so edges read as min and max do. */
function timestampText (us: bigint): string {
  const days = us / US_PER_DAY - (us % US_PER_DAY < 0n ? 1n : 0n)
  const rest = us - days * US_PER_DAY
  const seconds = Number(rest / 1_000_000n)
  const micro = Number(rest % 1_000_000n)
  const pad = (value: number): string => String(value).padStart(2, '0')
  const fraction = micro === 0 ? '' : `.${String(micro).padStart(6, '0').replace(/0+$/, '')}`
  return `${dateText(days)}T${pad(Math.floor(seconds / 3600))}:${pad(Math.floor(seconds / 60) % 60)}:${pad(seconds % 60)}${fraction}+00:00`
}

/** A numeric's text (numeric_out: plain decimal, no exponent) as an integer times 10^-scale. */
function decimalOf (text: string, scale: number): bigint {
  const match = DECIMAL.exec(text)
  if (match === null) throw new Error(`not a numeric as PostgreSQL writes it: ${text}`)
  const [, sign, whole, fraction = ''] = match
  const units = BigInt(whole! + fraction.padEnd(scale, '0'))
  return sign === '-' ? -units : units
}

function decimalText (units: bigint, scale: number): string {
  const digits = (units < 0n ? -units : units).toString().padStart(scale + 1, '0')
  const whole = digits.slice(0, digits.length - scale)
  const fraction = digits.slice(digits.length - scale).replace(/0+$/, '')
  return `${units < 0n ? '-' : ''}${whole}${fraction === '' ? '' : `.${fraction}`}`
}

const ceilDiv = (a: bigint, b: bigint): bigint => (a + b - 1n) / b // a ≥ 0, b > 0

/**
 * The n + 1 edges of a column's n bins, as literals of its type: n lower edges, then the max. The
 * first is the min; n is 1 when min = max.
 */
export function histogramEdges ({ type, min, max, distinct }: Pick<HistogramColumn, 'type' | 'min' | 'max' | 'distinct'>): string[] {
  const target = BigInt(Math.max(1, Math.min(HISTOGRAM_BINS, distinct > 0 ? distinct : HISTOGRAM_BINS)))
  if (type === 'numeric') {
    const scale = Math.max(...[min, max].map((text) => text.split('.')[1]?.length ?? 0)) + NUMERIC_EXTRA_DIGITS
    const [lo, hi] = [decimalOf(min, scale), decimalOf(max, scale)]
    const bins = lo === hi ? 1n : target
    // (hi - lo) * i ≥ 0, so BigInt division is the floor: every edge at or below the exact one.
    return [...Array.from({ length: Number(bins) }, (_, i) => decimalText(lo + (hi - lo) * BigInt(i) / bins, scale)), max]
  }
  // A whole number of units: bins of `width` units, as many as cover min..max.
  const [units, text] = {
    integer: [BigInt, String],
    date: [daysOf, dateText],
    timestamp: [microsecondsOf, timestampText],
  }[type] as [(text: string) => bigint, (units: bigint) => string]
  const [lo, hi] = [units(min), units(max)]
  const span = hi - lo + 1n
  const width = ceilDiv(span, target)
  const bins = ceilDiv(span, width)
  return [...Array.from({ length: Number(bins) }, (_, i) => text(lo + BigInt(i) * width)), max]
}

/**
 * Counts the values of each column in its bins, in one scan of the table, and returns each
 * column's histogram (keyed by position).
 */
export async function computeHistograms (tx: TransactionSql, table: RowsTable, columns: readonly HistogramColumn[]): Promise<Map<number, Histogram>> {
  const result = new Map<number, Histogram>()
  if (columns.length === 0) return result
  const edges = new Map(columns.map((column) => [column.position, histogramEdges(column)]))
  const bucket = (position: number): string => `b${position}`
  const buckets = columns.map((column) => tx`width_bucket(${table.ref(tx, column)}, ${table.values(tx, column, edges.get(column.position)!.slice(0, -1))}) as ${tx(bucket(column.position))}`)
  const names = columns.map((column) => tx`${tx(bucket(column.position))}`)
  const groupings = columns.map((column) => tx`grouping(${tx(bucket(column.position))}) as ${tx(`g${column.position}`)}`)
  const sets = columns.map((column) => tx`(${tx(bucket(column.position))})`)
  const rows = await tx<Array<Record<string, number | string | null>>>`
    select ${list(tx, groupings)}, ${list(tx, names)}, count(*)::int8 as count
    from (select ${list(tx, buckets)} from ${table.identifier(tx)}) buckets
    group by grouping sets (${list(tx, sets)})`

  for (const column of columns) {
    const found = edges.get(column.position)!
    const decode = column.type === 'integer' || column.type === 'numeric' ? Number : String
    result.set(column.position, {
      bins: found.slice(0, -1).map((from, i) => ({ from: decode(from), to: decode(found[i + 1]!), count: 0 })),
    })
  }
  for (const row of rows) {
    const column = columns.find(({ position }) => Number(row[`g${position}`]) === 0)
    const bin = column === undefined ? null : row[bucket(column.position)]
    // A missing value's bin is null (width_bucket of null); no value is below the first edge (the min).
    if (column === undefined || bin === null || bin === undefined) continue
    result.get(column.position)!.bins[Number(bin) - 1]!.count = Number(row.count)
  }
  return result
}

/** Fragments joined by commas. */
function list (tx: TransactionSql, fragments: Fragment[]): Fragment {
  return fragments.slice(1).reduce<Fragment>((all, fragment) => tx`${all}, ${fragment}`, fragments[0]!)
}
