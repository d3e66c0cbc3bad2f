// GET /datasets/{id}/rows: filters, sort and keyset pagination over a data set's table.
//
// Filters are `column__op=value` with the value checked against the column's type. Sorting is by
// one column (`sort=col` or `sort=-col`), with the row number as tie-breaker; missing values come
// last in both directions. The cursor holds the sort key and row number of the last row sent, so
// the next page starts right after it: no row is skipped or repeated between pages, and page
// 10,000 costs what page 1 does (an index range scan, no OFFSET).
import type { Fragment, Row } from 'postgres'
import type { Sql } from '../db/pool.ts'
import { cancellable } from '../lib/concurrency.ts'
import { Problem } from '../lib/errors.ts'
import { physical } from './importer.ts'
import { fits, SQL_TYPES, type ColumnType } from './types.ts'

export interface ColumnInfo { position: number, name: string, type: ColumnType, nullable: boolean }

export const FILTER_OPERATORS = ['eq', 'ne', 'gt', 'gte', 'lt', 'lte', 'contains', 'startswith', 'in', 'isnull'] as const
type Operator = typeof FILTER_OPERATORS[number]
const ORDERED: readonly ColumnType[] = ['integer', 'numeric', 'date', 'timestamp', 'text']

export interface RowsRequest { limit: number, sort?: string, cursor?: string, filters: Record<string, string> }
export interface RowsPage { rows: Array<Record<string, unknown>>, next_cursor: string | null }

/** Sort (as given), sort key of the last row sent (text, null when missing) and its row number. */
export interface Cursor { s: string, v: string | null, r: number }

function badRequest (detail: string, parameter: string): Problem {
  return new Problem('validation-error', detail, { extra: { errors: [{ in: 'querystring', pointer: `/${parameter}`, detail }] } })
}

/** How each type is sent to the client: numbers as numbers, dates as YYYY-MM-DD. */
function outputExpression (column: ColumnInfo): string {
  const c = physical(column.position)
  if (column.type === 'numeric') return `${c}::float8`
  if (column.type === 'date') return `${c}::text`
  return c
}

/** Output columns are aliased o1..oN: an alias equal to a column name would capture ORDER BY. */
function outputAlias (column: ColumnInfo): string {
  return `o${column.position + 1}`
}

function selectList (columns: ColumnInfo[]): string {
  return columns.map((column) => `${outputExpression(column)} as ${outputAlias(column)}`).join(', ')
}

function parseFilters (sql: Sql, columns: ColumnInfo[], filters: Record<string, string>): Fragment[] {
  const byName = new Map(columns.map((column) => [column.name, column]))
  return Object.entries(filters).map(([parameter, value]) => {
    const split = parameter.lastIndexOf('__')
    const name = split === -1 ? parameter : parameter.slice(0, split)
    const operator = (split === -1 ? 'eq' : parameter.slice(split + 2)) as Operator
    const column = byName.get(name)
    if (column === undefined) throw badRequest(`${parameter}: there is no column "${name}" (columns: ${columns.map((c) => c.name).join(', ')})`, parameter)
    if (!FILTER_OPERATORS.includes(operator)) throw badRequest(`${parameter}: unknown operator "${operator}" (one of ${FILTER_OPERATORS.join(', ')})`, parameter)
    const c = sql(physical(column.position))
    const cast = sql.unsafe(SQL_TYPES[column.type])
    const typed = (text: string): string => {
      if (!fits(column.type, text, 'text')) throw badRequest(`${parameter}: "${text}" is not a valid ${column.type}`, parameter)
      return text
    }
    switch (operator) {
      case 'isnull':
        if (value !== 'true' && value !== 'false') throw badRequest(`${parameter}: must be true or false`, parameter)
        return value === 'true' ? sql`${c} is null` : sql`${c} is not null`
      case 'contains':
      case 'startswith': {
        if (column.type !== 'text') throw badRequest(`${parameter}: ${operator} applies to text columns; "${name}" is ${column.type}`, parameter)
        const escaped = value.replace(/[\\%_]/g, (character) => `\\${character}`)
        return sql`${c} ilike ${operator === 'contains' ? `%${escaped}%` : `${escaped}%`}`
      }
      case 'in':
        return sql`${c} = any(${value.split(',').map(typed)}::${cast}[])`
      case 'eq': return sql`${c} = ${typed(value)}::${cast}`
      case 'ne': return sql`${c} is distinct from ${typed(value)}::${cast}`
      default: {
        if (!ORDERED.includes(column.type)) throw badRequest(`${parameter}: ${operator} does not apply to ${column.type} columns`, parameter)
        const comparison = sql.unsafe({ gt: '>', gte: '>=', lt: '<', lte: '<=' }[operator])
        return sql`${c} ${comparison} ${typed(value)}::${cast}`
      }
    }
  })
}

