// POST /datasets/sql: read-only SQL over the data sets' views (sql-queries.ts does the work). A
// plugin of its own, so that its JSON body is parsed (routes.ts streams every body of its plugin).
// Always registered, so that the OpenAPI document is the same on every server: with SQL_QUERIES
// off it answers 404 saying so.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { preHandlerAsyncHookHandler } from 'fastify'
import Type from 'typebox'
import { Problem } from '../../lib/errors.ts'
import { abortOnDisconnect } from '../../lib/request-signal.ts'
import { problemResponses } from '../../lib/schemas.ts'
import type { SqlQueries } from './sql-queries.ts'

export interface SqlRouteOptions {
  /** Undefined: SQL_QUERIES is off. */
  queries?: SqlQueries
  requireKey: preHandlerAsyncHookHandler
  requireKeyForReads: boolean
  maxRows: number
  maxBytes: number
}

const EXAMPLE = 'select station, count(*) as days, round(avg(temperature_c), 1) as mean_c from dataset_1 group by station order by mean_c desc'

const SqlRequest = Type.Object({
  sql: Type.String({ minLength: 1, maxLength: 60_000, description: 'One statement that returns rows (SELECT, VALUES, TABLE, WITH … SELECT, EXPLAIN, SHOW) over the views `dataset_<id>`.' }),
}, { additionalProperties: false, examples: [{ sql: 'select * from dataset_1 limit 5' }, { sql: EXAMPLE }] })

const SqlResult = Type.Object({
  columns: Type.Array(Type.Object({ name: Type.String(), type: Type.String({ description: 'PostgreSQL\'s name of the type, e.g. `bigint`, `text`, `timestamp with time zone`' }) })),
  rows: Type.Array(Type.Array(Type.Unknown()), { description: 'Each row as an array, in the order of `columns`' }),
  row_count: Type.Integer(),
  truncated: Type.Union([Type.Null(), Type.Literal('max_rows'), Type.Literal('max_bytes'), Type.Literal('error')], { description: '`null`: every row is here; else what cut the rows short' }),
  error: Type.Optional(Type.Object({}, { additionalProperties: true, description: 'A problem, when the query failed after its first rows were sent (`truncated: "error"`)' })),
}, {
  examples: [{ columns: [{ name: 'id', type: 'bigint' }, { name: 'city', type: 'text' }], rows: [[1, 'Oslo'], [2, 'Bergen']], row_count: 2, truncated: null }],
})

export const sqlQueryRoutes: FastifyPluginAsyncTypebox<SqlRouteOptions> = async (app, options) => {
  const { queries } = options
  const access = options.requireKeyForReads ? { preHandler: options.requireKey } : {}
  app.post('/datasets/sql', {
    ...access,
    schema: {
      tags: ['datasets'],
      summary: 'Read-only SQL over the data sets (SQL_QUERIES=true)',
      description: 'Each ready data set is a view `dataset_<id>` whose columns carry the names of its columns (cut to 63 bytes; ' +
        'names equal once cut end in `_<n>`). One statement that returns rows, run in a read-only transaction by a role that can read ' +
        `only those views, under QUERY_TIMEOUT_MS; at most SQL_QUERIES_MAX_ROWS (${options.maxRows}) rows and SQL_QUERIES_MAX_BYTES ` +
        `(${options.maxBytes}) bytes of rows. The result is streamed as one JSON document: \`columns\` first, then \`rows\` as they arrive, ` +
        'then `row_count` and `truncated`. Anything else (DDL, writes, several statements, other schemas, functions that reach files, ' +
        'the network, other sessions or locks) is refused: the query\'s own error is a 400 with PostgreSQL\'s message, `sqlstate` and ' +
        '`position`; past the deadline a 503 `timeout`. POST counts against RATE_LIMIT_WRITES. With SQL_QUERIES=false: 404.',
      body: SqlRequest,
      response: {
        200: { description: 'The result, streamed', content: { 'application/json': { schema: SqlResult } } },
        ...problemResponses(400, ...(options.requireKeyForReads ? [401] : []), 404, 413, 503),
      },
    },
  }, async (request, reply) => {
    if (queries === undefined) throw new Problem('not-found', 'SQL queries are off on this server (SQL_QUERIES=false).')
    const body = await queries.run(request.body.sql, abortOnDisconnect(reply))
    reply.type('application/json; charset=utf-8')
    // A stream is piped as it is (with backpressure); the response schema documents, not serialises.
    return await reply.send(body as never)
  })
  // Without this, GET /datasets/sql is GET /datasets/{dataset_id} with a bad id (400), not a 405.
  app.route({
    method: ['GET', 'PUT', 'PATCH', 'DELETE'],
    url: '/datasets/sql',
    schema: { hide: true },
    handler: async (request, reply) => {
      void reply.header('allow', 'POST')
      throw new Problem('method-not-allowed', `/datasets/sql does not answer ${request.method}; it answers POST.`)
    },
  })
}
