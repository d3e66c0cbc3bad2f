// The Data API: upload or import a data set, read its info, schema and statistics (the lesson's
// GET /datasets/{dataset_id}, its three parts fetched concurrently), page and filter its rows,
// export it, delete it. Writes need an API key; reads too with REQUIRE_KEY_FOR_READS.
import { Readable } from 'node:stream'
import multipart from '@fastify/multipart'
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { FastifyRequest } from 'fastify'
import Type from 'typebox'
import Value from 'typebox/value'
import { apiKeyOf, requireApiKey } from '../../auth/require-key.ts'
import { queryRows } from '../../datasets/rows-query.ts'
import { deleteDataset, enqueueUrlImport, exportRows, findColumns, findDataset, findStats, formatOf, importUpload, listDatasets, spoolUpload, type DatasetRow, type NewDataset } from '../../datasets/service.ts'
import type { Format } from '../../datasets/sources.ts'
import type { Sql } from '../../db/pool.ts'
import type { JobQueue } from '../../jobs/queue.ts'
import { gather } from '../../lib/concurrency.ts'
import { Problem } from '../../lib/errors.ts'
import { abortOnDisconnect } from '../../lib/request-signal.ts'
import { problemResponses } from '../../lib/schemas.ts'
import type { ServerTiming } from '../../lib/server-timing.ts'
import { withServerTiming } from '../../lib/server-timing.ts'
import type { SsrfGuard } from '../../upstream/ssrf-guard.ts'
import { DatasetDetail, DatasetId, DatasetList, RowsPage, UrlImport } from './schemas.ts'

export interface DatasetRouteOptions {
  sql: Sql
  jobs: JobQueue
  guard: SsrfGuard
  syncMaxBytes: number
  maxBytes: number
  requireKeyForReads: boolean
}

const UPLOAD_TYPES = ['text/csv', 'application/csv', 'application/json', 'application/x-ndjson', 'application/ndjson', 'application/jsonl']
const URL_IMPORT_MAX_BYTES = 64 * 1024

