// The query string of a data-set read (rows, export, facets, aggregates) as the API's own
// parameters and one SQL condition over the table: every such route reads its query here, so that
// a filter means the same rows on each of them.
//
// The naming rule: a parameter that starts with `_` and holds no `__` is the API's own (`_limit`,
// `_sort` …); an unknown one is refused. The old bare names (`limit`, `sort` …) still mean the
// API's parameter unless the data set has a column of that name: then they filter it. Every other
// parameter is a filter, `column__op=value`, or `column=value` for eq; a column whose own name
// starts with `_` is filtered with its operator written out (`_id__eq=3`), as in Datasette. So no
// column name, however chosen, is out of reach of a filter, and no filter hides a parameter.
//
// Filters read their values by the codec of the column's type, with SQL semantics for missing
// values: a missing value matches no comparison (eq, ne, gt, in, contains … alike); `isnull=true`
// finds it. `_q` and `column__search` are full-text searches (search.ts).
import type { Fragment } from 'postgres'
import Type, { type Static, type TSchema } from 'typebox'
import Value from 'typebox/value'
import type { Sql } from '../../db/pool.ts'
import { invalidParameter, invalidValue, type Problem } from '../../lib/errors.ts'
import { isOrdered, literal } from './column-types.ts'
import type { DatasetColumn } from './schemas.ts'
import { matchesColumnSearch, matchesSearch } from './search.ts'
import type { RowsTable } from './table.ts'

/** The longest `_cursor` taken (a cursor this API hands out is never longer). */
export const CURSOR_MAX_LENGTH = 4096

