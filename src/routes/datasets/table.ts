// The table that holds one data set's rows, and the only module that knows its SQL shape:
// `dataset_rows.ds_<id>`, a column `c1…cN` per data set column (the names users gave live in
// dataset_columns and never reach SQL: no quoting to get wrong, no 63-byte truncation) and `_row`,
// the row number, which is the primary key and every ordering's tie-breaker.
//
// Values reach SQL only as the literals of column-types.ts, sent as text and cast here; values come
// back through `output` (numbers as numbers, dates as YYYY-MM-DD, timestamps as ISO 8601 in UTC
// with their microseconds), and in exports as `csvField` and `jsonField`.
//
// The one place where users' names do become SQL is the data set's view for SQL queries
// (`dataset_views.dataset_<id>`, see sql-queries.ts): its columns are the users' names as quoted
// identifiers, cut to PostgreSQL's 63 bytes and made unique (`viewColumnNames`).
//
// Full-text search (search.ts) reads documents written here once, for the GIN indexes the
// statistics job builds (stats.ts) and for the queries alike: PostgreSQL uses an expression index
// only for a condition on the very same expression, so nobody else may spell it.
import type { Fragment, TransactionSql } from 'postgres'
import type { Sql } from '../../db/pool.ts'
import { SQL_TYPES, type ColumnType } from './column-types.ts'

export const ROWS_SCHEMA = 'dataset_rows'
/** The schema of the data sets' views for SQL queries: the only schema their reader role may use. */
export const VIEWS_SCHEMA = 'dataset_views'
/** PostgreSQL's longest identifier (NAMEDATALEN - 1 bytes); longer ones are cut, quoted or not. */
const MAX_IDENTIFIER_BYTES = 63

/** What the table needs to know of a column: where it is and what it holds. */
export interface TableColumn { position: number, type: ColumnType }

// Text columns sort by code point and match case-insensitively by Unicode rules (PostgreSQL 17's
// builtin C.UTF-8 collation), whatever the database's default; older servers get "C": the same
// order, case-insensitive for ASCII letters only.
const TEXT_COLLATIONS = ['pg_c_utf8', 'C']

export type RowsTable = ReturnType<typeof rowsTable>

/**
 * The text search configuration: 'simple' lowercases and splits on non-word characters, with no
 * stemming and no stop words, so it suits data in any language (a language's configuration would
 * stem French with English rules and drop "the" from a title). Built in to every PostgreSQL, so the
 * index needs no extension and no migration (a custom one, with unaccent say, would need both).
 */
export const SEARCH_CONFIGURATION = 'simple'

/**
 * Characters of a document that are indexed and searched. A tsvector holds at most 1 MB of lexemes
 * and their positions (to_tsvector raises "string is too long for tsvector" beyond), and one text
 * value of 2 MB would then fail the index build, hence the statistics job, of its whole data set.
 * 100,000 characters make at most ~500 kB (4 bytes a character, and the positions), whatever the
 * text; a document is searched on its first 100,000 characters.
 */
export const SEARCH_DOCUMENT_MAX_CHARS = 100_000

const tsvector = (text: string): string => `to_tsvector('${SEARCH_CONFIGURATION}'::regconfig, left(${text}, ${SEARCH_DOCUMENT_MAX_CHARS}))`

/** A column's SQL type; for text with the collation above (the first of them the server has). */
async function columnDefinition (tx: TransactionSql, type: ColumnType): Promise<string> {
  if (type !== 'text') return SQL_TYPES[type]
  const [found] = await tx<Array<{ collation: string }>>`
    select collname as collation from pg_collation where collname in ${tx(TEXT_COLLATIONS)}
    order by array_position(${TEXT_COLLATIONS}::text[], collname::text) limit 1`
  return `text collate "${found?.collation ?? 'C'}"`
}

/**
 * Which table of a data set: its rows (`ds_<id>`, what every reader reads); the replacement a
 * PUT …/data imports into (`ds_<id>_next`, renamed to `ds_<id>` when complete: `swapIn`); or the
 * staging table of an append (`pg_temp.ds_<id>_staging`, dropped at commit), which holds the
 * appended rows, numbered 1…N in file order, until they are merged into the rows.
 */
type TableRole = 'rows' | 'replacement' | 'staging'

export function rowsTable (datasetId: number) {
  return tableOf(datasetId, 'rows')
}

/** The table a replace imports into; `rowsTable(id).swapIn` makes it the data set's rows. */
export function replacementTable (datasetId: number): RowsTable {
  return tableOf(datasetId, 'replacement')
}

/** The staging table of an append (a temporary table of the transaction's session, dropped at commit). */
export function stagingTable (datasetId: number): RowsTable {
  return tableOf(datasetId, 'staging')
}