export const datasetRoutes: FastifyPluginAsyncTypebox<DatasetRouteOptions> = async (app, options) => {
  const { sql, jobs, guard } = options
  // In this plugin only, bodies reach the handlers as streams: uploads are never buffered whole.
  app.removeContentTypeParser('application/json')
  app.addContentTypeParser(UPLOAD_TYPES, (_request, payload, done) => { done(null, payload) })
  await app.register(multipart, { limits: { fileSize: options.maxBytes, files: 1, fields: 10, fieldSize: 4096 } })

  const writeAccess = { preHandler: requireApiKey(sql) }
  const readAccess = options.requireKeyForReads ? writeAccess : {}
  const keyNeeded = (reads: boolean): number[] => (reads && !options.requireKeyForReads ? [] : [401])

  /** The lesson's {dataset, schema, stats}: three reads at once, one Server-Timing entry each. */
  const detail = async (id: number, signal: AbortSignal, timing?: ServerTiming) => {
    const { values } = await gather({
      dataset: async (branchSignal) => {
        const dataset = await findDataset(sql, id, branchSignal)
        if (dataset === undefined) throw new Problem('not-found', `There is no data set ${id}.`)
        return dataset
      },
      schema: async (branchSignal) => await findColumns(sql, id, branchSignal),
      stats: async (branchSignal) => await findStats(sql, id, branchSignal),
    }, { signal, timing })
    const { dataset, schema, stats } = values
    return {
      dataset,
      schema: { columns: schema.map((field) => field.name), fields: schema.map(({ name, type, nullable }) => ({ name, type, nullable })) },
      stats: { count: dataset.rows, computed_at: stats?.computed_at ?? null, columns: stats?.stats.columns ?? {} },
    }
  }

  const readyDataset = async (id: number, signal: AbortSignal): Promise<DatasetRow> => {
    const dataset = await findDataset(sql, id, signal)
    if (dataset === undefined) throw new Problem('not-found', `There is no data set ${id}.`)
    if (dataset.status === 'importing') throw new Problem('conflict', `Data set ${id} is still importing (${dataset.rows} rows so far); its rows are readable once its status is "ready".`)
    if (dataset.status === 'failed') throw new Problem('conflict', `Data set ${id} failed to import: ${dataset.error?.detail ?? 'unknown reason'}`)
    return dataset
  }

  app.post('/datasets', {
    ...writeAccess,
    schema: {
      tags: ['datasets'],
      summary: 'Create a data set from an upload or a URL',
      description: 'The body is CSV (`text/csv`, a header line first), a JSON array of objects (`application/json`), NDJSON (`application/x-ndjson`), ' +
        'or a `multipart/form-data` form with a `file` field (and optional `name`, `description` fields). Or, as `application/json`, an object ' +
        '`{"url": …, "name"?, "description"?, "format"?}` to import from an http(s) URL. Column types (integer, numeric, boolean, date, timestamp, text) ' +
        'are inferred and widened when a later value does not fit. Uploads up to DATASET_SYNC_MAX_BYTES (by Content-Length) are imported at once: 201. ' +
        'Larger uploads, uploads of unknown length and URL imports are imported by a job: 202, and `GET` the `Location` to follow the status. ' +
        'A malformed upload is refused with 400 naming the line (or item), and nothing of it is kept.',
      querystring: Type.Object({
        name: Type.Optional(Type.String({ minLength: 1, maxLength: 200, description: 'Default: the file name, or "upload"' })),
        description: Type.Optional(Type.String({ maxLength: 2000 })),
      }),
      body: Type.Unknown({ description: 'CSV, JSON array, NDJSON, multipart form, or `{"url": …}`' }),
      consumes: [...UPLOAD_TYPES, 'multipart/form-data'],
      response: { 201: DatasetDetail, 202: DatasetDetail, ...problemResponses(400, 401, 409, 413, 415, 503) },
    },
  }, async (request, reply) => {
    const signal = abortOnDisconnect(reply)
    const upload = await readUpload(request)
    const dataset: NewDataset = { name: request.query.name ?? upload.name, description: request.query.description ?? upload.description, createdBy: apiKeyOf(request) }
    let row: DatasetRow
    if (upload.kind === 'url') {
      const url = await guard.check(upload.url)
      row = await enqueueUrlImport(sql, jobs, dataset, url, upload.format ?? null)
    } else {
      const length = Number(request.headers['content-length'])
      const now = Number.isFinite(length) && length <= options.syncMaxBytes
      row = now
        ? await importUpload(sql, jobs, dataset, upload.format, upload.input, options.maxBytes)
        : await spoolUpload(sql, jobs, dataset, upload.format, upload.input, options.maxBytes)
    }
    reply.code(row.status === 'ready' ? 201 : 202).header('location', `/datasets/${row.id}`)
    return await detail(row.id, signal)
  })

  app.get('/datasets', {
    ...readAccess,
    schema: {
      tags: ['datasets'],
      summary: 'Data sets, newest first',
      querystring: Type.Object({
        limit: Type.Integer({ minimum: 1, maximum: 100, default: 20 }),
        cursor: Type.Optional(Type.String({ pattern: '^[0-9]{1,16}$', description: 'The `next_cursor` of the previous page' })),
      }),
      response: { 200: DatasetList, ...problemResponses(400, ...keyNeeded(true), 503) },
    },
  }, async (request, reply) => {
    const { limit, cursor } = request.query
    const rows = await listDatasets(sql, { limit: limit + 1, before: cursor === undefined ? undefined : Number(cursor) }, abortOnDisconnect(reply))
    const page = rows.slice(0, limit)
    return { datasets: page, next_cursor: rows.length > limit ? String(page.at(-1)!.id) : null }
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
  }, async (request, reply) => await withServerTiming(reply, async (timing) => await detail(request.params.dataset_id, abortOnDisconnect(reply), timing)))

  app.get('/datasets/:dataset_id/rows', {
    ...readAccess,
    schema: {
      tags: ['datasets'],
      summary: 'A page of rows: filter, sort, keyset pagination',
      description: 'Filters: `column__op=value` with op one of eq, ne, gt, gte, lt, lte (ordered types), contains, startswith (text, case-insensitive), ' +
        'in (comma-separated), isnull (true/false); `column=value` means eq. Values must fit the column\'s type. ' +
        '`sort=column` or `sort=-column` (missing values last). Follow `next_cursor` with the same sort and filters: every row is visited exactly once.',
      params: Type.Object({ dataset_id: DatasetId }),
      querystring: Type.Object({
        limit: Type.Integer({ minimum: 1, maximum: 1000, default: 100 }),
        sort: Type.Optional(Type.String({ minLength: 1, maxLength: 201 })),
        cursor: Type.Optional(Type.String({ maxLength: 4096 })),
      }, { additionalProperties: Type.String({ description: 'A filter: `column__op=value`' }) }),
      response: { 200: RowsPage, ...problemResponses(400, ...keyNeeded(true), 404, 409, 503) },
    },
  }, async (request, reply) => {
    const signal = abortOnDisconnect(reply)
    const { limit, sort, cursor, ...filters } = request.query as { limit: number, sort?: string, cursor?: string } & Record<string, string>
    const id = request.params.dataset_id
    await readyDataset(id, signal)
    return await queryRows(sql, id, await findColumns(sql, id, signal), { limit, sort, cursor, filters }, signal)
  })

  app.get('/datasets/:dataset_id/export', {
    ...readAccess,
    schema: {
      tags: ['datasets'],
      summary: 'All rows as CSV or NDJSON, streamed',
      description: 'Streamed straight from PostgreSQL (COPY … TO STDOUT) with backpressure: memory stays flat whatever the size. ' +
        'The CSV imports back as the same rows (booleans as true/false, timestamps in ISO 8601).',
      params: Type.Object({ dataset_id: DatasetId }),
      querystring: Type.Object({ format: Type.Union([Type.Literal('csv'), Type.Literal('ndjson')], { default: 'csv' }) }),
      response: {
        200: { description: 'The rows', content: { 'text/csv': { schema: Type.String() }, 'application/x-ndjson': { schema: Type.String() } } },
        ...problemResponses(400, ...keyNeeded(true), 404, 409, 503),
      },
    },
  }, async (request, reply) => {
    const signal = abortOnDisconnect(reply)
    const id = request.params.dataset_id
    const dataset = await readyDataset(id, signal)
    const { format } = request.query
    const filename = `${dataset.name.replace(/[^\w.-]+/g, '_').slice(0, 100) || 'dataset'}.${format}`
    const rows = exportRows(sql, id, await findColumns(sql, id, signal), format)
    reply.type(format === 'csv' ? 'text/csv; charset=utf-8' : 'application/x-ndjson').header('content-disposition', `attachment; filename="${filename}"`)
    // A stream is piped as it is (with backpressure); the response schema documents, not serialises.
    return await reply.send(rows as unknown as string)
  })

  app.delete('/datasets/:dataset_id', {
    ...writeAccess,
    schema: {
      tags: ['datasets'],
      summary: 'Delete a data set and its rows',
      description: 'Waits for a running import of the data set to end first.',
      params: Type.Object({ dataset_id: DatasetId }),
      response: { 204: Type.Null(), ...problemResponses(400, 401, 404, 503) },
    },
  }, async (request, reply) => {
    if (!await deleteDataset(sql, request.params.dataset_id)) throw new Problem('not-found', `There is no data set ${request.params.dataset_id}.`)
    return await reply.code(204).send(null)
  })
}

