// GET /datasets/{id}/aggregate: the rows that pass the filters and `_q` (view.ts), grouped by zero or more
// columns (`_group_by`; none: one group, the whole filtered set), with metrics per group
// (`_metrics`), sorted (`_sort`: a group column or a metric) and paged by keyset.
//
// Groups follow SQL's GROUP BY: missing values form a group of their own. The order is the sort key
// (missing values last in both directions), then the group columns in the order given (ascending,
// missing last): a total order, since no two groups have the same group values. The cursor holds
// the last group's key values (the sort value, then the group values) as the literals of their
// types (column-types.ts), read back through the same codec; the next page is the groups after
// that key. A text group value longer than CURSOR_TEXT_MAX goes as the number of one of the group's
// rows instead, its value read back from the table (as rows.ts does), and a long min/max of text is
// computed again for that group: a cursor stays short enough for a URL.
//
// When every key is a group column, the condition "after the cursor" is one on the rows (a group's
// rows all hold its values), so later pages aggregate fewer rows; sorted by a metric, it applies to
// the groups. Either way every page groups in SQL under QUERY_TIMEOUT_MS, and a page past it is a
// 503 `timeout` saying so: the route can be on by default.
//
// Only table.ts's physical names (c1…cN, _row) and aliases of ours (g0…, m0…) reach SQL; the names
// users gave stay in JavaScript.
import type { Fragment } from 'postgres'
import type { Sql } from '../../db/pool.ts'
import { cancellable } from '../../lib/concurrency.ts'
import { invalidParameter, Problem } from '../../lib/errors.ts'
import { isOrdered, literal, type ColumnType } from './column-types.ts'
import type { AggregatePage, DatasetColumn } from './schemas.ts'
import { decode, outputOf, rowsTable, type RowsTable } from './table.ts'
import { and, encodeCursor, forgedCursor, readCursor, type ApiParameter, type DataQuery } from './view.ts'

/** The API parameters of GET /datasets/{id}/aggregate. */
export const AGGREGATE_PARAMETERS = ['group_by', 'metrics', 'sort', 'limit', 'cursor', 'q'] as const satisfies readonly ApiParameter[]

export const METRIC_FUNCTIONS = ['count', 'count_distinct', 'sum', 'avg', 'stddev', 'min', 'max'] as const
type MetricFunction = typeof METRIC_FUNCTIONS[number]

const DEFAULT_LIMIT = 100
const MAX_GROUP_COLUMNS = 32
const MAX_METRICS = 64
/** Text keys up to this many characters go in the cursor as they are; longer ones by reference. */
const CURSOR_TEXT_MAX = 200
const STATEMENT_TIMEOUT = '57014'

const NUMERIC_TYPES: readonly ColumnType[] = ['integer', 'numeric']

/** A metric as requested: its key in the output (`count`, `sum:score`), its function and column. */
interface Metric { key: string, fn: MetricFunction, column?: DatasetColumn }

/** The SQL aggregate of a metric, over the physical column only. */
function aggregateOf (table: RowsTable, { fn, column }: Metric): string {
  if (column === undefined) return 'count(*)'
  const c = table.column(column.position)
  switch (fn) {
    case 'count_distinct': return `count(distinct ${c})`
    case 'stddev': return `stddev_samp(${c})`
    default: return `${fn}(${c})`
  }
}

/** The type of a metric's value, whose codec reads it back from a cursor: counts are integers; sum, avg, stddev numeric (exact). */
function valueType ({ fn, column }: Metric): ColumnType {
  if (fn === 'count' || fn === 'count_distinct') return 'integer'
  if (fn === 'min' || fn === 'max') return column!.type
  return 'numeric'
}

/** A metric's SQL value as sent (numbers as exact text, made numbers in JavaScript: no overflow in SQL). */
function metricOutput (metric: Metric, alias: string): string {
  const type = valueType(metric)
  if (metric.fn === 'count' || metric.fn === 'count_distinct') return alias
  return type === 'numeric' ? `${alias}::text` : outputOf(type, alias)
}

function decodeMetric (metric: Metric, value: unknown): unknown {
  if (value === null || metric.fn === 'count' || metric.fn === 'count_distinct') return value
  // A sum of integers is an integer: beyond 2^53 it stays a decimal string, as int8 values do in /rows.
  if (metric.fn === 'sum' && metric.column!.type === 'integer' && !Number.isSafeInteger(Number(value))) return value
  return decode(valueType(metric), value)
}