function tableOf (datasetId: number, role: TableRole) {
  if (!Number.isSafeInteger(datasetId) || datasetId < 1) throw new Error(`not a data set id: ${datasetId}`)
  const relation = role === 'rows' ? `ds_${datasetId}` : role === 'replacement' ? `ds_${datasetId}_next` : `ds_${datasetId}_staging`
  const schema = role === 'staging' ? 'pg_temp' : ROWS_SCHEMA
  const name = `${schema}.${relation}`
  const keyIndex = `${relation}_key`
  const column = (position: number): string => `c${position + 1}`
  const viewRelation = `dataset_${datasetId}`
  const view = `${VIEWS_SCHEMA}.${viewRelation}`

  // A timestamp widened from a date keeps its midnight in UTC (the session's time zone).
  const widened = (position: number, type: ColumnType): string => `${column(position)}::${SQL_TYPES[type]}`
  /**
   * SQL of the full-text document of a row: its text columns (in position order) joined by a
   * space, a missing value as empty text; undefined when the data set has no text column. The
   * expression its GIN index is built on.
   */
  const searchDocument = (columns: readonly TableColumn[]): string | undefined => {
    const texts = textColumns(columns)
    return texts.length === 0 ? undefined : tsvector(texts.map(({ position }) => `coalesce(${column(position)}, '')`).join(` || ' ' || `))
  }
  /**
   * SQL of one text column's document, null when the value is missing. When it is the data set's
   * only text column, the row's document is used instead (`isRowDocument`: the caller adds
   * `is not null`), so that one index serves both searches.
   */
  const columnSearchDocument = (columns: readonly TableColumn[], { position }: TableColumn): { document: string, isRowDocument: boolean } => {
    const texts = textColumns(columns)
    if (texts.length === 1 && texts[0]!.position === position) return { document: searchDocument(columns)!, isRowDocument: true }
    return { document: tsvector(column(position)), isRowDocument: false }
  }

  return {
    /** The schema-qualified table name, for SQL text (COPY statements take no parameters). */
    name,
    /** The table's name in pg_class / pg_stats (in ROWS_SCHEMA). */
    relation,
    column,
    /** The table as an identifier in a tagged query. */
    identifier: (sql: Sql | TransactionSql): Fragment => sql(name) as unknown as Fragment,

    async create (tx: TransactionSql, types: readonly ColumnType[]): Promise<void> {
      const text = types.includes('text') ? await columnDefinition(tx, 'text') : ''
      const columns = ['_row bigint not null', ...types.map((type, position) => `${column(position)} ${type === 'text' ? text : SQL_TYPES[type]}`)]
      await tx.unsafe(role === 'staging' ? `create temporary table ${relation} (${columns.join(', ')}) on commit drop` : `create table ${name} (${columns.join(', ')})`)
    },
    async addColumn (tx: TransactionSql, position: number, type: ColumnType): Promise<void> {
      await tx.unsafe(`alter table ${name} add column ${column(position)} ${await columnDefinition(tx, type)}`)
    },
    async widenColumn (tx: TransactionSql, position: number, type: ColumnType): Promise<void> {
      await tx.unsafe(`alter table ${name} alter column ${column(position)} type ${await columnDefinition(tx, type)} using ${widened(position, type)}`)
    },
    /** SQL of a column's values widened to `type`, as widenColumn stores them (a copy into a wider table). */
    widened: (position: number, type: ColumnType): string => widened(position, type),
    /**
     * Changes a column's type, each value converted from its text as the API sends it (`csvField`:
     * dates YYYY-MM-DD, timestamps ISO 8601 in UTC, booleans true/false), which is how a filter
     * value of the new type would be read. The caller checks every value first with the codec
     * (column-types.ts `literal`), so that PostgreSQL's cast meets only values the codec accepts.
     * The search indexes must be gone first (`dropSearchIndexes`): their expressions name the
     * text columns.
     */
    async retypeColumn (tx: TransactionSql, { position, type }: TableColumn, to: ColumnType): Promise<void> {
      const c = column(position)
      const text = type === 'timestamp' ? timestampText(c) : `${c}::text`
      await tx.unsafe(`alter table ${name} alter column ${c} type ${await columnDefinition(tx, to)} using (${text})::${SQL_TYPES[to]}`)
    },
    /** Deletes the rows `where` selects (a condition of view.ts over this table); how many. */
    async deleteWhere (tx: TransactionSql, where: Fragment): Promise<number> {
      const deleted = await tx`delete from ${tx(name)} where ${where}`
      return deleted.count
    },
    async addPrimaryKey (tx: TransactionSql): Promise<void> {
      if (role === 'staging') return // read once, whole: an index would only cost its build
      await tx.unsafe(`alter table ${name} add primary key (_row)`)
    },
    /** The unique index that enforces the data set's key (columns in key order). */
    async addKeyIndex (tx: TransactionSql, positions: readonly number[]): Promise<void> {
      await tx.unsafe(`create unique index ${keyIndex} on ${name} (${positions.map(column).join(', ')})`)
    },
    async dropKeyIndex (tx: TransactionSql): Promise<void> {
      await tx.unsafe(`drop index if exists ${schema}.${keyIndex}`)
    },
    /** The key columns as an ON CONFLICT target (the key index's columns, in its order). */
    conflictTarget: (positions: readonly number[]): string => `(${positions.map(column).join(', ')})`,
    /**
     * Drops the GIN indexes of full-text search: their expression names the text columns, so a
     * column that became text (added, or widened) leaves them indexing another document than the
     * queries ask for. The statistics job builds them again.
     */
    async dropSearchIndexes (tx: TransactionSql): Promise<void> {
      const found = await tx<Array<{ indexname: string }>>`
        select indexname from pg_indexes where schemaname = ${ROWS_SCHEMA} and tablename = ${relation} and indexname like '%\\_search'`
      for (const { indexname } of found) await tx.unsafe(`drop index if exists ${ROWS_SCHEMA}.${quoteIdentifier(indexname)}`)
    },
    /** Drops the (column, _row) index of one column (a text value too long for a btree entry is coming). */
    async dropColumnIndex (tx: TransactionSql, position: number): Promise<void> {
      await tx.unsafe(`drop index if exists ${schema}.${relation}_${column(position)}`)
    },
    /**
     * Makes `replacement` (complete, indexed, its key enforced) this data set's rows, in the
     * caller's transaction: the view and the old table (with its indexes) go, the replacement and
     * its indexes take their names. Readers see the old rows until the commit, the new ones after
     * it; a query waiting on the lock reads the new table (PostgreSQL resolves the name again once
     * it holds the lock). Create the view again afterwards (`createViewSql`).
     */
    async swapIn (tx: TransactionSql, replacement: { name: string, relation: string }): Promise<void> {
      if (role !== 'rows' || replacement.relation !== `${relation}_next`) throw new Error(`${replacement.name} is not the replacement of ${name}`)
      await tx.unsafe(`drop view if exists ${view}`)
      await tx.unsafe(`drop table if exists ${name}`)
      await tx.unsafe(`alter table ${replacement.name} rename to ${relation}`)
      await tx.unsafe(`alter index if exists ${ROWS_SCHEMA}.${replacement.relation}_pkey rename to ${relation}_pkey`)
      await tx.unsafe(`alter index if exists ${ROWS_SCHEMA}.${replacement.relation}_key rename to ${keyIndex}`)
    },
    /**
     * COPY … FROM STDIN of the row number and the first `width` columns, in order. `freeze` (only
     * into a table created in the same transaction) writes the rows frozen and their pages
     * all-visible: the first reads set no hint bits (with data checksums, a full-page image in the
     * WAL for every page of the table), and index-only scans work before any VACUUM.
     */
    copyIn: (width: number, { freeze = false } = {}): string => `copy ${name} (${['_row', ...Array.from({ length: width }, (_, position) => column(position))].join(', ')}) from stdin${freeze ? ' with (freeze)' : ''}`,
    /** Drops the table and its view. */
    async drop (tx: TransactionSql): Promise<void> {
      await tx.unsafe(`drop view if exists ${view}`)
      await tx.unsafe(`drop table if exists ${name}`)
    },
    /** The name of the data set's view in VIEWS_SCHEMA, as SQL queries name it. */
    viewName: viewRelation,
    /** The view's schema-qualified name, for SQL text. */
    view,
    /**
     * SQL creating (or replacing) the view over the table for SQL queries, its columns named as
     * the users named them (`names` in position order). Create it once the import is done: a view
     * pins its columns' types, and an import widens them.
     */
    createViewSql: (names: readonly string[]): string => {
      const columns = viewColumnNames(names)
      const list = columns.length === 0 ? '' : ` (${columns.map(quoteIdentifier).join(', ')})`
      return `create or replace view ${view}${list} as select ${columns.map((_, position) => column(position)).join(', ')} from ${name}`
    },
    dropViewSql: `drop view if exists ${view}`,
    /** An index for sorting and filtering by a column: (column, _row), the order keyset paging walks. */
    async index (sql: Sql | TransactionSql, position: number): Promise<void> {
      await sql.unsafe(`create index if not exists ${relation}_${column(position)} on ${name} (${column(position)}, _row)`)
    },

    searchDocument,
    columnSearchDocument,
    /**
     * The statements creating the GIN indexes of full-text search: one on the row's document and
     * one on each text column's (none when the row's document is that column's); none without text.
     */
    searchIndexStatements: (columns: readonly TableColumn[]): string[] => {
      const document = searchDocument(columns)
      if (document === undefined) return []
      const gin = (index: string, expression: string): string => `create index if not exists ${index} on ${name} using gin (${expression})`
      const texts = textColumns(columns)
      return [
        gin(`${relation}_search`, document),
        ...(texts.length === 1 ? [] : texts.map((text) => gin(`${relation}_${column(text.position)}_search`, columnSearchDocument(columns, text).document))),
      ]
    },

    /** A literal (column-types.ts) as a value of the column's type. */
    value: (sql: Sql | TransactionSql, { type }: TableColumn, text: string): Fragment => sql`${text}::text::${sql.unsafe(SQL_TYPES[type])}`,
    /** A list of literals as an array of the column's type. */
    values: (sql: Sql | TransactionSql, { type }: TableColumn, texts: string[]): Fragment => sql`${texts}::text[]::${sql.unsafe(SQL_TYPES[type])}[]`,
    /** The column as an identifier in a tagged query. */
    ref: (sql: Sql | TransactionSql, { position }: TableColumn): Fragment => sql(column(position)) as unknown as Fragment,
    /** SQL of a column's value as it is sent to clients; `decode` finishes it in JavaScript. */
    output: ({ position, type }: TableColumn, qualifier = ''): string => outputOf(type, qualifier + column(position)),
    /** SQL of a column's value as a CSV field that imports back as the same value. */
    csvField: ({ position, type }: TableColumn): string => {
      const c = column(position)
      if (type === 'timestamp') return timestampText(c)
      return type === 'boolean' ? `${c}::text` : c
    },
    /** SQL of a column's value as JSON text ('null' when missing). */
    jsonField: ({ position, type }: TableColumn): string => {
      const c = column(position)
      return `coalesce(to_json(${type === 'timestamp' ? timestampText(c) : c})::text, 'null')`
    },
    /** SQL of the number of bytes a column's value adds to a response, near enough to bound a page. */
    size: ({ position, type }: TableColumn): string => type === 'text' ? `coalesce(octet_length(${column(position)}), 4)` : '24',
  }
}

