// Wire shapes of the Data API.
import Type from 'typebox'
import { DateTime } from '../../lib/schemas.ts'

export const DatasetId = Type.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER, description: 'Data set id' })

const Nullable = <T extends Parameters<typeof Type.Union>[0][number]>(schema: T) => Type.Union([schema, Type.Null()])

export const DatasetInfo = Type.Object({
  id: Type.Integer(),
  name: Type.String(),
  description: Nullable(Type.String()),
  status: Type.Union([Type.Literal('importing'), Type.Literal('ready'), Type.Literal('failed')], { description: '`importing`: `rows` counts the rows so far' }),
  rows: Type.Integer(),
  bytes: Type.Integer({ description: 'Size of the upload' }),
  source: Type.Union([Type.Literal('upload'), Type.Literal('url'), Type.Literal('sample')]),
  source_url: Nullable(Type.String()),
  format: Nullable(Type.Union([Type.Literal('csv'), Type.Literal('json'), Type.Literal('ndjson')])),
  error: Nullable(Type.Object({ detail: Type.String(), line: Type.Optional(Type.Integer()), item: Type.Optional(Type.Integer()) }, { description: 'Why a failed import failed' })),
  created_at: DateTime,
  updated_at: DateTime,
})

export const Field = Type.Object({
  name: Type.String(),
  type: Type.Union([Type.Literal('integer'), Type.Literal('numeric'), Type.Literal('boolean'), Type.Literal('date'), Type.Literal('timestamp'), Type.Literal('text')]),
  nullable: Type.Boolean({ description: 'Whether some rows have no value' }),
})

const Scalar = Type.Union([Type.Number(), Type.String(), Type.Null()])
export const ColumnStats = Type.Object({
  type: Type.String(),
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
})

export const DatasetDetail = Type.Object({
  dataset: DatasetInfo,
  schema: Type.Object({
    columns: Type.Array(Type.String(), { description: 'Column names, in order' }),
    fields: Type.Array(Field),
  }),
  stats: Type.Object({
    count: Type.Integer({ description: 'Rows' }),
    computed_at: Nullable(DateTime),
    columns: Type.Record(Type.String(), ColumnStats, { description: 'Per column; empty until the statistics job has run' }),
  }),
})

export const DatasetList = Type.Object({
  datasets: Type.Array(DatasetInfo),
  next_cursor: Nullable(Type.String({ description: 'Pass as `cursor` for the next page' })),
})

export const RowsPage = Type.Object({
  rows: Type.Array(Type.Record(Type.String(), Type.Unknown())),
  next_cursor: Nullable(Type.String({ description: 'Pass as `cursor` (with the same sort and filters) for the next page; null on the last page' })),
})

export const UrlImport = Type.Object({
  url: Type.String({ maxLength: 4096, description: 'http(s) URL of a CSV, JSON array or NDJSON file; refused if it resolves to a private address' }),
  name: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
  description: Type.Optional(Type.String({ maxLength: 2000 })),
  format: Type.Optional(Type.Union([Type.Literal('csv'), Type.Literal('json'), Type.Literal('ndjson')], { description: 'Default: from the response Content-Type or the URL\'s extension' })),
}, { additionalProperties: false })
