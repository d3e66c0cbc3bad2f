// The Data API's models, as TypeBox schemas: the wire shapes (validation, serialisation, OpenAPI)
// and, through Static<>, the TypeScript types the code uses. Each model is written once, here.
import Type, { type Static, type TSchema } from 'typebox'
import { DateTime, PositiveId } from '../../lib/schemas.ts'
import { ColumnTypeSchema } from './column-types.ts'
import { FormatSchema } from './import/formats.ts'

const Nullable = <T extends Parameters<typeof Type.Union>[0][number]>(schema: T) => Type.Union([schema, Type.Null()])

/**
 * An object keyed by column names (any text), each value a `value`. Not Type.Record(Type.String(),
 * …): that is patternProperties "^.*$", whose "." matches no line break, so fast-json-stringify
 * left out every key holding one: a column named "a\nb" (a quoted CSV header) vanished from its
 * rows and its statistics.
 */
const ByColumnName = <T extends TSchema>(value: T, options: { description?: string, minProperties?: number } = {}) =>
  Type.Unsafe<Record<string, Static<T>>>({ type: 'object', additionalProperties: value, ...options })

export const DatasetId = PositiveId({ description: 'Data set id' })

export const DatasetStatus = Type.Union([Type.Literal('importing'), Type.Literal('ready'), Type.Literal('failed')], { description: '`importing`: `rows` counts the rows so far' })
export type DatasetStatus = Static<typeof DatasetStatus>

export const DatasetSource = Type.Union([Type.Literal('upload'), Type.Literal('url'), Type.Literal('sample')])
export type DatasetSource = Static<typeof DatasetSource>

/** What the client may name a data set: in the query, in a form's fields, in a URL import. */
export const DatasetNaming = {
  name: Type.Optional(Type.String({ minLength: 1, maxLength: 200, description: 'Default: the file name, or "upload"' })),
  description: Type.Optional(Type.String({ maxLength: 2000 })),
}
export const DatasetNamingQuery = Type.Object(DatasetNaming)
/** The key a data set is created with: column names, comma-separated. */
export const KeyParameter = Type.String({ minLength: 1, maxLength: 2000, description: 'Key columns, comma-separated (in key order): their values must be present and unique together (a duplicate is a 400 naming both lines); later appends may upsert by them', examples: ['country,year'] })

/**
 * How to read a body (an upload, an append, a replace): import/options.ts reads these. /docs sends
 * a parameter's first example with "Test Request" and in its snippets: each first one fits the
 * routes' body examples (a CSV separated by commas, with a numeric `value`).
 */
export const ReadingQuery = {
  delimiter: Type.Optional(Type.String({
    maxLength: 3,
    description: 'CSV and TSV: the character between fields, `,` `;` `|` or a tab (`%09`, `\\t` or `tab`). Default: sniffed from the first 50 lines ' +
      '(the one found the same number of times in each, outside quoted fields; ties go to comma) for CSV, a tab for TSV.',
    examples: [',', ';', 'tab', '|'],
  })),
  decimal: Type.Optional(Type.String({
    maxLength: 1,
    description: 'CSV and TSV: `,` reads numbers written with a decimal comma, their thousands after dots (`3,14`, `1.234,5`, `1.234` = 1234); refused with `delimiter=,`. ' +
      'Default `.`: numbers as `1234.5`, no thousands separator.',
  })),
  types: Type.Optional(Type.String({
    maxLength: 20_000,
    description: 'Column types chosen instead of inferred, `column:type` comma-separated (a name is what comes before the last colon of its item); types: ' +
      'integer, numeric, boolean, date, timestamp, text. A value that is not of its chosen type is invalid data (400 with its line, or a failed import); ' +
      'a column the data does not have is one too; an unknown type is a 400 at once.',
    examples: ['value:numeric', 'zip:text,born:date'],
  })),
}