/** A file to import now (or spool), or a URL to import by a job. */
type Upload = { name: string, description?: string } & (
  | { kind: 'file', format: Format, input: Readable }
  | { kind: 'url', url: string, /** When the client names it; else from the response. */ format?: Format }
)

/** What the client sent: a file (CSV, JSON, NDJSON, as the body or in a form) or a URL to import. */
async function readUpload (request: FastifyRequest): Promise<Upload> {
  if (request.isMultipart()) {
    const part = await request.file().catch((error: unknown) => {
      // busboy's errors (no boundary, a truncated form) are plain Errors: the client's fault, a 400.
      if (error instanceof Error && !('statusCode' in error)) throw new Problem('bad-request', 'The multipart/form-data body could not be read (a missing boundary, or a malformed form).', { cause: error })
      throw error
    })
    if (part === undefined) throw new Problem('bad-request', 'The form has no file: send the data in a `file` field.')
    const field = (name: string): string | undefined => {
      const value = part.fields[name]
      return value !== undefined && !Array.isArray(value) && value.type === 'field' ? String(value.value) : undefined
    }
    const format = formatOf(part.mimetype, part.filename)
    if (format === undefined) {
      part.file.resume()
      throw new Problem('unsupported-media-type', `The file's type (${part.mimetype}) is not CSV, JSON or NDJSON; give it a .csv, .json or .ndjson name or type.`)
    }
    return { kind: 'file', format, input: part.file, name: field('name') ?? (part.filename.replace(/\.[^.]+$/, '') || 'upload'), description: field('description') }
  }
  const body = request.body as Readable | undefined
  const format = formatOf(request.headers['content-type'])
  if (body === undefined || format === undefined) throw new Problem('bad-request', 'Send the data as the body (CSV, JSON array or NDJSON) or a multipart form, or `{"url": …}` as JSON.')
  if (format !== 'json') return { kind: 'file', format, input: body, name: 'upload' }
  // JSON: an array is data; an object asks for a URL import.
  const { first, stream } = await peekFirstByte(body)
  if (first !== '{') return { kind: 'file', format, input: stream, name: 'upload' }
  const importRequest = await readSmallJson(stream)
  if (!Value.Check(UrlImport, importRequest)) {
    const errors = [...Value.Errors(UrlImport, importRequest)].map((error) => ({ in: 'body', pointer: error.instancePath || '/', detail: error.message }))
    throw new Problem('validation-error', `A JSON object asks for a URL import: ${errors.map((error) => `${error.pointer} ${error.detail}`).join('; ')}.`, { extra: { errors } })
  }
  return { kind: 'url', format: importRequest.format, url: importRequest.url, name: importRequest.name ?? (new URL(importRequest.url, 'http://x').pathname.split('/').pop() || 'import'), description: importRequest.description }
}

/** The first non-blank character of a stream, and the stream as if it had not been read. */
async function peekFirstByte (input: Readable): Promise<{ first: string | undefined, stream: Readable }> {
  const iterator = (input as AsyncIterable<Buffer>)[Symbol.asyncIterator]()
  const seen: Buffer[] = []
  let first: string | undefined
  while (first === undefined) {
    const next = await iterator.next()
    if (next.done === true) break
    seen.push(next.value)
    first = /\S/.exec(next.value.toString('utf8'))?.[0]
  }
  const stream = Readable.from((async function * () {
    yield * seen
    for (let next = await iterator.next(); next.done !== true; next = await iterator.next()) yield next.value
  })(), { objectMode: false })
  return { first, stream }
}

async function readSmallJson (input: Readable): Promise<unknown> {
  let text = ''
  for await (const chunk of input as AsyncIterable<Buffer>) {
    text += chunk.toString('utf8')
    if (text.length > URL_IMPORT_MAX_BYTES) throw new Problem('payload-too-large', `A URL import request is at most ${URL_IMPORT_MAX_BYTES} bytes.`)
  }
  try {
    return JSON.parse(text)
  } catch {
    throw new Problem('bad-request', 'The body is not valid JSON.')
  }
}
