// GET /datasets/{id}/rows: filters, sort and keyset pagination over a data set's table.
//
// Filters are `column__op=value` with the value read by the codec of the column's type, and SQL
// semantics for missing values: a missing value matches no comparison (eq, ne, gt, in, contains …
// alike); `isnull=true` finds it. Sorting is by one column (`sort=col` or `sort=-col`), with the
// row number as tie-breaker; missing values come last in both directions. The cursor holds the row
// number of the last row sent and whether it had a sort key, so the next page starts right after it,
// the key read back from that row (a data set's rows never change; a text key may be longer than a
// URL can carry): no row is skipped or repeated between pages, and page 10,000 costs what page 1
// does (an index range scan, no OFFSET). A page also stops once its values reach
// DATASET_PAGE_MAX_BYTES (with at least one row), so that memory per request stays bounded when
// values are large.
import type { Fragment } from 'postgres'
import type { Sql } from '../../db/pool.ts'
import { cancellable } from '../../lib/concurrency.ts'
import { Problem } from '../../lib/errors.ts'
import { isOrdered, literal } from './column-types.ts'
import type { DatasetColumn, RowsPage } from './schemas.ts'
import { decode, rowsTable, type RowsTable } from './table.ts'

export const FILTER_OPERATORS = ['eq', 'ne', 'gt', 'gte', 'lt', 'lte', 'contains', 'startswith', 'in', 'isnull'] as const
type Operator = typeof FILTER_OPERATORS[number]
const COMPARISONS = { gt: '>', gte: '>=', lt: '<', lte: '<=' } as const
const MAX_IN_VALUES = 1_000

export interface RowsRequest { limit: number, sort?: string, cursor?: string, filters: Record<string, string> }

/** Sort (as given), `v` null when the last row sent had no sort key (else a string, not read) and its row number. */
interface Cursor { s: string, v: string | null, r: number }

function badRequest (detail: string, parameter: string): Problem {
  return new Problem('validation-error', detail, { extra: { errors: [{ in: 'querystring', pointer: `/${parameter}`, detail }] } })
}

/** The column and operator a filter parameter names: `name` (eq) or `name__op`. */
function filterTarget (columns: DatasetColumn[], parameter: string): { column: DatasetColumn, operator: Operator } {
  const exact = columns.find((column) => column.name === parameter)
  if (exact !== undefined) return { column: exact, operator: 'eq' }
  const split = parameter.lastIndexOf('__')
  const name = split === -1 ? parameter : parameter.slice(0, split)
  const column = columns.find((candidate) => candidate.name === name)
  if (column === undefined) throw badRequest(`${parameter}: there is no column "${name}" (columns: ${columns.map((c) => c.name).join(', ')})`, parameter)
  const operator = parameter.slice(split + 2) as Operator
  if (!FILTER_OPERATORS.includes(operator)) throw badRequest(`${parameter}: unknown operator "${operator}" (one of ${FILTER_OPERATORS.join(', ')})`, parameter)
  return { column, operator }
}

function parseFilters (sql: Sql, table: RowsTable, columns: DatasetColumn[], filters: Record<string, string>): Fragment[] {
  return Object.entries(filters).map(([parameter, value]) => {
    const { column, operator } = filterTarget(columns, parameter)
    const c = table.ref(sql, column)
    const typed = (text: string): string => {
      if (text === '') throw badRequest(`${parameter}: a value is required (missing values are found with ${column.name}__isnull=true)`, parameter)
      const found = literal(column.type, text)
      if (found === undefined) throw badRequest(`${parameter}: "${text.slice(0, 100)}" is not a valid ${column.type}`, parameter)
      return found
    }
    switch (operator) {
      case 'isnull':
        if (value !== 'true' && value !== 'false') throw badRequest(`${parameter}: must be true or false`, parameter)
        return value === 'true' ? sql`${c} is null` : sql`${c} is not null`
      case 'contains':
      case 'startswith': {
        if (column.type !== 'text') throw badRequest(`${parameter}: ${operator} applies to text columns; "${column.name}" is ${column.type}`, parameter)
        const escaped = typed(value).replace(/[\\%_]/g, (character) => `\\${character}`)
        return sql`${c} ilike ${operator === 'contains' ? `%${escaped}%` : `${escaped}%`}`
      }
      case 'in': {
        const values = value.split(',')
        if (values.length > MAX_IN_VALUES) throw badRequest(`${parameter}: at most ${MAX_IN_VALUES} values`, parameter)
        return sql`${c} = any(${table.values(sql, column, values.map(typed))})`
      }
      case 'eq': return sql`${c} = ${table.value(sql, column, typed(value))}`
      case 'ne': return sql`${c} <> ${table.value(sql, column, typed(value))}`
      default: {
        if (!isOrdered(column.type)) throw badRequest(`${parameter}: ${operator} does not apply to ${column.type} columns`, parameter)
        return sql`${c} ${sql.unsafe(COMPARISONS[operator])} ${table.value(sql, column, typed(value))}`
      }
    }
  })
}

export function encodeCursor (cursor: Cursor): string {
  return Buffer.from(JSON.stringify(cursor)).toString('base64url')
}

