// The Data API over HTTP: upload or import a data set, read its info, schema and statistics (the
// lesson's GET /datasets/{dataset_id}, its three parts fetched concurrently), page and filter its
// rows, export it, delete it. Writes need an API key; reads too with REQUIRE_KEY_FOR_READS. These
// handlers translate HTTP to the service (service.ts holds the rules) and back.
import type { Readable } from 'node:stream'
import multipart from '@fastify/multipart'
import type { FastifyPluginAsyncTypebox, TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import type { FastifyReply, FastifyRequest, preHandlerAsyncHookHandler } from 'fastify'
import Type from 'typebox'
import Value from 'typebox/value'
import { apiKeyOf, keyHolderOf } from '../../auth/require-key.ts'
import { invalidValue, Problem } from '../../lib/errors.ts'
import { abortOnDisconnect } from '../../lib/request-signal.ts'
import { problemResponses } from '../../lib/schemas.ts'
import { withServerTiming } from '../../lib/server-timing.ts'
import { AGGREGATE_PARAMETERS, METRIC_FUNCTIONS } from './aggregate.ts'
import { EXPORT_PARAMETERS } from './export.ts'
import { MAX_FACETS } from './facets.ts'
import { ROWS_PARAMETERS } from './rows.ts'
import { FILTER_OPERATORS, viewQuerystring } from './view.ts'
import { charsetOf, contentEncodingOf, FORMATS, formatOf, isGzipFile, UPLOAD_MEDIA_TYPES } from './import/formats.ts'
import { importOptionsOf, type ImportOptions, type ImportQuery } from './import/options.ts'
import { AggregatePage, DatasetChanges, DatasetDetail, DatasetId, DatasetKey, DatasetList, DatasetNamingQuery, DatasetPatch, KeyParameter, OnConflict, ReadingQuery, RowsDeleted, RowsPage, SseEvent, UploadQuery, UrlImport } from './schemas.ts'
import type { DatasetDetail as DatasetDetailType } from './schemas.ts'
import { DELETE_ROWS_PARAMETERS, type DatasetService, type Naming, type Upload, type Writer } from './service.ts'

export interface DatasetRouteOptions {
  datasets: DatasetService
  /** The API-key check (auth/require-key.ts): always for writes, for reads with REQUIRE_KEY_FOR_READS. */
  requireKey: preHandlerAsyncHookHandler
  requireKeyForReads: boolean
  maxBytes: number
}

const URL_IMPORT_MAX_BYTES = 64 * 1024
// CSV and JSON only: a client generated from the document (schemathesis) has no NDJSON serialiser.
const WRITE_BODY_EXAMPLES = {
  'text/csv': 'country,year,value\nNO,2026,5.4\nSE,2026,4.9\n',
  'application/json': [{ country: 'NO', year: 2026, value: 5.4 }, { country: 'SE', year: 2026, value: 4.9 }],
}

// POST /datasets: its JSON body as the object that asks for a URL import, the form only this route
// takes (the array form is the writes' example).
const CREATE_BODY_EXAMPLES = {
  'text/csv': WRITE_BODY_EXAMPLES['text/csv'],
  'application/json': { url: 'https://example.com/data.csv', name: 'example' },
}

const OWNERSHIP_RULE = 'Only the API key that created the data set, or an admin key (`data-api keys create --admin`), may do this; another key gets 403 `forbidden`. ' +
  'The demo data set has no owner: only admin keys may write it.'

/** The key of a request its preHandler admitted (requireKey runs before every write). */
function writerOf (request: FastifyRequest): Writer {
  const holder = keyHolderOf(request)
  if (holder === undefined) throw new Problem('unauthorized', 'This route needs an API key.')
  return { keyId: holder.id, isAdmin: holder.isAdmin }
}

const PARAMETER_RULE = 'Parameters that start with `_` (and hold no `__`) are the API\'s own; the bare names (`limit`, `sort` …) mean the same unless the data set ' +
  'has a column of that name, which they then filter. Every other parameter is a filter; a column whose name starts with `_` is filtered with its operator written out (`_id__eq=3`).'

export const datasetRoutes: FastifyPluginAsyncTypebox<DatasetRouteOptions> = async (app, options) => {
  const { datasets } = options
  // In this plugin only, bodies reach the handlers as streams: uploads are never buffered here.
  app.removeContentTypeParser('application/json')
  app.addContentTypeParser(UPLOAD_MEDIA_TYPES, (_request, payload, done) => { done(null, payload) })
  // One byte over the limit, so that the service's own count sees a file that is too large (413):
  // at the limit itself busboy cuts the file off and ends it as if whole (only `truncated` tells).
  await app.register(multipart, { limits: { fileSize: options.maxBytes + 1, files: 1, fields: 10, fieldSize: 4096 } })

  const writeAccess = { preHandler: options.requireKey }
  const readAccess = options.requireKeyForReads ? writeAccess : {}
  const keyNeeded = (reads: boolean): number[] => (reads && !options.requireKeyForReads ? [] : [401])
  /** The body and answers of an append and a replace: an upload, written at once (200) or by a job (202). */
  const writeBody = {
    body: Type.Unknown({ description: 'CSV, JSON array, NDJSON or a multipart form' }),
    'x-body-examples': WRITE_BODY_EXAMPLES,
    consumes: [...UPLOAD_MEDIA_TYPES, 'multipart/form-data'],
    response: { 200: DatasetDetail, 202: DatasetDetail, ...problemResponses(400, 401, 403, 404, 409, 413, 415, 503) },
  }

  app.post('/datasets', {
    ...writeAccess,
    schema: {
      tags: ['datasets'],
      summary: 'Create a data set from an upload or a URL',
      description: 'The body is CSV (`text/csv`, a header line first; its delimiter sniffed or given as `delimiter`), TSV (`text/tab-separated-values`), ' +
        'a JSON array of objects (`application/json`), NDJSON (`application/x-ndjson`), an Excel workbook ' +
        '(`application/vnd.openxmlformats-officedocument.spreadsheetml.sheet`: its first sheet, the first row naming the columns, dates as dates), ' +
        'or a `multipart/form-data` form with a `file` field (and optional `name`, `description` fields; the file\'s type from its Content-Type or its name). ' +
        'Text is UTF-8 unless the Content-Type (of the body or of the form\'s file) names another `charset`; invalid text is refused with the line. ' +
        '`Content-Encoding: gzip` (or, in a form or a URL, a `.gz` name or `application/gzip`) is decompressed as it arrives; DATASET_MAX_BYTES ' +
        'counts the decompressed bytes (413 past them), a damaged gzip stream is a 400, another Content-Encoding a 415. Or, as `application/json`, an object ' +
        '`{"url": …, "name"?, "description"?, "format"?}` to import from an http(s) URL (the query\'s `delimiter`, `decimal` and `types` apply to it too). ' +
        'Column types (integer, numeric, boolean, date, timestamp, text) are inferred and widened when a later value does not fit (text with leading zeros, `0123`, ' +
        'stays text), or chosen with `types`. Uploads up to DATASET_SYNC_MAX_BYTES (by Content-Length) are imported at once: 201. ' +
        'Larger uploads, uploads of unknown length and URL imports are imported by a job: 202, and `GET` the `Location` to follow the status. ' +
        'A malformed upload is refused with 400 naming the line (or item), and nothing of it is kept.',
      querystring: Type.Object({ ...UploadQuery.properties, key: Type.Optional(KeyParameter) }),
      body: Type.Unknown({ description: 'CSV, JSON array, NDJSON, multipart form, or `{"url": …}`' }),
      'x-body-examples': CREATE_BODY_EXAMPLES,
      consumes: [...UPLOAD_MEDIA_TYPES, 'multipart/form-data'],
      response: { 201: DatasetDetail, 202: DatasetDetail, ...problemResponses(400, 401, 409, 413, 415, 503) },
    },
  }, async (request, reply) => {
    const { key, delimiter, decimal, types, ...named } = request.query
    const keyColumns = key === undefined ? undefined : readKeyParameter(key)
    const options = importOptionsOf(definedOnly({ delimiter, decimal, types }))
    const { upload, naming } = await readUpload(request, options)
    const detail = await datasets.create(upload, { ...naming, ...definedOnly(named), ...(keyColumns !== undefined && { key: keyColumns }), createdBy: apiKeyOf(request) })
    return await reply.code(detail.dataset.status === 'ready' ? 201 : 202).header('location', `/datasets/${detail.dataset.id}`).send(detail)
  })

  app.get('/datasets', {
    ...readAccess,
    schema: {
      tags: ['datasets'],
      summary: 'Data sets, newest first',
      querystring: Type.Object({
        limit: Type.Integer({ minimum: 1, maximum: 100, default: 20 }),
        cursor: Type.Optional(Type.String({ pattern: '^[0-9]{1,16}$', errorMessage: 'must be the `next_cursor` of a previous page', description: 'The `next_cursor` of the previous page' })),
      }),
      response: { 200: DatasetList, ...problemResponses(400, ...keyNeeded(true), 503) },
    },
  }, async (request, reply) => {
    const { limit, cursor } = request.query
    return await datasets.list({ limit, before: cursor === undefined ? undefined : Number(cursor) }, abortOnDisconnect(reply))
  })

  app.get('/datasets/:dataset_id', {
    ...readAccess,
    schema: {
      tags: ['datasets', 'lesson'],
      summary: 'A data set\'s info, schema and statistics, read concurrently',
      description: 'The lesson\'s `asyncio.gather(fetch_dataset, fetch_schema, fetch_stats)`: three queries at once, `Server-Timing` showing each. ' +
        'While the statistics job has not run yet, `stats.columns` is empty.',
      params: Type.Object({ dataset_id: DatasetId }),
      response: { 200: DatasetDetail, ...problemResponses(400, ...keyNeeded(true), 404, 503) },
    },
  }, async (request, reply) => await withServerTiming(reply, async (timing) => await datasets.detail(request.params.dataset_id, abortOnDisconnect(reply), timing)))

  app.get('/datasets/:dataset_id/rows', {
    ...readAccess,
    schema: {
      tags: ['datasets'],
      summary: 'A page of rows: filter, choose columns, sort, keyset pagination; facets and total',
      description: `${PARAMETER_RULE} Filters: \`column__op=value\` with op one of ${FILTER_OPERATORS.join(', ')} (each described under \`filters\`); \`column=value\` means eq. Values must be valid for the column's type ` +
        '(booleans true/false, dates YYYY-MM-DD, timestamps ISO 8601: no zone means UTC); an empty value is refused; a filter given twice must hold both times. ' +
        'A missing value matches no comparison, `ne` included: find missing values with `isnull=true`. ' +
        '`column__search=words` is a full-text search of one text column, `_q=words` of all of them (words, "phrases", `or`, `-word`). ' +
        '`_sort=column` or `_sort=-column` (missing values last); with `_q`, `_sort=_rank` puts the best matches first. `_select=a,b` returns only those columns. Follow `next_cursor` with the same sort and filters: every row is visited exactly once. ' +
        'A page stops early (with a `next_cursor`) once its values reach DATASET_PAGE_MAX_BYTES. ' +
        '**Facets**: `_facet=category&_facet=score__bins&_facet=day__month&_facet_size=10` adds `facets: {category: {by, values: [{value, count}], other, nulls}, …}` ' +
        'over the rows the filters select: the top `_facet_size` (default 20, at most 100) values by count, ties by value, `other` counting the rows with another value ' +
        'and `nulls` those without one. `column` alone facets text and boolean by value, integer and numeric by bins (`{value, to, count}`, equal width between the ' +
        'filtered minimum and maximum, every bin in order), date and timestamp by the finest of day, month, year with at most `_facet_size` buckets; `column__by` ' +
        `chooses (value, bins, day, month, year). At most ${MAX_FACETS} facets. They run at once, beside the page and the count, each with its own deadline ` +
        '(FACET_TIMEOUT_MS): a late one is cancelled and answered `{"timed_out": true}`, the rest of the page unharmed; a facet computed is kept per set of filters while the data set is unchanged. ' +
        '**Counts**: `_count=exact` (`total`, however long within QUERY_TIMEOUT_MS), `_count=estimated` (the planner\'s estimate, `total_is_estimate: true`), ' +
        '`_count=none`; by default exact when it takes at most COUNT_TIMEOUT_MS, else the estimate. Without filters the total is the row count, exact and free. ' +
        '`Server-Timing` has one entry per part: `rows`, `count`, `facet1`, `facet2`… (the column as `desc`).',
      params: Type.Object({ dataset_id: DatasetId }),
      querystring: viewQuerystring(ROWS_PARAMETERS),
      response: { 200: RowsPage, ...problemResponses(400, ...keyNeeded(true), 404, 409, 503) },
    },
  }, async (request, reply) => await withServerTiming(reply, async (timing) => await datasets.rows(request.params.dataset_id, request.query, abortOnDisconnect(reply), timing)))

  app.get('/datasets/:dataset_id/aggregate', {
    ...readAccess,
    schema: {
      tags: ['datasets'],
      summary: 'Groups of the filtered rows and their metrics, keyset-paged',
      description: `${PARAMETER_RULE} The same filters and \`_q\` search as the rows route. \`_group_by=a,b\` groups by those columns (none: one group of all filtered rows; ` +
        'a missing value is a group of its own). `_metrics` lists what each group gets, under its own name: `count` (rows), `count:col` (values), ' +
        `\`count_distinct:col\`, \`sum:col\`, \`avg:col\`, \`stddev:col\` (sample; integer and numeric columns), \`min:col\`, \`max:col\` (all but boolean); functions: ${METRIC_FUNCTIONS.join(', ')}. ` +
        'Default: `count`. A metric that does not apply to its column\'s type is a 400 naming it. Values as in /rows (dates YYYY-MM-DD, timestamps ISO 8601 in UTC); ' +
        'sums, averages and deviations are computed exactly and sent as JSON numbers (a sum of integers beyond 2^53 as a decimal string). ' +
        '`_sort` is a group column or a metric (`-count`: descending; missing values last), ties broken by the group columns; default: by the group columns. ' +
        'Follow `next_cursor` (same group columns, sort and filters): every group comes exactly once. Each page runs under QUERY_TIMEOUT_MS; past it the answer is 503 `timeout`.',
      params: Type.Object({ dataset_id: DatasetId }),
      querystring: viewQuerystring(AGGREGATE_PARAMETERS),
      response: { 200: AggregatePage, ...problemResponses(400, ...keyNeeded(true), 404, 409, 503) },
    },
  }, async (request, reply) => await datasets.aggregate(request.params.dataset_id, request.query, abortOnDisconnect(reply)))

  app.get('/datasets/:dataset_id/export', {
    ...readAccess,
    schema: {
      tags: ['datasets'],
      summary: 'The rows of a view as CSV or NDJSON, streamed',
      description: `${PARAMETER_RULE} The same filters, \`_q\`, \`_sort\` and \`_select\` as the rows route: the export holds exactly the rows its pages hold, in their order ` +
        '(without them, every row in row order). Read from PostgreSQL in chunks and streamed with backpressure: memory stays flat whatever the size, and a slow ' +
        'client holds no database connection. The CSV imports back as the same rows (booleans as true/false, timestamps in ISO 8601).',
      params: Type.Object({ dataset_id: DatasetId }),
      querystring: viewQuerystring(EXPORT_PARAMETERS),
      response: {
        200: { description: 'The rows', content: { 'text/csv': { schema: Type.String() }, 'application/x-ndjson': { schema: Type.String() } } },
        ...problemResponses(400, ...keyNeeded(true), 404, 409, 503),
      },
    },
  }, async (request, reply) => {
    const { dataset, format, rows } = await datasets.export(request.params.dataset_id, request.query, abortOnDisconnect(reply))
    const filename = `${dataset.name.replace(/[^\w.-]+/g, '_').slice(0, 100) || 'dataset'}.${format}`
    reply.type(format === 'csv' ? 'text/csv; charset=utf-8' : 'application/x-ndjson').header('content-disposition', `attachment; filename="${filename}"`)
    // A stream is piped as it is (with backpressure); the response schema documents, not serialises.
    return await reply.send(rows as unknown as string)
  })

  app.get('/datasets/:dataset_id/events', {
    ...readAccess,
    schema: {
      tags: ['datasets'],
      summary: 'Follow a data set as server-sent events: its import, its writes, its changes',
      description: 'A `text/event-stream` (an `EventSource` in a browser, `curl -N` in a shell) that stays open. Each event\'s `data` is the whole state, ' +
        '`{"dataset": {id, status, rows, error, updated_at}, "write": <the latest append or replace, or null>}`, so a client keeps no books; its name says what changed: ' +
        '`state` first (the state now), `progress` (rows imported so far, or `write.rows_read` of a running write job, every 50,000 rows), ' +
        '`status` (`importing` → `ready` or `failed`, with `error` and its line), `write` (a write queued, running, done with its counts, or failed with why), ' +
        '`change` (a new version: rows deleted, an append done during its request, a PATCH), and `deleted`, after which the stream ends. ' +
        'The events come from whichever process does the work (PostgreSQL LISTEN/NOTIFY); a reconnecting client gets the whole state again first, so it misses ' +
        'no final state (intermediate progress may be skipped). A comment line every 15 s keeps proxies from closing it. ' +
        'A stream holds no database connection while it waits; DATASET_EVENTS_MAX_STREAMS streams per process at most (503 with Retry-After beyond).',
      params: Type.Object({ dataset_id: DatasetId }),
      response: {
        // The schema of one event, as OpenAPI 3.2's itemSchema has it (what schemathesis checks each event against).
        200: { description: 'Events until the client leaves or the data set is deleted', content: { 'text/event-stream': { schema: SseEvent } } },
        ...problemResponses(400, ...keyNeeded(true), 404, 503),
      },
    },
  }, async (request, reply) => {
    const id = request.params.dataset_id
    const state = await datasets.eventState(id)
    if (state === undefined) throw new Problem('not-found', `There is no data set ${id}.`)
    const events = datasets.events.open(id, state)
    // `x-accel-buffering: no`: a proxy such as nginx passes each event on at once.
    reply.type('text/event-stream; charset=utf-8').header('cache-control', 'no-store').header('x-accel-buffering', 'no')
    // A stream is sent as it is (no serialiser runs): the schema describes each of its events.
    return await reply.send(events as never)
  })
  // Open streams never end by themselves: they are ended first, so that the server can close.
  app.addHook('preClose', (done) => {
    datasets.events.close()
    done()
  })

  const WRITE_BODY = 'The body is CSV (a header line first), TSV, a JSON array of objects, NDJSON or an Excel workbook, as for `POST /datasets` (or a `multipart/form-data` form with a `file` field), ' +
    'gzip-compressed or not; UTF-8 unless the Content-Type names another `charset`; read as `delimiter`, `decimal` and `types` say, as at creation. A body up to DATASET_SYNC_MAX_BYTES (by Content-Length) is written during the request: 200 with the counts in `write`. ' +
    'A larger one, or one of unknown length, is stored and written by a job: 202 with `write.status` `queued`; `GET` the `Location` (the data set) to follow `write`. ' +
    'One transaction: all of the body or nothing, and readers see the rows before it until it is complete, then the rows after it, never a part. ' +
    'A malformed body is a 400 naming the line (or item), and nothing of it is written. A data set still importing, or failed, is a 409.'

  app.post('/datasets/:dataset_id/rows', {
    ...writeAccess,
    schema: {
      tags: ['datasets'],
      summary: 'Append rows, or upsert them by the key',
      description: `${WRITE_BODY} Columns are matched by name, in any order; a column of the data set the body lacks is missing (null) in the new rows, ` +
        'a column the data set lacks is added (`columns=strict`: a 400 naming it). A value that does not fit its column\'s type widens the column as an import would ' +
        '(integer → numeric → text, date → timestamp → text, anything → text); a type chosen with `types` is the type of the body\'s values, and widens the column the same way. With a key (`dataset.key`), every row needs its key and no key may come twice in one body ' +
        '(a 400 naming both lines); a row whose key is already in the data set is a 409 naming the key, unless `on_conflict` says to `update` that row (the columns the body has; ' +
        'the others keep their values) or `ignore` the new one. The row count and `updated_at` change with the rows; the statistics are computed again by a job. ' + OWNERSHIP_RULE,
      params: Type.Object({ dataset_id: DatasetId }),
      querystring: Type.Object({
        ...ReadingQuery,
        on_conflict: Type.Optional(OnConflict),
        columns: Type.Optional(Type.Literal('strict', { description: '`strict`: a column the data set does not have is a 400 instead of a new column', examples: ['strict'] })),
      }),
      ...writeBody,
    },
  }, async (request, reply) => {
    const { on_conflict: onConflict, columns, ...reading } = request.query
    const upload = await readWriteUpload(request, reading)
    const detail = await datasets.append(request.params.dataset_id, upload, { onConflict, strict: columns === 'strict' }, writerOf(request))
    return await sendWritten(reply, detail)
  })

  app.put('/datasets/:dataset_id/data', {
    ...writeAccess,
    schema: {
      tags: ['datasets'],
      summary: 'Replace every row, atomically',
      description: `${WRITE_BODY} The body becomes the data set's rows and columns (types inferred as at creation, or chosen with \`types\`); id, name, description and key stay. ` +
        'It is imported beside the rows readers read, then swapped in at once: a reader sees every old row or every new one, never a mix and never none. ' +
        'With a key, the new rows must hold it (every key column, no key twice: a 400 naming both lines). One replace of a data set at a time (409 while another runs). ' +
        'The statistics are recomputed by a job (empty until then). ' + OWNERSHIP_RULE,
      params: Type.Object({ dataset_id: DatasetId }),
      querystring: Type.Object(ReadingQuery),
      ...writeBody,
    },
  }, async (request, reply) => {
    const upload = await readWriteUpload(request, request.query)
    return await sendWritten(reply, await datasets.replace(request.params.dataset_id, upload, writerOf(request)))
  })

  // The one JSON body of this plugin that is read whole and validated by its schema.
  await app.register(async (scope) => {
    const keyRoute = scope.withTypeProvider<TypeBoxTypeProvider>()
    keyRoute.removeContentTypeParser('application/json')
    keyRoute.addContentTypeParser('application/json', { parseAs: 'string', bodyLimit: URL_IMPORT_MAX_BYTES }, keyRoute.getDefaultJsonParser('error', 'error'))
    keyRoute.put('/datasets/:dataset_id/key', {
      ...writeAccess,
      schema: {
        tags: ['datasets'],
        summary: 'Declare the key columns, or drop the key',
        description: 'The body is `{"key": ["country", "year"]}` (column names, in key order) or `{"key": null}`. The rows must already fit the key: ' +
          'every key column has a value and no key comes twice, else a 409 naming the rows. Enforced from then on by a unique index: appends need the key in every row ' +
          'and may upsert by it (`on_conflict`). The same key can be given at creation: `POST /datasets?key=country,year`. ' + OWNERSHIP_RULE,
        params: Type.Object({ dataset_id: DatasetId }),
        body: DatasetKey,
        response: { 200: DatasetDetail, ...problemResponses(400, 401, 403, 404, 409, 413, 415, 503) },
      },
    }, async (request) => await datasets.setKey(request.params.dataset_id, request.body.key, writerOf(request)))
  })

  app.delete('/datasets/:dataset_id', {
    ...writeAccess,
    schema: {
      tags: ['datasets'],
      summary: 'Delete a data set and its rows',
      description: 'At once, also while it is imported (the import stops) or read (those reads are cancelled). Its history (GET …/changes) goes with it. ' + OWNERSHIP_RULE,
      params: Type.Object({ dataset_id: DatasetId }),
      response: { 204: Type.Null(), ...problemResponses(400, 401, 403, 404, 503) },
    },
  }, async (request, reply) => {
    if (!await datasets.remove(request.params.dataset_id, writerOf(request))) throw new Problem('not-found', `There is no data set ${request.params.dataset_id}.`)
    return await reply.code(204).send(null)
  })

  app.delete('/datasets/:dataset_id/rows', {
    ...writeAccess,
    schema: {
      tags: ['datasets'],
      summary: 'Delete the rows a filter selects',
      description: `${PARAMETER_RULE} Exactly the filters and \`_q\` search of GET /datasets/{id}/rows (\`column__op=value\`, \`column=value\`, \`_q=words\`): ` +
        'the rows deleted are the rows that GET would list. At least one filter (or `_q`) is required: without one the answer is 400 (delete the data set to delete every row). ' +
        'One transaction: the rows, the data set\'s `rows` and `updated_at`, and its history entry (`delete_rows`, with the filters) commit together; ' +
        'the statistics are computed again by a job (`stats.columns` is empty until then). A delete that selects no row changes nothing. ' + OWNERSHIP_RULE,
      params: Type.Object({ dataset_id: DatasetId }),
      querystring: viewQuerystring(DELETE_ROWS_PARAMETERS),
      response: { 200: RowsDeleted, ...problemResponses(400, 401, 403, 404, 409, 503) },
    },
  }, async (request) => await datasets.deleteRows(request.params.dataset_id, request.query, writerOf(request)))

  app.get('/datasets/:dataset_id/changes', {
    ...readAccess,
    schema: {
      tags: ['datasets'],
      summary: 'The history of a data set\'s writes, newest first',
      description: 'One entry per write that committed: `create` (the import), `delete_rows`, `patch` (and appends, upserts, replaces), each with its time, the id of the API key ' +
        'that wrote (null for the demo data set), the rows it touched and what it was (`details`). Keyset-paged: follow `next_cursor`. The history lives as long as its data set: ' +
        'deleting the data set deletes it.',
      params: Type.Object({ dataset_id: DatasetId }),
      querystring: Type.Object({
        limit: Type.Integer({ minimum: 1, maximum: 100, default: 20, examples: [20] }),
        cursor: Type.Optional(Type.String({ pattern: '^[0-9]{1,16}$', errorMessage: 'must be the `next_cursor` of a previous page', description: 'The `next_cursor` of the previous page', examples: ['17'] })),
      }),
      response: { 200: DatasetChanges, ...problemResponses(400, ...keyNeeded(true), 404, 503) },
    },
  }, async (request, reply) => {
    const { limit, cursor } = request.query
    return await datasets.changes(request.params.dataset_id, { limit, before: cursor === undefined ? undefined : Number(cursor) }, abortOnDisconnect(reply))
  })

  // PATCH takes a small JSON body, parsed and validated as usual: in a context of its own, since
  // this plugin hands JSON bodies over as streams (uploads). Any other type is a 415.
  await app.register(async (patchContext) => {
    patchContext.removeAllContentTypeParsers()
    patchContext.addContentTypeParser('application/json', { parseAs: 'string' }, (_request, body, done) => {
      try {
        // JSON.parse keeps a key "__proto__" as a plain key: a column may be called that.
        done(null, JSON.parse(body as string))
      } catch {
        done(new Problem('bad-request', 'The body is not valid JSON.'), undefined)
      }
    })
    patchContext.withTypeProvider<TypeBoxTypeProvider>().patch('/datasets/:dataset_id', {
      preHandler: options.requireKey,
      schema: {
        tags: ['datasets'],
        summary: 'Rename a data set, edit its description, rename columns, change their types',
        description: 'A JSON object with any of `name`, `description` (null removes it) and `columns`, which maps a column\'s current name to its new `name` and/or `type` ' +
          '(`{"columns": {"born": {"name": "birthday", "type": "date"}}}`). Changes apply together, in one transaction: names after the change must be unique (two columns may swap names), ' +
          'and a new name is 1 to 1000 characters without NUL. A type change converts each value from its text as the API sends it by the codec of the new type, the rule that reads ' +
          'filter values (`"2026-01-02"` converts to a date, `"1.5"` not to an integer, anything to text); the first value that does not convert is a 400 with its `row` (row number) ' +
          'and `value`, and nothing is changed. The view of POST /datasets/sql follows the new names and types; the statistics are computed again by a job. ' +
          'Answers the data set as GET /datasets/{id} does. ' + OWNERSHIP_RULE,
        params: Type.Object({ dataset_id: DatasetId }),
        body: DatasetPatch,
        consumes: ['application/json'],
        response: { 200: DatasetDetail, ...problemResponses(400, 401, 403, 404, 409, 415, 503) },
      },
    }, async (request, reply) => await datasets.patch(request.params.dataset_id, request.body, writerOf(request), abortOnDisconnect(reply)))
  })
}

/** `?key=a,b` as column names; an empty one or one given twice is a 400. */
function readKeyParameter (text: string): string[] {
  const names = text.split(',').map((name) => name.trim())
  const wrong = names.find((name, at) => name === '' || names.indexOf(name) !== at)
  if (wrong !== undefined) throw new Problem('validation-error', `key: ${wrong === '' ? 'a column name is empty' : `"${wrong}" is named twice`}`, { extra: { errors: [{ in: 'querystring', pointer: '/key', detail: 'names each key column once' }] } })
  if (names.length > 32) throw new Problem('validation-error', 'key: at most 32 columns', { extra: { errors: [{ in: 'querystring', pointer: '/key', detail: 'at most 32 columns' }] } })
  return names
}

/** The body of an append or a replace: a file, never a URL. */
async function readWriteUpload (request: FastifyRequest, reading: ImportQuery): Promise<Extract<Upload, { kind: 'file' }>> {
  const { upload } = await readUpload(request, importOptionsOf(definedOnly(reading)))
  if (upload.kind !== 'file') throw new Problem('bad-request', 'Appends and replaces take the data as the body (CSV, JSON array or NDJSON) or a multipart form; a JSON object body is no data.')
  return upload
}

/** 200 when written, 202 when a job will: Location is the data set, which shows the write. */
async function sendWritten (reply: FastifyReply, detail: DatasetDetailType): Promise<FastifyReply> {
  return await reply.code(detail.write?.status === 'queued' ? 202 : 200).header('location', `/datasets/${detail.dataset.id}`).send(detail)
}

/** Query parameters as given, without the ones left out. */
function definedOnly<T extends object> (values: T): Partial<T> {
  return Object.fromEntries(Object.entries(values).filter(([, value]) => value !== undefined)) as Partial<T>
}

/**
 * The body as the client sent it, and any read error (the client went away, a form cut short) as
 * the client's 400: the service sees a stream that either ends or says what was wrong.
 */
async function * clientBytes (input: Readable & { truncated?: boolean }): AsyncGenerator<Buffer> {
  try {
    for await (const chunk of input as AsyncIterable<Buffer>) yield chunk
  } catch (error) {
    if (error instanceof Problem) throw error
    throw new Problem('bad-request', 'The upload broke off before its end (the connection closed, or the multipart form is cut short).', { cause: error })
  }
  // A form's file cut off at busboy's size limit ends like a whole one.
  if (input.truncated === true) throw new Problem('payload-too-large', 'The file is larger than this service accepts (DATASET_MAX_BYTES).')
}

/**
 * What the client sent: a file (CSV, TSV, JSON, NDJSON, xlsx, maybe gzip-compressed, as the body
 * or in a form) or a URL to import; `options` say how to read it.
 */
async function readUpload (request: FastifyRequest, options: ImportOptions): Promise<{ upload: Upload, naming: Naming }> {
  const contentLength = Number(request.headers['content-length'])
  const length = Number.isSafeInteger(contentLength) ? contentLength : undefined
  const compression = contentEncodingOf(request.headers['content-encoding'])
  if (request.isMultipart()) {
    // busboy reads the form as it is sent: a compressed form cannot be read, a compressed file in it can.
    if (compression !== undefined) throw new Problem('unsupported-media-type', 'A multipart form cannot be sent with a Content-Encoding: compress its file instead (a .gz name, or the type application/gzip).')
    const part = await request.file().catch((error: unknown) => {
      // busboy's errors (no boundary, a truncated form) are plain Errors: the client's fault, a 400.
      if (error instanceof Error && !('statusCode' in error)) throw new Problem('bad-request', 'The multipart/form-data body could not be read (a missing boundary, or a malformed form).', { cause: error })
      throw error
    })
    if (part === undefined) throw new Problem('bad-request', 'The form has no file: send the data in a `file` field.')
    const fields = Object.fromEntries(Object.entries(part.fields).flatMap(([name, value]) =>
      value !== undefined && !Array.isArray(value) && value.type === 'field' && (name === 'name' || name === 'description') ? [[name, String(value.value)]] : []))
    if (!Value.Check(DatasetNamingQuery, fields)) {
      part.file.resume()
      throw invalidValue('body', DatasetNamingQuery, fields)
    }
    // The part's Content-Type keeps its charset (patches/@fastify+busboy: busboy handed on the bare type).
    let format: ReturnType<typeof formatOf>
    let charset: string
    let isGzip: boolean
    try {
      format = formatOf(part.mimetype, part.filename)
      charset = charsetOf(part.mimetype)
      isGzip = isGzipFile(part.mimetype, part.filename)
    } catch (error) {
      part.file.resume()
      if (error instanceof Problem) throw error
      throw new Problem('bad-request', 'The Content-Type of the form\'s file could not be read.', { cause: error })
    }
    if (format === undefined) {
      part.file.resume()
      throw new Problem('unsupported-media-type', `The file's type (${part.mimetype}) is not one of ${FORMATS.join(', ')}; give it a .csv, .tsv, .json, .ndjson or .xlsx name (.csv.gz … when compressed) or type.`)
    }
    return {
      upload: { kind: 'file', format, charset, input: clientBytes(part.file), contentLength: length, compression: isGzip ? 'gzip' : undefined, options },
      naming: { name: fields.name ?? (part.filename.replace(/\.gz$/i, '').replace(/\.[^.]+$/, '') || undefined), description: fields.description },
    }
  }
  const body = request.body as Readable | undefined
  const contentType = request.headers['content-type']
  const format = formatOf(contentType)
  if (body === undefined || format === undefined) throw new Problem('bad-request', 'Send the data as the body (CSV, TSV, JSON array, NDJSON or xlsx) or a multipart form, or `{"url": …}` as JSON.')
  const charset = charsetOf(contentType)
  const file = { kind: 'file', format, charset, contentLength: length, compression, options } as const
  // JSON: an array is data; an object asks for a URL import (never compressed: a compressed JSON body is data).
  if (format !== 'json' || compression !== undefined) return { upload: { ...file, input: clientBytes(body) }, naming: {} }
  const { first, stream } = await peekFirstCharacter(clientBytes(body))
  if (first !== '{') return { upload: { ...file, input: stream }, naming: {} }
  const importRequest = await readSmallJson(stream, charset)
  if (!Value.Check(UrlImport, importRequest)) {
    throw invalidValue('body', UrlImport, importRequest)
  }
  const { url, format: named, ...naming } = importRequest
  return { upload: { kind: 'url', url, format: named, options }, naming }
}

/** The first non-blank character of a stream, and the stream as if it had not been read. */
async function peekFirstCharacter (input: AsyncIterable<Buffer>): Promise<{ first: string | undefined, stream: AsyncIterable<Buffer> }> {
  const iterator = input[Symbol.asyncIterator]()
  const seen: Buffer[] = []
  let first: string | undefined
  while (first === undefined) {
    const next = await iterator.next()
    if (next.done === true) break
    seen.push(next.value)
    first = /\S/.exec(next.value.toString('latin1'))?.[0]
  }
  const stream = (async function * () {
    yield * seen
    for (let next = await iterator.next(); next.done !== true; next = await iterator.next()) yield next.value
  })()
  return { first, stream }
}

async function readSmallJson (input: AsyncIterable<Buffer>, charset: string): Promise<unknown> {
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of input) {
    size += chunk.length
    if (size > URL_IMPORT_MAX_BYTES) throw new Problem('payload-too-large', `A URL import request is at most ${URL_IMPORT_MAX_BYTES} bytes.`)
    chunks.push(chunk)
  }
  let text: string
  try {
    // Invalid text is refused, not turned into U+FFFD (a name "caf\xe9" became "caf�").
    text = new TextDecoder(charset, { fatal: true }).decode(Buffer.concat(chunks))
  } catch {
    throw new Problem('bad-request', `The body is not valid ${charset} text.`)
  }
  try {
    return JSON.parse(text)
  } catch {
    throw new Problem('bad-request', 'The body is not valid JSON.')
  }
}