/** The upload route's query: the naming, and how to read the upload. */
export const UploadQuery = Type.Object({ ...DatasetNaming, ...ReadingQuery })

export const Dataset = Type.Object({
  id: Type.Integer(),
  name: Type.String(),
  description: Nullable(Type.String()),
  status: DatasetStatus,
  rows: Type.Integer(),
  bytes: Type.Integer({ description: 'Size of the upload' }),
  source: DatasetSource,
  source_url: Nullable(Type.String()),
  format: Nullable(FormatSchema),
  error: Nullable(Type.Object({ detail: Type.String(), line: Type.Optional(Type.Integer()), item: Type.Optional(Type.Integer()) }, { description: 'Why a failed import failed' })),
  key: Nullable(Type.Array(Type.String(), { description: 'The key columns, in order (`?key=` at creation, `PUT /datasets/{id}/key`): their values are present and unique together; appends may upsert by them (`on_conflict`)', examples: [['country', 'year']] })),
  created_at: DateTime,
  updated_at: DateTime,
})
export type Dataset = Static<typeof Dataset>

export const DatasetColumn = Type.Object({
  position: Type.Integer({ minimum: 0 }),
  name: Type.String(),
  type: ColumnTypeSchema,
  nullable: Type.Boolean({ description: 'Whether some rows have no value' }),
})
export type DatasetColumn = Static<typeof DatasetColumn>

/** A column as clients see it: its place is its place in `fields`. */
export const Field = Type.Omit(DatasetColumn, ['position'])

const Scalar = Type.Union([Type.Number(), Type.String(), Type.Null()])

const HistogramEdge = Type.Union([Type.Number(), Type.String()], { description: 'A number for integer and numeric columns; ISO 8601 text for dates (YYYY-MM-DD) and timestamps (in UTC, as `min` and `max`)' })
export const Histogram = Type.Object({
  bins: Type.Array(Type.Object({ from: HistogramEdge, to: HistogramEdge, count: Type.Integer({ description: 'Values v with from ≤ v < to (the last bin: from ≤ v ≤ to)' }) })),
}, {
  description: 'Integer, numeric, date and timestamp columns: up to 20 bins of equal width from `min` to `max` (fewer when there are fewer distinct values; one when min = max; none when every value is missing), each counting the values v with from ≤ v < to, the last one v = to (the max) as well. Integer, date and timestamp bins are a whole number of units wide (1, a day, a microsecond) and start on one, so the last bin may be narrower. Missing values are in `nulls`, in no bin; the counts add up to `count`.',
  examples: [{ bins: [{ from: 0, to: 5, count: 12 }, { from: 5, to: 10, count: 30 }, { from: 10, to: 14, count: 7 }] }],
})
export type Histogram = Static<typeof Histogram>
export const ColumnStats = Type.Object({
  type: ColumnTypeSchema,
  count: Type.Integer({ description: 'Rows with a value' }),
  nulls: Type.Integer(),
  distinct: Type.Integer(),
  distinct_estimated: Type.Boolean({ description: 'true above 100,000 rows: PostgreSQL\'s estimate from a sample' }),
  min: Type.Optional(Scalar),
  max: Type.Optional(Scalar),
  mean: Type.Optional(Nullable(Type.Number())),
  stddev: Type.Optional(Nullable(Type.Number())),
  true_count: Type.Optional(Type.Integer()),
  false_count: Type.Optional(Type.Integer()),
  min_length: Type.Optional(Nullable(Type.Integer())),
  max_length: Type.Optional(Nullable(Type.Integer())),
  top: Type.Optional(Type.Array(Type.Object({ value: Type.String(), count: Type.Integer() }))),
  histogram: Type.Optional(Histogram),
})
export type ColumnStats = Static<typeof ColumnStats>

export const DatasetStats = Type.Object({ count: Type.Integer(), columns: ByColumnName(ColumnStats) })
export type DatasetStats = Static<typeof DatasetStats>