/** A cursor this API handed out for this sort. */
function decodeCursor (text: string, sort: string): Cursor {
  const forged = badRequest('cursor: not a cursor returned by this API', 'cursor')
  let cursor: Partial<Cursor>
  try {
    cursor = JSON.parse(Buffer.from(text, 'base64url').toString('utf8')) as Partial<Cursor>
  } catch {
    throw forged
  }
  if (typeof cursor !== 'object' || cursor === null || !Number.isSafeInteger(cursor.r) || !(typeof cursor.v === 'string' || cursor.v === null) || typeof cursor.s !== 'string') throw forged
  if (cursor.s !== sort) throw badRequest(`cursor: it belongs to sort=${cursor.s || '(none)'}; keep the sort of the first page while paging`, 'cursor')
  return cursor as Cursor
}

function and (sql: Sql, conditions: Fragment[]): Fragment {
  return conditions.reduce((all, condition) => sql`${all} and ${condition}`, sql`true`)
}

interface PageRow { _row: number, _keyed: boolean, _keep: boolean, _bytes: number, [output: string]: unknown }

export async function queryRows (sql: Sql, datasetId: number, columns: DatasetColumn[], request: RowsRequest, { signal, maxBytes }: { signal: AbortSignal, maxBytes: number }): Promise<RowsPage> {
  const table = rowsTable(datasetId)
  const sort = request.sort ?? ''
  const descending = sort.startsWith('-')
  const sortName = descending ? sort.slice(1) : sort
  const sortColumn = sortName === '' ? undefined : columns.find((column) => column.name === sortName)
  if (sortName !== '' && sortColumn === undefined) throw badRequest(`sort: there is no column "${sortName}"`, 'sort')
  const cursor = request.cursor === undefined ? undefined : decodeCursor(request.cursor, sort)
  const filters = parseFilters(sql, table, columns, request.filters)
  const keyed = sortColumn === undefined ? sql`false` : sql`${table.ref(sql, sortColumn)} is not null`
  const size = sql.unsafe(['0', ...columns.map((column) => table.size(column))].join(' + '))
  // Output columns are aliased o1..oN: an alias equal to a column name would capture ORDER BY.
  const output = sql.unsafe(['_row', '_keyed', '_keep', '_bytes', ...columns.map((column) => `case when _keep then ${table.output(column, 'page.')} end as o${column.position}`)].join(', '))
  const wanted = request.limit + 1 // one more than asked: is there a next page?
  let budget = maxBytes

  /**
   * Rows of one range in order, at most `limit`; each flagged `_keep` while the running sum of
   * their sizes stays within the budget (the first row of a page always). Values of rows not kept
   * are never read from the table (a large text stays in TOAST): only their sizes are.
   */
  const page = async (where: Fragment, order: Fragment, limit: number, keepFirst: boolean): Promise<PageRow[]> => await cancellable(sql<PageRow[]>`
    select ${output} from (
      select *, ${keyed} as _keyed,
        sum(${size}) over running as _bytes,
        (${keepFirst} and row_number() over running = 1) or sum(${size}) over running <= ${budget} as _keep
      from ${table.identifier(sql)} where ${and(sql, [...filters, where])}
      window running as (order by ${order} rows between unbounded preceding and current row)
      order by ${order} limit ${limit}
    ) page order by ${order}`, signal)

  let rows: PageRow[]
  if (sortColumn === undefined) {
    rows = await page(cursor === undefined ? sql`true` : sql`_row > ${cursor.r}`, sql`_row`, wanted, true)
  } else {
    // Two ranges in order: the rows with a value (by value, then row), then those without (by row).
    const c = table.ref(sql, sortColumn)
    const direction = sql.unsafe(descending ? 'desc' : 'asc')
    const after = sql.unsafe(descending ? '<' : '>')
    rows = []
    if (cursor === undefined || cursor.v !== null) {
      const start = cursor === undefined ? sql`true` : sql`(${c}, _row) ${after} ((select ${c} from ${table.identifier(sql)} where _row = ${cursor.r}), ${cursor.r})`
      rows = await page(sql`${c} is not null and ${start}`, sql`${c} ${direction}, _row ${direction}`, wanted, true)
    }
    const kept = rows.filter((row) => row._keep)
    if (rows.length < wanted && kept.length === rows.length) {
      budget -= Number(kept.at(-1)?._bytes ?? 0)
      const start = cursor?.v === null ? sql`_row ${after} ${cursor.r}` : sql`true`
      rows.push(...await page(sql`${c} is null and ${start}`, sql`_row ${direction}`, wanted - rows.length, rows.length === 0))
    }
  }

  const kept = rows.filter((row) => row._keep).slice(0, request.limit)
  const more = rows.length > kept.length
  const last = kept.at(-1)
  return {
    rows: kept.map((row) => Object.fromEntries(columns.map((column) => [column.name, decode(column.type, row[`o${column.position}`])]))),
    next_cursor: more && last !== undefined ? encodeCursor({ s: sort, v: last._keyed ? '' : null, r: Number(last._row) }) : null,
  }
}