/** Why a function does not apply to a column's type, or undefined when it does. */
function misfit (fn: MetricFunction, column: DatasetColumn): string | undefined {
  if ((fn === 'sum' || fn === 'avg' || fn === 'stddev') && !NUMERIC_TYPES.includes(column.type)) return `${fn} applies to integer and numeric columns; "${column.name}" is ${column.type}`
  if ((fn === 'min' || fn === 'max') && !isOrdered(column.type)) return `${fn} applies to ordered columns (all but boolean); "${column.name}" is ${column.type}`
  return undefined
}

const isFunction = (name: string): name is MetricFunction => (METRIC_FUNCTIONS as readonly string[]).includes(name)

/** `count`, or `fn:column` (the column name is all after the first colon: it may hold colons itself). */
function metricOf (columns: DatasetColumn[], item: string, parameter: string): Metric {
  if (item === 'count') return { key: 'count', fn: 'count' }
  const colon = item.indexOf(':')
  const fn = colon === -1 ? item : item.slice(0, colon)
  if (!isFunction(fn)) throw invalidParameter(`${parameter}: unknown metric "${fn.slice(0, 100)}" (one of ${METRIC_FUNCTIONS.join(', ')}; count alone, the others as function:column)`, parameter)
  if (colon === -1) throw invalidParameter(`${parameter}: ${fn} needs a column: ${fn}:column`, parameter)
  const name = item.slice(colon + 1)
  const column = columns.find((candidate) => candidate.name === name)
  if (column === undefined) throw invalidParameter(`${parameter}: ${item.slice(0, 200)}: there is no column "${name.slice(0, 200)}"`, parameter)
  const reason = misfit(fn, column)
  if (reason !== undefined) throw invalidParameter(`${parameter}: ${item}: ${reason}`, parameter)
  return { key: item, fn, column }
}

/** The metrics requested (repeated, each value comma-separated unless it is one metric whole), in order, each once; default `count`. */
function readMetrics (query: DataQuery, groups: DatasetColumn[]): Metric[] {
  const parameter = query.nameOf('metrics')
  const found = new Map<string, Metric>()
  for (const text of query.texts('metrics') ?? ['count']) {
    let whole: Metric | undefined
    try {
      whole = metricOf(query.columns, text, parameter)
    } catch {
      whole = undefined
    }
    for (const item of whole === undefined ? text.split(',') : [text]) {
      if (item === '') throw invalidParameter(`${parameter}: an empty metric (metrics are comma-separated: count,sum:score)`, parameter)
      const metric = whole ?? metricOf(query.columns, item, parameter)
      if (groups.some((column) => column.name === metric.key)) throw invalidParameter(`${parameter}: ${metric.key}: a group column of that name is in the output already`, parameter)
      found.set(metric.key, metric)
    }
  }
  if (found.size > MAX_METRICS) throw invalidParameter(`${parameter}: at most ${MAX_METRICS} metrics`, parameter)
  return [...found.values()]
}

/**
 * One key of the order: a group column or a metric, its alias in the grouped query and, for a group
 * column, the column (a condition on it may apply to the rows).
 */
interface SortKey { alias: string, type: ColumnType, descending: boolean, column?: DatasetColumn, metric?: Metric }

/** A key value in a cursor: its literal, missing (null), a row holding it (`r`), or to be computed again for the group (`x`). */
type CursorValue = string | null | { r: number } | { x: 1 }
/** Sort (as given), group columns (names), and the last group's key values in key order. */
interface Cursor { s: string, g: string[], k: CursorValue[] }

function decodeCursor (text: string, sort: string, groups: DatasetColumn[], keys: SortKey[], parameter: string): Cursor {
  const forged = forgedCursor(parameter)
  const cursor = readCursor(text, sort, parameter)
  if (!Array.isArray(cursor.g) || !Array.isArray(cursor.k)) throw forged
  if (cursor.g.length !== groups.length || cursor.g.some((name, index) => name !== groups[index]!.name)) {
    throw invalidParameter(`${parameter}: it belongs to another _group_by; keep the group columns of the first page while paging`, parameter)
  }
  if (cursor.k.length !== keys.length) throw forged
  const values = cursor.k.map((value: unknown, index): CursorValue => {
    const key = keys[index]!
    if (value === null) return null
    if (typeof value === 'string') {
      const read = literal(key.type, value)
      if (read === undefined) throw forged
      return read
    }
    if (typeof value === 'object' && key.type === 'text') {
      const reference = value as { r?: unknown, x?: unknown }
      if (key.column !== undefined && Number.isSafeInteger(reference.r) && (reference.r as number) >= 0) return { r: reference.r as number }
      if (key.metric !== undefined && (key.metric.fn === 'min' || key.metric.fn === 'max') && reference.x === 1) return { x: 1 }
    }
    throw forged
  })
  return { s: cursor.s, g: groups.map((column) => column.name), k: values }
}