export const WriteKind = Type.Union([Type.Literal('append'), Type.Literal('replace')])
export type WriteKind = Static<typeof WriteKind>
export const OnConflict = Type.Union([Type.Literal('update'), Type.Literal('ignore')], {
  description: 'With a key: a row whose key is already there `update`s that row (the columns the body has; the others keep their values) or is `ignore`d. Without it such a row is a 409 naming its key.',
  examples: ['update'],
})
export type OnConflict = Static<typeof OnConflict>

export const DatasetWrite = Type.Object({
  id: Type.Integer(),
  kind: WriteKind,
  status: Type.Union([Type.Literal('queued'), Type.Literal('running'), Type.Literal('done'), Type.Literal('failed')], { description: '`queued`/`running`: a job writes it (202); the rows before it stay readable meanwhile' }),
  on_conflict: Nullable(OnConflict),
  rows_read: Nullable(Type.Integer({ description: 'Rows of the body read so far by the job writing it (every 50,000 rows); null until then and for a write done during its request' })),
  inserted: Nullable(Type.Integer({ description: 'Rows added (a replace: the new rows)' })),
  updated: Nullable(Type.Integer({ description: 'Rows whose key was there and that were updated (`on_conflict=update`)' })),
  ignored: Nullable(Type.Integer({ description: 'Rows whose key was there and that were left out (`on_conflict=ignore`)' })),
  error: Nullable(Type.Object({ detail: Type.String(), line: Type.Optional(Type.Integer()), item: Type.Optional(Type.Integer()) }, { description: 'Why a failed write failed; nothing of it was written' })),
  created_at: DateTime,
  finished_at: Nullable(DateTime),
}, { description: 'The latest append or replace of the data set, once there was one: done during the request, or queued for a job', examples: [{ id: 7, kind: 'append', status: 'done', on_conflict: 'update', rows_read: null, inserted: 120, updated: 3, ignored: 0, error: null, created_at: '2026-12-02T20:00:00.000Z', finished_at: '2026-12-02T20:00:00.120Z' }] })
export type DatasetWrite = Static<typeof DatasetWrite>

export const DatasetDetail = Type.Object({
  dataset: Dataset,
  schema: Type.Object({
    columns: Type.Array(Type.String(), { description: 'Column names, in order' }),
    fields: Type.Array(Field),
  }),
  stats: Type.Object({
    count: Type.Integer({ description: 'Rows' }),
    computed_at: Nullable(DateTime),
    columns: ByColumnName(ColumnStats, { description: 'Per column; empty until the statistics job has run' }),
  }),
  write: Type.Optional(DatasetWrite),
})
export type DatasetDetail = Static<typeof DatasetDetail>

export const DatasetKey = Type.Object({
  key: Nullable(Type.Array(Type.String({ minLength: 1, maxLength: 200 }), { minItems: 1, maxItems: 32, uniqueItems: true })),
}, { additionalProperties: false, description: 'The key columns, in order; null drops the key', examples: [{ key: ['country', 'year'] }, { key: null }] })

export const DatasetList = Type.Object({
  datasets: Type.Array(Dataset),
  next_cursor: Nullable(Type.String({ description: 'Pass as `cursor` for the next page' })),
})

export const FacetBy = Type.Union([Type.Literal('value'), Type.Literal('bins'), Type.Literal('day'), Type.Literal('month'), Type.Literal('year')], {
  description: '`value`: each value; `bins`: equal-width bins between the minimum and maximum under the filters; `day`, `month`, `year`: buckets of the UTC date',
})
export type FacetBy = Static<typeof FacetBy>

