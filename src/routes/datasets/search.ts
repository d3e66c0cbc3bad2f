// Full-text search over a data set's text columns: the SQL conditions of `_q` (the whole row) and
// `col__search` (one column), and the rank `sort=_rank` orders by. The documents are table.ts's
// (the expressions the statistics job's GIN indexes are built on); the query is PostgreSQL's
// websearch_to_tsquery with the same 'simple' configuration: words (all must appear, in any
// column, lowercased: `Paris` finds `paris`), "quoted phrases" (words next to each other), `or`
// between words, `-word` (must not appear). websearch_to_tsquery never raises on its input: any
// punctuation (`:*`, `&|!()`, `<->`, quotes left open) is read as a separator, never as syntax.
//
// A query with nothing to search for (empty, spaces, ASCII punctuation only) is no search: it
// matches every row and ranks them all 0 (PostgreSQL would match none, and log a notice). A word
// longer than 2,047 bytes is dropped from the query (PostgreSQL indexes no longer word), so a query
// of only such words matches no row. A data set without text columns matches no row for a query
// with words. A missing value holds no word: `-word` matches it in `_q` (the row's document is
// empty), and `col__search` never matches it (a missing value matches no condition, as in rows.ts).
import type { Fragment } from 'postgres'
import type { Sql } from '../../db/pool.ts'
import { invalidParameter } from '../../lib/errors.ts'
import { literal } from './column-types.ts'
import { SEARCH_CONFIGURATION, type RowsTable, type TableColumn } from './table.ts'

/** A column as search needs it: the table's view of it and the name the client gave it (for errors). */
export type SearchColumn = TableColumn & { name: string }

// Anything but ASCII space, control and punctuation characters may be a word (the parser takes
// every non-ASCII character for a letter when the database's ctype is C).
const MAY_HOLD_A_WORD = /[A-Za-z0-9\u0080-\u{10FFFF}]/u

/** The tsquery of a search text, or undefined when there is nothing to search for. */
function tsquery (sql: Sql, text: string, parameter: string): Fragment | undefined {
  // A NUL character (or a lone surrogate) cannot reach PostgreSQL as text: the codec's rule.
  if (literal('text', text) === undefined) throw invalidParameter(`${parameter}: the text holds a character that cannot be searched (NUL, or a lone UTF-16 surrogate)`, parameter)
  if (!MAY_HOLD_A_WORD.test(text)) return undefined
  return sql`websearch_to_tsquery(${sql.unsafe(`'${SEARCH_CONFIGURATION}'::regconfig`)}, ${text}::text)`
}

/**
 * The condition of `_q=`: rows whose document (all text columns) matches the query. Uses the GIN
 * index on the row's document once the statistics job has built it.
 */
export function matchesSearch (sql: Sql, table: RowsTable, columns: readonly TableColumn[], q: string, parameter = '_q'): Fragment {
  const query = tsquery(sql, q, parameter)
  if (query === undefined) return sql`true`
  const document = table.searchDocument(columns)
  return document === undefined ? sql`false` : sql`${sql.unsafe(document)} @@ ${query}`
}

/**
 * The condition of `col__search=`: rows whose value of `column` (a text column) matches the query.
 * `columns` are all the data set's columns (the document of its only text column is the row's).
 */
export function matchesColumnSearch (sql: Sql, table: RowsTable, columns: readonly TableColumn[], column: SearchColumn, text: string): Fragment {
  const parameter = `${column.name}__search`
  if (column.type !== 'text') throw invalidParameter(`${parameter}: search applies to text columns; "${column.name}" is ${column.type}`, parameter)
  const query = tsquery(sql, text, parameter)
  if (query === undefined) return sql`true`
  const { document, isRowDocument } = table.columnSearchDocument(columns, column)
  const matches = sql`${sql.unsafe(document)} @@ ${query}`
  return isRowDocument ? sql`${table.ref(sql, column)} is not null and ${matches}` : matches
}

/**
 * `sort=_rank`'s key: ts_rank of the row's document for the query (a real, higher is better; 0
 * for a row that does not match, and for every row when there is nothing to search for). Order by
 * it descending, then by `_row`. Computed from the rows' text, not the index: cheap on the rows
 * `matchesSearch` leaves, costly if ranked without it.
 */
export function searchRank (sql: Sql, table: RowsTable, columns: readonly TableColumn[], q: string, parameter = '_q'): Fragment {
  const query = tsquery(sql, q, parameter)
  const document = table.searchDocument(columns)
  if (query === undefined || document === undefined) return sql`0::real`
  return sql`ts_rank(${sql.unsafe(document)}, ${query})`
}