function readSortKeys (query: DataQuery, groups: DatasetColumn[], metrics: Metric[]): { text: string, keys: SortKey[] } {
  const parameter = query.nameOf('sort')
  const text = query.one('sort') ?? ''
  const descending = text.startsWith('-')
  const name = descending ? text.slice(1) : text
  const groupKeys = groups.map((column, index): SortKey => ({ alias: `g${index}`, type: column.type, descending: false, column }))
  if (name === '') return { text, keys: groupKeys }
  const group = groups.findIndex((column) => column.name === name)
  if (group !== -1) return { text, keys: [{ ...groupKeys[group]!, descending }, ...groupKeys.filter((_, index) => index !== group)] }
  const metric = metrics.findIndex((candidate) => candidate.key === name)
  if (metric !== -1) return { text, keys: [{ alias: `m${metric}`, type: valueType(metrics[metric]!), descending, metric: metrics[metric] }, ...groupKeys] }
  const choices = [...groups.map((column) => column.name), ...metrics.map((candidate) => candidate.key)].map((choice) => `"${choice}"`).join(', ')
  throw invalidParameter(`${parameter}: "${name.slice(0, 200)}" is neither a group column nor one of the metrics; sort by one of ${choices} (a metric must be in _metrics)`, parameter)
}

export interface AggregateOptions {
  signal: AbortSignal
  /** QUERY_TIMEOUT_MS, for the message when the aggregate runs past it. */
  queryTimeoutMs?: number
}