export const Facet = Type.Object({
  by: FacetBy,
  values: Type.Array(Type.Object({
    value: Type.Union([Type.Number(), Type.String(), Type.Boolean()], { description: 'The value; a bin\'s lower bound; a day, month or year bucket\'s first instant, in the column\'s own format' }),
    to: Type.Optional(Type.Union([Type.Number(), Type.String()], { description: 'Bins: the upper bound, excluded (the maximum, in the last numeric bin, included)' })),
    count: Type.Integer(),
  }), { description: 'The top `_facet_size` by count, ties by value (bins: every bin, in order)' }),
  other: Type.Integer({ description: 'Rows with a value outside `values`' }),
  nulls: Type.Integer({ description: 'Rows without a value' }),
})
export type Facet = Static<typeof Facet>

export const FacetTimedOut = Type.Object({ timed_out: Type.Literal(true) }, { description: 'The facet missed FACET_TIMEOUT_MS (or found no free connection in time) and was cancelled' })

export const RowsPage = Type.Object({
  rows: Type.Array(ByColumnName(Type.Unknown())),
  next_cursor: Nullable(Type.String({ description: 'Pass as `_cursor` (with the same sort and filters) for the next page; null on the last page' })),
  total: Type.Optional(Type.Integer({ description: 'Rows the filters select, over all pages (absent with `_count=none`)' })),
  total_is_estimate: Type.Optional(Type.Boolean({ description: 'true when `total` is PostgreSQL\'s planner estimate, not a count' })),
  facets: Type.Optional(ByColumnName(Type.Union([Facet, FacetTimedOut]), { description: 'By faceted column, in the order asked (`_facet`)' })),
})
export type RowsPage = Static<typeof RowsPage>

export const AggregatePage = Type.Object({
  groups: Type.Array(ByColumnName(Type.Union([Type.Number(), Type.String(), Type.Boolean(), Type.Null()]), {
    description: 'A group: its value of each group column (as in /rows; a missing value is a group of its own), then each metric under its name (`count`, `sum:score`)',
  })),
  next_cursor: Nullable(Type.String({ description: 'Pass as `_cursor` (with the same group columns, sort and filters) for the next groups; null on the last page' })),
}, {
  examples: [{
    groups: [
      { category: 'books', active: true, count: 1204, 'sum:score': 90211.5, 'avg:score': 74.925, 'max:day': '2026-01-31' },
      { category: 'books', active: null, count: 17, 'sum:score': null, 'avg:score': null, 'max:day': '2026-01-12' },
    ],
    next_cursor: 'eyJzIjoiLWNvdW50IiwiZyI6WyJjYXRlZ29yeSIsImFjdGl2ZSJdLCJrIjpbIjE3IiwiYm9va3MiLG51bGxdfQ',
  }],
})
export type AggregatePage = Static<typeof AggregatePage>

export const UrlImport = Type.Object({
  url: Type.String({ maxLength: 4096, description: 'http(s) URL of a CSV, TSV, JSON array, NDJSON or .xlsx file, gzip-compressed or not; refused if it resolves to a private address' }),
  ...DatasetNaming,
  format: Type.Optional(FormatSchema),
}, { additionalProperties: false, description: '`format` defaults to the one the response\'s Content-Type or the URL\'s extension names' })

/** The longest column name a PATCH gives (imports take their header's names as they are). */
export const MAX_COLUMN_NAME_CHARS = 1000

export const ColumnPatch = Type.Object({
  name: Type.Optional(Type.String({ minLength: 1, maxLength: MAX_COLUMN_NAME_CHARS, description: 'The column\'s new name: unique in the data set, no NUL character' })),
  type: Type.Optional(ColumnTypeSchema),
}, { additionalProperties: false, minProperties: 1, description: 'What changes of the column: its `name`, its `type`, or both' })
export type ColumnPatch = Static<typeof ColumnPatch>