/** The filter operators and what each means: the filter parameter's documentation is made of this table. */
const OPERATOR_MEANINGS = {
  eq: 'equals (`column=value` too)',
  ne: 'differs from',
  gt: 'greater than (all types but boolean)',
  gte: 'greater than or equal',
  lt: 'less than',
  lte: 'less than or equal',
  contains: 'contains, case-insensitive (text)',
  startswith: 'starts with, case-insensitive (text)',
  in: 'one of, comma-separated',
  isnull: '`true`: has no value, `false`: has one',
  search: 'full-text search of the column (text)',
} as const
type Operator = keyof typeof OPERATOR_MEANINGS
export const FILTER_OPERATORS = Object.keys(OPERATOR_MEANINGS) as Operator[]
const FILTER_RULE = 'Filters, each a query parameter of its own: `column__op=value` (`country=NO&year__gte=2020`), op one of ' +
  `${FILTER_OPERATORS.map((operator) => `\`${operator}\` ${OPERATOR_MEANINGS[operator]}`).join('; ')}. ` +
  'Values are read by the column\'s type; a missing value matches no comparison (find it with `isnull=true`); a filter given twice must hold both times; ' +
  'a column whose name starts with `_` is filtered with its operator written out (`_id__eq=3`).'
const COMPARISONS = { gt: '>', gte: '>=', lt: '<', lte: '<=' } as const
const MAX_IN_VALUES = 1_000
const MAX_LISTED_COLUMNS = 1_000

/** A list parameter: one value (comma-separated) or the parameter repeated, as Fastify hands a repeated one over. */
function listOf (options: { description: string, examples: string[] }) {
  return Type.Union([Type.String({ minLength: 1 }), Type.Array(Type.String({ minLength: 1 }), { minItems: 1 })], options)
}

/** Each API parameter once: its type (checked for `_name` by the route's schema, for a bare name here) and its documentation. */
export const API_PARAMETERS = {
  limit: Type.Integer({ minimum: 1, maximum: 1000, description: 'Rows (on /aggregate: groups) per page (default 100)', examples: [100] }),
  sort: Type.String({ minLength: 1, maxLength: 201, description: '`column` or `-column` (descending); missing values last. On /aggregate a group column or a metric (`-count`, `sum:score`)', examples: ['-score'] }),
  cursor: Type.String({ maxLength: CURSOR_MAX_LENGTH, description: 'The `next_cursor` of the previous page (same sort and filters)' }),
  q: Type.String({ maxLength: 10_000, description: 'Full-text search over the text columns: words (all must appear), "quoted phrases", `or`, `-word`; ' +
    'case-insensitive, no stemming (PostgreSQL\'s `simple` configuration). With `_sort=_rank`, best matches first', examples: ['paris "open data" -draft'] }),
  select: listOf({ description: 'Columns to return, comma-separated or repeated (default: all, in order)', examples: ['name,score'] }),
  group_by: listOf({ description: 'Columns to group by, comma-separated or repeated (default: none, one group of all filtered rows)', examples: ['category,active'] }),
  metrics: listOf({ description: 'Metrics of each group, comma-separated or repeated: `count` (rows), `count:col` (values), `count_distinct:col`, `sum:col`, `avg:col`, `stddev:col` (integer, numeric), `min:col`, `max:col` (all but boolean); default `count`', examples: ['count,sum:score,avg:score,max:day'] }),
  format: Type.Union([Type.Literal('csv'), Type.Literal('ndjson')], { description: 'Export format (default csv)', examples: ['csv'] }),
  facet: Type.Union([
    Type.String({ minLength: 1 }),
    Type.Array(Type.String({ minLength: 1 }), { maxItems: 100 }),
  ], {
    description: 'Columns to facet, repeated or comma-separated: `column` (its default: text and boolean by value, integer and numeric by bins, date and timestamp by ' +
      'day, month or year, whichever is the finest with at most `_facet_size` buckets over the filtered rows) or `column__by` with by one of value, bins ' +
      '(integer, numeric), day, month, year (date, timestamp). At most 10 facets.',
    examples: ['category', 'category,score__bins', 'day__month'],
  }),
  facet_size: Type.Integer({ minimum: 1, maximum: 100, description: 'Values per facet: the top N by count (ties by value), or N bins (default 20, at most 100)', examples: [20] }),
  count: Type.Union([Type.Literal('exact'), Type.Literal('estimated'), Type.Literal('none')], {
    description: '`total`: `exact` (a count, however long it takes, within QUERY_TIMEOUT_MS), `estimated` (the planner\'s estimate, at once), `none`. ' +
      'Default: exact if it takes at most COUNT_TIMEOUT_MS, else the estimate (`total_is_estimate: true`). Without filters the total is the data set\'s row count, exact and free. ' +
      'An exact total is counted once per set of filters and kept while the data set is unchanged; filters whose count was late go to the estimate at once for a minute.',
    examples: ['estimated'],
  }),
} satisfies Record<string, TSchema>
export type ApiParameter = keyof typeof API_PARAMETERS
type ParameterValue<P extends ApiParameter> = Static<typeof API_PARAMETERS[P]>

/** A query string as Fastify hands it to the route: repeated parameters as arrays. */
export type QueryString = Record<string, unknown>

/** The schema of a route's query string: the API parameters it takes (as `_name`), any other parameter a filter. */
export function viewQuerystring (accepted: readonly ApiParameter[]) {
  return Type.Object(
    Object.fromEntries(accepted.map((name) => [`_${name}`, Type.Optional(API_PARAMETERS[name])])),
    { additionalProperties: Type.Union([Type.String(), Type.Array(Type.String())], { description: FILTER_RULE }) },
  )
}

/** A cursor: the position of a page's last row (or group), as base64url JSON. */
export function encodeCursor<Position extends { s: string }> (position: Position): string {
  return Buffer.from(JSON.stringify(position)).toString('base64url')
}

export function forgedCursor (parameter: string): Problem {
  return invalidParameter(`${parameter}: not a cursor returned by this API`, parameter)
}

/**
 * The position a cursor holds when this API handed it out for this sort (`s`); the caller checks
 * the rest of its fields (`forgedCursor` when they are not its own).
 */
export function readCursor (text: string, sort: string, parameter: string): Record<string, unknown> & { s: string } {
  let cursor: unknown
  try {
    cursor = JSON.parse(Buffer.from(text, 'base64url').toString('utf8'))
  } catch {
    throw forgedCursor(parameter)
  }
  if (typeof cursor !== 'object' || cursor === null || Array.isArray(cursor) || typeof (cursor as { s?: unknown }).s !== 'string') throw forgedCursor(parameter)
  const position = cursor as Record<string, unknown> & { s: string }
  if (position.s !== sort) throw invalidParameter(`${parameter}: it belongs to _sort=${position.s || '(none)'}; keep the sort of the first page while paging`, parameter)
  return position
}

/** A data-set read's query: the API parameters given (each as the parameter named it), and the filters. */
export class DataQuery {
  readonly #given = new Map<ApiParameter, { parameter: string, values: unknown[] }>()
  readonly filters: Array<{ parameter: string, value: string }> = []

  readonly columns: DatasetColumn[]

  constructor (columns: DatasetColumn[], query: QueryString, accepted: readonly ApiParameter[]) {
    this.columns = columns
    const names = new Set(columns.map((column) => column.name))
    const isAccepted = (name: string): name is ApiParameter => (accepted as readonly string[]).includes(name)
    for (const [parameter, raw] of Object.entries(query)) {
      const values = Array.isArray(raw) ? raw as unknown[] : [raw]
      const own = parameter.startsWith('_') && !parameter.includes('__') ? parameter.slice(1) : undefined
      if (own !== undefined && !isAccepted(own)) {
        throw invalidParameter(`${parameter}: not a parameter of this route (it takes ${accepted.map((name) => `_${name}`).join(', ')}; a filter on a column named "${parameter}" is written ${parameter}__eq=…)`, parameter)
      }
      const name = own ?? (isAccepted(parameter) && !names.has(parameter) ? parameter : undefined)
      if (name === undefined) {
        for (const value of values) this.filters.push({ parameter, value: String(value) })
        continue
      }
      if (this.#given.has(name)) throw invalidParameter(`${parameter}: given as both _${name} and ${name}`, parameter)
      this.#given.set(name, { parameter, values })
    }
  }

  /** The parameter as the client named it (`sort` or `_sort`), for messages. */
  nameOf (name: ApiParameter): string {
    return this.#given.get(name)?.parameter ?? `_${name}`
  }

  /** A parameter given once, of its type (a bare name is checked here; `_name` was by the route). */
  one<P extends ApiParameter> (name: P): ParameterValue<P> | undefined {
    const given = this.#given.get(name)
    if (given === undefined) return undefined
    if (given.values.length !== 1) throw invalidParameter(`${given.parameter}: give it once`, given.parameter)
    const schema = API_PARAMETERS[name]
    const [raw] = given.values
    const value = Value.Convert(schema, raw)
    // Convert reads "1.5" and "true" as the integer 1; a number given as text (a bare name) must be
    // the number the whole text is, as the route's schema has it for `_name`.
    if (typeof value === 'number' && typeof raw === 'string' && Number(raw) !== value) throw invalidParameter(`${given.parameter} must be a whole number`, given.parameter)
    if (!Value.Check(schema, value)) throw invalidValue('querystring', schema, value, `/${given.parameter}`)
    return value
  }

  /** The values of a parameter as given (a repeated one several), undefined when it is not given. */
  texts (name: ApiParameter): string[] | undefined {
    return this.#given.get(name)?.values.map(String)
  }

  /**
   * The items of a list parameter (repeated, each value comma-separated unless `isWhole` says the
   * whole value is one item: a column name, say), in the order given; undefined when not given.
   */
  listItems (name: ApiParameter, isWhole: (value: string) => boolean): { parameter: string, items: string[] } | undefined {
    const given = this.#given.get(name)
    if (given === undefined) return undefined
    const items = given.values.map(String).flatMap((value) => isWhole(value) ? [value] : value.split(','))
    return { parameter: given.parameter, items }
  }

  /**
   * Columns named by a list parameter (repeated, each value comma-separated unless it is a column
   * name itself), in the order given, each once; undefined when the parameter is not given.
   */
  columnList (name: ApiParameter): DatasetColumn[] | undefined {
    const given = this.listItems(name, (value) => this.columns.some((column) => column.name === value))
    if (given === undefined) return undefined
    const listed = new Map<string, DatasetColumn>()
    for (const item of given.items) {
      const column = this.columns.find((candidate) => candidate.name === item)
      if (column === undefined) throw invalidParameter(`${given.parameter}: there is no column "${item.slice(0, 200)}" (columns: ${columnNames(this.columns)})`, given.parameter)
      listed.set(column.name, column)
    }
    if (listed.size > MAX_LISTED_COLUMNS) throw invalidParameter(`${given.parameter}: at most ${MAX_LISTED_COLUMNS} columns`, given.parameter)
    return [...listed.values()]
  }

  /** The rows chosen (filters and search) as one text, equal for equal choices in any order. */
  get selection (): string {
    return JSON.stringify([this.filters.map(({ parameter, value }) => JSON.stringify([parameter, value])).sort(), this.texts('q') ?? null])
  }

  /** Whether some rows may be left out: a filter or a search is given. */
  get isFiltered (): boolean {
    return this.filters.length > 0 || this.#given.has('q')
  }

  /** The condition the filters and the search make, over the data set's table (`true` without them). */
  where (sql: Sql, table: RowsTable): Fragment {
    const conditions = this.filters.map(({ parameter, value }) => filterCondition(sql, table, this.columns, parameter, value))
    const q = this.one('q')
    if (q !== undefined) conditions.push(matchesSearch(sql, table, this.columns, q, this.nameOf('q')))
    return and(sql, conditions)
  }
}

export function columnNames (columns: DatasetColumn[]): string {
  const names = columns.map((column) => column.name)
  return names.length > 20 ? `${names.slice(0, 20).join(', ')} … (${names.length} in all)` : names.join(', ')
}

export function and (sql: Sql, conditions: Fragment[]): Fragment {
  return conditions.reduce((all, condition) => sql`${all} and ${condition}`, sql`true`)
}

/** The column and operator a filter parameter names: `name` (eq, unless it starts with `_`) or `name__op`. */
function filterTarget (columns: DatasetColumn[], parameter: string): { column: DatasetColumn, operator: Operator } {
  const exact = parameter.startsWith('_') ? undefined : columns.find((column) => column.name === parameter)
  if (exact !== undefined) return { column: exact, operator: 'eq' }
  const split = parameter.lastIndexOf('__')
  const name = split === -1 ? parameter : parameter.slice(0, split)
  const column = columns.find((candidate) => candidate.name === name)
  if (column === undefined) throw invalidParameter(`${parameter}: there is no column "${name}" (columns: ${columnNames(columns)})`, parameter)
  const operator = parameter.slice(split + 2) as Operator
  if (!FILTER_OPERATORS.includes(operator)) throw invalidParameter(`${parameter}: unknown operator "${operator}" (one of ${FILTER_OPERATORS.join(', ')})`, parameter)
  return { column, operator }
}

function filterCondition (sql: Sql, table: RowsTable, columns: DatasetColumn[], parameter: string, value: string): Fragment {
  const { column, operator } = filterTarget(columns, parameter)
  const c = table.ref(sql, column)
  const typed = (text: string): string => {
    if (text === '') throw invalidParameter(`${parameter}: a value is required (missing values are found with ${column.name}__isnull=true)`, parameter)
    const found = literal(column.type, text)
    if (found === undefined) throw invalidParameter(`${parameter}: "${text.slice(0, 100)}" is not a valid ${column.type}`, parameter)
    return found
  }
  switch (operator) {
    case 'isnull':
      if (value !== 'true' && value !== 'false') throw invalidParameter(`${parameter}: must be true or false`, parameter)
      return value === 'true' ? sql`${c} is null` : sql`${c} is not null`
    case 'contains':
    case 'startswith': {
      if (column.type !== 'text') throw invalidParameter(`${parameter}: ${operator} applies to text columns; "${column.name}" is ${column.type}`, parameter)
      const escaped = typed(value).replace(/[\\%_]/g, (character) => `\\${character}`)
      return sql`${c} ilike ${operator === 'contains' ? `%${escaped}%` : `${escaped}%`}`
    }
    case 'in': {
      const values = value.split(',')
      if (values.length > MAX_IN_VALUES) throw invalidParameter(`${parameter}: at most ${MAX_IN_VALUES} values`, parameter)
      return sql`${c} = any(${table.values(sql, column, values.map(typed))})`
    }
    case 'search': return matchesColumnSearch(sql, table, columns, column, value)
    case 'eq': return sql`${c} = ${table.value(sql, column, typed(value))}`
    case 'ne': return sql`${c} <> ${table.value(sql, column, typed(value))}`
    default: {
      if (!isOrdered(column.type)) throw invalidParameter(`${parameter}: ${operator} does not apply to ${column.type} columns`, parameter)
      return sql`${c} ${sql.unsafe(COMPARISONS[operator])} ${table.value(sql, column, typed(value))}`
    }
  }
}