export async function queryAggregate (sql: Sql, datasetId: number, query: DataQuery, { signal, queryTimeoutMs }: AggregateOptions): Promise<AggregatePage> {
  const table = rowsTable(datasetId)
  const limit = query.one('limit') ?? DEFAULT_LIMIT
  const groups = query.columnList('group_by') ?? []
  if (groups.length > MAX_GROUP_COLUMNS) throw invalidParameter(`${query.nameOf('group_by')}: at most ${MAX_GROUP_COLUMNS} columns`, query.nameOf('group_by'))
  const metrics = readMetrics(query, groups)
  const sort = readSortKeys(query, groups, metrics)
  const cursorText = query.one('cursor')
  const cursor = cursorText === undefined ? undefined : decodeCursor(cursorText, sort.text, groups, sort.keys, query.nameOf('cursor'))
  const filtered = query.where(sql, table)
  // One of the group's rows, to refer to a long text group value by.
  const referenced = groups.some((column) => column.type === 'text')

  const inner = [
    ...groups.map((column, index) => `${table.column(column.position)} as g${index}`),
    ...metrics.map((metric, index) => `${aggregateOf(table, metric)} as m${index}`),
    ...(referenced ? ['min(_row) as _first'] : []),
  ]
  const outer = [
    ...groups.map((column, index) => `${outputOf(column.type, `g${index}`)} as og${index}`),
    ...metrics.map((metric, index) => `${metricOutput(metric, `m${index}`)} as om${index}`),
    ...(referenced ? ['_first'] : []),
  ]
  const groupBy = groups.length === 0 ? sql`` : sql`group by ${sql.unsafe(groups.map((column) => table.column(column.position)).join(', '))}`
  const order = sort.keys.length === 0 ? sql`` : sql`order by ${sql.unsafe(sort.keys.map((key) => `${key.alias} ${key.descending ? 'desc' : 'asc'} nulls last`).join(', '))}`

  // After the cursor: on the rows when every key is a group column, else on the groups.
  const onRows = sort.keys.every((key) => key.column !== undefined)
  let rowsAfter = sql`true`
  let groupsAfter = sql`true`
  if (cursor !== undefined) {
    const groupValue = (column: DatasetColumn, value: Exclude<CursorValue, null | { x: 1 }>): Fragment =>
      typeof value === 'string' ? table.value(sql, column, value) : sql`(select ${table.ref(sql, column)} from ${table.identifier(sql)} where _row = ${value.r})`
    const inGroup = and(sql, groups.map((column) => {
      const value = cursor.k[sort.keys.findIndex((key) => key.column === column)] ?? null
      return value === null ? sql`${table.ref(sql, column)} is null` : sql`${table.ref(sql, column)} = ${groupValue(column, value as Exclude<CursorValue, null | { x: 1 }>)}`
    }))
    const valueOf = (key: SortKey, value: Exclude<CursorValue, null>): Fragment => {
      if (key.column !== undefined) return groupValue(key.column, value as Exclude<CursorValue, null | { x: 1 }>)
      if (typeof value === 'object') return sql`(select ${sql.unsafe(aggregateOf(table, key.metric!))} from ${table.identifier(sql)} where ${filtered} and ${inGroup})`
      // A metric's value is of its own type, whatever column it was computed from (table.value reads only the type).
      return table.value(sql, { position: 0, type: key.type }, value)
    }
    /** Keys from `index` on come after the cursor's: beyond in this key, or equal in it and after in the next (missing values last). */
    const after = (index: number): Fragment => {
      const key = sort.keys[index]!
      const value = cursor.k[index]!
      const ref = onRows ? table.ref(sql, key.column!) : sql(key.alias) as unknown as Fragment
      const beyond = value === null ? sql`false` : sql`(${ref} ${sql.unsafe(key.descending ? '<' : '>')} ${valueOf(key, value)} or ${ref} is null)`
      if (index === sort.keys.length - 1) return beyond
      const equal = value === null ? sql`${ref} is null` : sql`${ref} = ${valueOf(key, value)}`
      return sql`(${beyond} or (${equal} and ${after(index + 1)}))`
    }
    const condition = sort.keys.length === 0 ? sql`false` : after(0)
    if (onRows) rowsAfter = condition
    else groupsAfter = condition
  }

  let found: Array<Record<string, unknown>>
  try {
    found = await cancellable(sql<Array<Record<string, unknown>>>`
      select ${sql.unsafe(outer.join(', '))} from (
        select ${sql.unsafe(inner.join(', '))} from ${table.identifier(sql)}
        where ${filtered} and ${rowsAfter} ${groupBy}
      ) groups
      where ${groupsAfter} ${order} limit ${limit + 1}`, signal)
  } catch (error) {
    const { code, message } = error as { code?: string, message?: string }
    if (code === STATEMENT_TIMEOUT && /statement timeout/.test(message ?? '')) {
      const limitText = queryTimeoutMs === undefined ? 'QUERY_TIMEOUT_MS' : `QUERY_TIMEOUT_MS (${queryTimeoutMs} ms)`
      throw new Problem('timeout', `The aggregate took longer than ${limitText} and was cancelled; narrow it with filters or fewer group columns, or ask the operator to raise QUERY_TIMEOUT_MS.`, { cause: error })
    }
    throw error
  }

  const page = found.slice(0, limit)
  const last = page.at(-1)
  const keyValue = (key: SortKey, row: Record<string, unknown>): CursorValue => {
    const index = Number(key.alias.slice(1))
    // As the driver read it: numerics and dates as text, int8 as a number (or decimal text), booleans.
    const raw = row[key.column !== undefined ? `og${index}` : `om${index}`] as string | number | boolean | null | undefined
    if (raw === null || raw === undefined) return null
    const text = String(raw) // the literal of the value's type: exact numerics, ISO dates and instants, true/false
    if (key.type !== 'text' || text.length <= CURSOR_TEXT_MAX) return text
    return key.column !== undefined ? { r: Number(row._first) } : { x: 1 }
  }
  return {
    groups: page.map((row) => {
      // Prototype-less: a column may be called "__proto__".
      const group = Object.create(null) as Record<string, unknown>
      for (const [index, column] of groups.entries()) group[column.name] = decode(column.type, row[`og${index}`])
      for (const [index, metric] of metrics.entries()) group[metric.key] = decodeMetric(metric, row[`om${index}`])
      return group
    }) as AggregatePage['groups'], // values of decode: numbers, strings, booleans, null
    next_cursor: found.length > limit && last !== undefined
      ? encodeCursor({ s: sort.text, g: groups.map((column) => column.name), k: sort.keys.map((key) => keyValue(key, last)) })
      : null,
  }
}