export function encodeCursor (cursor: Cursor): string {
  return Buffer.from(JSON.stringify(cursor)).toString('base64url')
}

function decodeCursor (text: string, sort: string): Cursor {
  let cursor: Partial<Cursor>
  try {
    cursor = JSON.parse(Buffer.from(text, 'base64url').toString('utf8')) as Partial<Cursor>
  } catch {
    throw badRequest('cursor: not a cursor returned by this API', 'cursor')
  }
  if (typeof cursor !== 'object' || cursor === null || !Number.isSafeInteger(cursor.r) || !(typeof cursor.v === 'string' || cursor.v === null) || typeof cursor.s !== 'string') {
    throw badRequest('cursor: not a cursor returned by this API', 'cursor')
  }
  if (cursor.s !== sort) throw badRequest(`cursor: it belongs to sort=${cursor.s || '(none)'}; keep the sort of the first page while paging`, 'cursor')
  return cursor as Cursor
}

function and (sql: Sql, conditions: Fragment[]): Fragment {
  return conditions.reduce((all, condition) => sql`${all} and ${condition}`, sql`true`)
}

export async function queryRows (sql: Sql, datasetId: number, columns: ColumnInfo[], request: RowsRequest, signal: AbortSignal): Promise<RowsPage> {
  const sort = request.sort ?? ''
  const descending = sort.startsWith('-')
  const sortName = descending ? sort.slice(1) : sort
  const sortColumn = sortName === '' ? undefined : columns.find((column) => column.name === sortName)
  if (sortName !== '' && sortColumn === undefined) throw badRequest(`sort: there is no column "${sortName}"`, 'sort')
  const cursor = request.cursor === undefined ? undefined : decodeCursor(request.cursor, sort)
  const filters = parseFilters(sql, columns, request.filters)
  const table = sql(`dataset_rows.ds_${datasetId}`)
  const output = sql.unsafe(selectList(columns))
  const wanted = request.limit + 1 // one more than asked: is there a next page?

  const page = async (where: Fragment, order: Fragment, limit: number): Promise<Row[]> => await cancellable(sql`
    select _row, ${sortColumn === undefined ? sql`null` : sql`${sql(physical(sortColumn.position))}::text`} as _key, ${output}
    from ${table} where ${and(sql, [...filters, where])} order by ${order} limit ${limit}`, signal)

  let rows: Row[]
  if (sortColumn === undefined) {
    rows = await page(cursor === undefined ? sql`true` : sql`_row > ${cursor.r}`, sql`_row`, wanted)
  } else {
    // Two ranges in order: the rows with a value (by value, then row), then those without (by row).
    const c = sql(physical(sortColumn.position))
    const cast = sql.unsafe(SQL_TYPES[sortColumn.type])
    const direction = sql.unsafe(descending ? 'desc' : 'asc')
    const after = sql.unsafe(descending ? '<' : '>')
    rows = []
    if (cursor === undefined || cursor.v !== null) {
      const start = cursor === undefined ? sql`true` : sql`(${c}, _row) ${after} (${cursor.v}::${cast}, ${cursor.r})`
      rows = await page(sql`${c} is not null and ${start}`, sql`${c} ${direction}, _row ${direction}`, wanted)
    }
    if (rows.length < wanted) {
      const start = cursor?.v === null ? sql`_row ${after} ${cursor.r}` : sql`true`
      rows.push(...await page(sql`${c} is null and ${start}`, sql`_row ${direction}`, wanted - rows.length))
    }
  }

  const more = rows.length > request.limit
  if (more) rows.length = request.limit
  const last = rows.at(-1)
  return {
    rows: rows.map((row) => Object.fromEntries(columns.map((column) => [column.name, row[outputAlias(column)]]))),
    next_cursor: more && last !== undefined ? encodeCursor({ s: sort, v: last._key as string | null, r: Number(last._row) }) : null,
  }
}