function textColumns (columns: readonly TableColumn[]): TableColumn[] {
  return columns.filter(({ type }) => type === 'text').sort((a, b) => a.position - b.position)
}

/**
 * SQL of a value of a column type (a column, or an aggregate of one: `min(c3)`, an alias) as it is
 * sent to clients; `decode` finishes it in JavaScript.
 */
export function outputOf (type: ColumnType, expression: string): string {
  if (type === 'date') return `${expression}::text`
  if (type === 'timestamp') return timestampText(expression)
  return expression // numeric arrives as its exact text: decode makes it a number, never an overflow error in SQL
}

/**
 * A timestamp as ISO 8601 in UTC with its microseconds (trailing zeros dropped), `Z` for the zone:
 * the connection's TimeZone is UTC (db/pool.ts), so to_json writes +00:00, which becomes Z.
 */
function timestampText (c: string): string {
  return `replace(to_json(${c})#>>'{}', '+00:00', 'Z')`
}

/**
 * The column names of a data set's view: the users' names, each cut to 63 bytes (at a character
 * boundary) as PostgreSQL would cut it, and made unique again when cutting made two equal: the
 * later one ends in `_<n>` (its column number, then higher), cut further to fit. Names are case
 * sensitive (quoted), so `A` and `a` both stay. An empty name (none is imported) is `column_<n>`.
 */
export function viewColumnNames (names: readonly string[]): string[] {
  const taken = new Set<string>()
  return names.map((name, position) => {
    let candidate = name === '' ? `column_${position + 1}` : cutToBytes(name, MAX_IDENTIFIER_BYTES)
    for (let n = position + 1; taken.has(candidate); n++) {
      const suffix = `_${n}`
      candidate = cutToBytes(name, MAX_IDENTIFIER_BYTES - Buffer.byteLength(suffix)) + suffix
    }
    taken.add(candidate)
    return candidate
  })
}

function cutToBytes (text: string, maxBytes: number): string {
  if (Buffer.byteLength(text) <= maxBytes) return text
  let cut = ''
  let bytes = 0
  for (const character of text) {
    const size = Buffer.byteLength(character)
    if (bytes + size > maxBytes) break
    cut += character
    bytes += size
  }
  return cut
}

function quoteIdentifier (name: string): string {
  return `"${name.replaceAll('"', '""')}"`
}

/** A value from `output` as the JSON value clients get. */
export function decode (type: ColumnType, value: unknown): unknown {
  if (value === null || type !== 'numeric') return value
  return Number(value)
}