export const DatasetPatch = Type.Object({
  name: Type.Optional(Type.String({ minLength: 1, maxLength: 200, description: 'The data set\'s new name' })),
  // Null first: Ajv's type coercion would make null "" when the string came first.
  description: Type.Optional(Type.Union([Type.Null(), Type.String({ maxLength: 2000 })], { description: 'The new description; null removes it' })),
  columns: Type.Optional(ByColumnName(ColumnPatch, {
    minProperties: 1,
    description: 'Changes of columns, keyed by each column\'s current name. All of them apply at once: names are read before any rename (so two columns may swap names), ' +
      'and the names after must be unique. A type change converts every value as a filter value of the new type is read (`"2026-01-02"` becomes a date, `"1.5"` does not become an integer): ' +
      'when one does not convert, the answer is 400 naming the first such row (`row`, its row number) and its `value`, and nothing is changed.',
  })),
}, {
  additionalProperties: false,
  minProperties: 1,
  description: 'Fields left out stay as they are.',
  examples: [
    { name: 'people 2026', description: 'Staff list, January' },
    { columns: { born: { name: 'birthday', type: 'date' }, score: { type: 'numeric' } } },
  ],
})
export type DatasetPatch = Static<typeof DatasetPatch>

export const RowsDeleted = Type.Object({
  deleted: Type.Integer({ minimum: 0, description: 'Rows deleted' }),
}, { examples: [{ deleted: 42 }] })

export const ChangeKind = Type.Union([
  Type.Literal('create'), Type.Literal('delete_rows'), Type.Literal('patch'), Type.Literal('append'), Type.Literal('upsert'), Type.Literal('replace'),
], { description: '`create`: the import; `delete_rows`: DELETE /datasets/{id}/rows; `patch`: PATCH /datasets/{id}; `append`, `upsert`, `replace`: writes of rows' })
export type ChangeKind = Static<typeof ChangeKind>

export const DatasetChange = Type.Object({
  id: Type.Integer({ description: 'Increases with each change (of any data set)' }),
  at: DateTime,
  kind: ChangeKind,
  api_key_id: Nullable(Type.Integer({ description: 'The id of the API key that wrote (as `data-api keys list` shows it); null for the demo data set' })),
  rows: Nullable(Type.Integer({ description: 'Rows added, deleted or changed; null when no row was (a rename)' })),
  details: Type.Unsafe<Record<string, unknown>>({
    type: 'object',
    additionalProperties: true,
    description: 'What the write was: `create` its `source`, `format`, `bytes` and `columns`; `delete_rows` its `filters` (`[[parameter, value]…]`) and `q`; `patch` the fields it changed (`name`, `description`, `columns: {old: {name?, type?, from_type?}}`)',
  }),
}, {
  examples: [{ id: 17, at: '2026-01-02T10:00:00.000Z', kind: 'delete_rows', api_key_id: 3, rows: 12, details: { filters: [['age__lt', '18']], q: null } }],
})
export type DatasetChange = Static<typeof DatasetChange>

export const DatasetChanges = Type.Object({
  changes: Type.Array(DatasetChange, { description: 'Newest first' }),
  next_cursor: Nullable(Type.String({ description: 'Pass as `cursor` for older changes; null on the last page' })),
})

/** The events of `GET /datasets/{id}/events`, each named by what changed (see the route's description). */
export const EventName = Type.Union([Type.Literal('state'), Type.Literal('status'), Type.Literal('write'), Type.Literal('progress'), Type.Literal('change'), Type.Literal('deleted')])
export type EventName = Static<typeof EventName>

/** One server-sent event of `GET /datasets/{id}/events`, its fields as the stream has them. */
export const SseEvent = Type.Object({
  event: Type.Optional(EventName),
  data: Type.String({ description: 'JSON: `{"dataset": {id, status, rows, error, updated_at}, "write": <the latest write, or null>}`', contentMediaType: 'application/json' }),
  id: Type.Optional(Type.String({ description: 'A number counting the events of this stream' })),
  retry: Type.Optional(Type.Integer({ description: 'Milliseconds an EventSource waits before it connects again' })),
}, { description: 'A server-sent event' })
