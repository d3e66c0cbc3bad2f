// The rules of data sets: how an upload becomes a data set (imported during the request when
// small, stored and imported by a job when large or from a URL), what may be read when (rows only
// once ready), how one is deleted while it is imported or read, and what an import job does.
//
// No client holds a database connection while it sends: a small upload is read whole into memory
// (within a budget) before its transaction opens, a large one is stored piece by piece, each piece
// a statement of its own. An import is one transaction (metadata, table, rows, columns and the
// statistics job commit together or not at all); a malformed upload leaves nothing behind.
import { randomUUID } from 'node:crypto'
import type { Readable } from 'node:stream'
import { request as httpRequest } from 'undici'
import type { TransactionSql } from 'postgres'
import type { Logger } from 'pino'
import type { ListenHandlers } from '../../db/listener.ts'
import { withoutStatementTimeout, type Sql } from '../../db/pool.ts'
import type { JobQueue } from '../../jobs/queue.ts'
import { reserveConnection } from '../../db/scoped.ts'
import { createSlots, gather, withDeadline } from '../../lib/concurrency.ts'
import { asProblem, Problem } from '../../lib/errors.ts'
import type { ServerTiming } from '../../lib/server-timing.ts'
import type { Config } from '../../config.ts'
import { createSsrfGuard, type SsrfGuard } from '../../upstream/ssrf-guard.ts'
import { AGGREGATE_PARAMETERS, queryAggregate } from './aggregate.ts'
import { EXPORT_PARAMETERS, exportRows, type ExportFormat } from './export.ts'
import { decodeText } from './import/decode.ts'
import { charsetOf, contentEncodingOf, formatOf, isGzipFile, type Format } from './import/formats.ts'
import { decompressed, type Compression } from './import/gzip.ts'
import { importRows } from './import/importer.ts'
import { InvalidDataError } from './import/invalid-data.ts'
import type { ImportOptions } from './import/options.ts'
import { rowSource } from './import/sources.ts'
import { MetadataCache, type DatasetMetadata } from './metadata-cache.ts'
import { createDatasetsRepository, type NewDataset, type WriteTarget } from './repository.ts'
import { countRows, estimateRows } from './count.ts'
import { computeFacet, readFacets } from './facets.ts'
import { queryRows, ROWS_PARAMETERS } from './rows.ts'
import { literal, widen, type ColumnType } from './column-types.ts'
import type { AggregatePage, Dataset, DatasetChange, DatasetColumn, DatasetDetail, DatasetPatch, DatasetSource, DatasetWrite, Facet, RowsPage, WriteKind } from './schemas.ts'
import { computeDatasetStats } from './stats.ts'
import { rowsTable } from './table.ts'
import { DataQuery, type ApiParameter, type QueryString } from './view.ts'
import { ViewCache } from './view-cache.ts'
import { appendInto, changeKey, checkOnConflict, enforceKey, replaceWith, writable, type AppendOptions, type WriteResult } from './writes.ts'
import { DatasetEvents, type DatasetState } from './events.ts'

/** The API parameters of DELETE /datasets/{id}/rows: the filters of GET /rows and its search. */
export const DELETE_ROWS_PARAMETERS = ['q'] as const satisfies readonly ApiParameter[]

/** The API key a write comes with (auth/require-key.ts keyHolderOf). */
export interface Writer { keyId: number, isAdmin: boolean }

/** Who sent a write and how its body is read (kept with a job's write: migration 0013). */
interface WriteHow {
  /** null: the key was deleted since it queued the write. */
  apiKeyId: number | null
  options: ImportOptions
  onProgress?: (rows: number) => Promise<void>
}

/**
 * An upload as the route read it from HTTP: a file's bytes (gzip-compressed when `compression`
 * says so), or a URL to import from; and how to read it (`options`, from the query).
 */
export type Upload =
  | { kind: 'file', format: Format, charset: string, input: AsyncIterable<Buffer>, contentLength?: number, compression?: Compression, options: ImportOptions }
  | { kind: 'url', url: string, /** When the client names it; else from the response. */ format?: Format, options: ImportOptions }

/** A file to import: its bytes as they arrive (compressed or not), what they are and how to read them. */
interface FileToImport { format: Format, input: AsyncIterable<Buffer>, charset: string, compression?: Compression, options: ImportOptions }

export interface DatasetServiceOptions {
  sql: Sql
  jobs: JobQueue
  guard: SsrfGuard
  /** Uploads up to this many bytes (by Content-Length) are imported during the request. */
  syncMaxBytes: number
  maxBytes: number
  pageMaxBytes: number
  fetchTimeoutMs: number
  /** How long an upload may take to arrive; stored pieces older than twice this with no data set are removed. */
  uploadTimeoutMs: number
  /** QUERY_TIMEOUT_MS (the requests' statement timeout), named in the answer of an aggregate past it. */
  queryTimeoutMs?: number
  /** Deadline of each facet of a rows page. */
  facetTimeoutMs: number
  /** Deadline of a rows page's exact count by default; past it, the estimate. */
  countTimeoutMs: number
  /** Connections of the pool `sql`, and how long a query may wait for one. */
  poolMax: number
  poolWaitMs: number
  /** Event streams (GET /datasets/{id}/events) open at once at most. */
  eventStreams: number
  log: Logger
}

export type DatasetService = ReturnType<typeof createDatasetService>

/** What the client named the data set (the name defaults to the file's, or the URL's last segment). */
export type Naming = Omit<NewDataset, 'name'> & { name?: string }

const PIECE_BYTES = 1024 * 1024
const SLICE_BYTES = 64 * 1024
// Small uploads are held in memory while they arrive, at most this many of them at once (by bytes).
const SYNC_UPLOADS_IN_MEMORY = 4
// DELETE waits at most this long for a lock (an import finishing, another DELETE of the same set).
const DELETE_LOCK_TIMEOUT = '2s'
const UNDEFINED_TABLE = '42P01'
// A read planned on columns that a write changed meanwhile (added, widened, replaced): the column
// is gone, or its type is no longer the one the filter's value was cast to.
const STALE_COLUMN_CODES = new Set(['42703', '42804', '42883', '22P02'])
// A write during a request waits at most this long for another write of its data set to commit.
const SYNC_WRITE_LOCK_TIMEOUT = '10s'
// A selection whose default count missed COUNT_TIMEOUT_MS is estimated at once for this long.
const LATE_COUNT_MS = 60_000

/** A data set deleted while its import ran: the import rolls back and the job ends quietly. */
class DatasetGone extends Error {}

/** A file upload (the only kind a write takes). */
type FileUpload = Extract<Upload, { kind: 'file' }>

export function createDatasetService (options: DatasetServiceOptions) {
  const { sql, jobs } = options
  const datasets = createDatasetsRepository(sql)
  // Used once the process listens for changes (resources.ts hands it to db/listener.ts).
  const metadata = new MetadataCache()
  const events = new DatasetEvents({ read: async (id) => await eventState(id), maxStreams: options.eventStreams, log: options.log })
  const memoryBudget = SYNC_UPLOADS_IN_MEMORY * options.syncMaxBytes
  let bytesInMemory = 0
  // The scans beside a rows page (facets, exact counts) each run on a reserved connection, so that
  // no page is pipelined behind one, and all of them together on at most half the pool, so that
  // pages always find connections however many facets are asked for. Past their slot they wait
  // (first come, first served), within their own deadline.
  const sideScans = createSlots(Math.max(1, Math.floor(options.poolMax / 2)), options.poolWaitMs)
  // Exact totals, and the selections whose default count was late lately (their next pages go to
  // the estimate at once, not after holding a connection for COUNT_TIMEOUT_MS again).
  const totals = new ViewCache<{ total: number } | { lateUntil: number }>({ maxBytes: 4 * 1_048_576 })
  // A facet's values may be long texts: each kept by its size (UTF-16 in memory).
  const facetsSeen = new ViewCache<Facet>({ maxBytes: 32 * 1_048_576, sizeOf: (facet) => 2 * JSON.stringify(facet).length })

  /** `work` on a connection of its own, within a side-scan slot; both given back when it ends. */
  const onSideConnection = async <T>(signal: AbortSignal, work: (db: Sql) => Promise<T>): Promise<T> => {
    using slot = await sideScans.take(signal)
    await using connection = await reserveConnection(sql, signal)
    return await work(connection)
  }

  const notFound = (id: number): Problem => new Problem('not-found', `There is no data set ${id}.`)

  /**
   * The ownership rule of every write: a data set is written by the key that created it or by an
   * admin key; one without an owner (the demo data set) by admin keys only. 404 before 403: reads
   * are public, so whether a data set exists is no secret.
   */
  const authorize = <T extends WriteTarget>(id: number, target: T | undefined, writer: Writer, what: string): T => {
    if (target === undefined) throw notFound(id)
    if (writer.isAdmin || (target.createdBy !== null && target.createdBy === writer.keyId)) return target
    throw new Problem('forbidden', target.createdBy === null
      ? `Data set ${id} has no owner (it is the demo data set): only an admin key (\`data-api keys create --admin\`) may ${what} it.`
      : `Data set ${id} belongs to the API key that created it (key ${target.createdBy}); API key ${writer.keyId} may not ${what} it. Only its owner or an admin key (\`data-api keys create --admin\`) may.`)
  }

  const mustBeReady = (id: number, target: WriteTarget): void => {
    if (target.status !== 'ready') throw new Problem('conflict', `Data set ${id} is ${target.status === 'importing' ? 'still importing' : 'failed'}; its rows and columns can be changed once its status is "ready".`)
  }

  /** The first row (by row number) whose value of `column` is no value of type `to` by the codec; undefined when all convert. */
  const firstUnconvertible = async (tx: TransactionSql, id: number, column: DatasetColumn, to: ColumnType): Promise<{ row: number, value: string } | undefined> => {
    // A widening (integer → numeric, date → timestamp, anything → text) converts every value.
    if (widen(column.type, to) === to) return undefined
    const table = rowsTable(id)
    const c = table.column(column.position)
    const cursor = tx.unsafe<Array<{ _row: number, value: string }>>(`select _row, (${table.csvField(column)})::text as value from ${table.name} where ${c} is not null order by _row`).cursor(5_000)
    for await (const batch of cursor as AsyncIterable<Array<{ _row: number, value: string }>>) {
      const failed = batch.find((row) => literal(to, row.value) === undefined)
      if (failed !== undefined) return { row: Number(failed._row), value: failed.value }
    }
    return undefined
  }

  const detailOf = (dataset: Dataset, columns: DatasetColumn[], stats?: { stats: { columns: DatasetDetail['stats']['columns'] }, computed_at: Date }, write?: DatasetWrite): DatasetDetail => ({
    dataset,
    schema: { columns: columns.map((column) => column.name), fields: columns.map(({ name, type, nullable }) => ({ name, type, nullable })) },
    stats: { count: dataset.rows, computed_at: stats?.computed_at ?? null, columns: stats?.stats.columns ?? {} },
    ...(write !== undefined && { write }),
  })

  /** A ready data set and its columns (kept in memory while unchanged); 404 when missing, 409 while importing or failed. */
  const readable = async (id: number, signal: AbortSignal): Promise<DatasetMetadata> => {
    const found = await metadata.get(id, async () => {
      const { values: { dataset, columns } } = await gather({
        dataset: async (branch) => await datasets.find(id, branch),
        columns: async (branch) => await datasets.columns(id, branch),
      }, { signal })
      return dataset === undefined ? undefined : { dataset, columns }
    })
    if (found === undefined) throw notFound(id)
    const { dataset } = found
    if (dataset.status === 'importing') throw new Problem('conflict', `Data set ${id} is still importing (${dataset.rows} rows so far); its rows are readable once its status is "ready".`)
    if (dataset.status === 'failed') throw new Problem('conflict', `Data set ${id} failed to import: ${dataset.error?.detail ?? 'unknown reason'}`)
    return found
  }

  /**
   * `read` on a ready data set. Its table gone means the data set was deleted after its metadata
   * was read (by another process, its announcement still on the way): read again, to answer 404.
   */
  const onReadable = async <T>(id: number, signal: AbortSignal, read: (found: DatasetMetadata) => Promise<T>): Promise<T> => {
    const found = await readable(id, signal)
    try {
      return await read(found)
    } catch (error) {
      const code = (error as { code?: unknown }).code
      if (typeof code === 'string' && STALE_COLUMN_CODES.has(code)) {
        // Read again on the columns as they are now, once: a write committed between the
        // metadata and the query (a widened or added column, a replace).
        metadata.forget(id)
        const fresh = await readable(id, signal)
        if (new Date(fresh.dataset.updated_at).getTime() !== new Date(found.dataset.updated_at).getTime()) return await read(fresh)
        throw error
      }
      if (code !== UNDEFINED_TABLE) throw error
      metadata.forget(id)
      await readable(id, signal)
      throw error
    }
  }

  /**
   * A whole import inside the caller's transaction: the ready data set (its statistics job
   * enqueued). A compressed upload is decompressed here, as the rows are read: what is held in
   * memory before is its compressed size, and DATASET_MAX_BYTES counts the decompressed bytes.
   */
  const importInto = async (tx: TransactionSql, dataset: NewDataset, source: DatasetSource, file: FileToImport): Promise<{ dataset: Dataset, columns: DatasetColumn[] }> => {
    const { format } = file
    await tx`set local statement_timeout to 0`
    const created = await datasets.insert(tx, dataset, { source, format, options: file.options })
    const counted = countBytes(decompressed(file.input, file.compression), options.maxBytes)
    const table = rowsTable(created.id)
    const result = await importRows(tx, table, rowSource(format, counted, file.charset, file.options), { types: file.options.types })
    if (dataset.key !== undefined) await enforceKey(tx, table, result.columns, dataset.key, result.locationOf)
    await tx.unsafe(table.createViewSql(result.columns.map((column) => column.name)))
    const ready = await datasets.finishImport(tx, created.id, null, { ...result, format, bytes: counted.bytes })
    await jobs.enqueue(tx, 'compute_dataset_stats', { dataset_id: created.id })
    return { dataset: ready, columns: result.columns }
  }

  /**
   * Stores a large upload in the database, in pieces each written on its own (so any worker on
   * any machine can import it, and a slow client holds no connection); the caller then names it in
   * the transaction that enqueues its job (and removes the pieces should that fail). The upload is
   * decompressed and decoded as it arrives, so a gzip bomb, a corrupt gzip stream and invalid text
   * are refused now, and the stored pieces are UTF-8 (a workbook's: its bytes, decompressed).
   */
  const storeUpload = async (file: Omit<FileToImport, 'options'>): Promise<{ uploadId: string, bytes: number }> => {
    const { format } = file
    await datasets.sweepPieces(2 * options.uploadTimeoutMs)
    const uploadId = randomUUID()
    const counted = countBytes(decompressed(file.input, file.compression), options.maxBytes)
    let seq = 0
    let pieces: Buffer[] = []
    let size = 0
    // One piece is written while the next arrives; the one before must be in first.
    let storing: Promise<void> = Promise.resolve()
    const store = async (): Promise<void> => {
      await storing
      if (size === 0) return
      storing = datasets.storePiece(uploadId, seq++, Buffer.concat(pieces))
      storing.catch(() => {}) // awaited by the next store(); observed now, should the upload break off first
      pieces = []
      size = 0
    }
    try {
      const contents: AsyncIterable<Buffer | string> = format === 'xlsx' ? counted : decodeText(counted, file.charset)
      for await (const content of contents) {
        const piece = Buffer.from(content)
        pieces.push(piece)
        size += piece.length
        if (size >= PIECE_BYTES) await store()
      }
      await store()
      await storing
      return { uploadId, bytes: counted.bytes }
    } catch (error) {
      await storing.catch(() => {}) // a piece still being written would land after the delete
      // Pieces that cannot be removed now (the database is down, say) go with the next sweep.
      await datasets.deletePieces(uploadId).catch(() => {})
      throw error
    }
  }

  /** A stored upload named in `work`'s transaction; its pieces go when that fails. */
  const withStoredUpload = async <T>(file: Omit<FileToImport, 'options'>, work: (stored: { uploadId: string, bytes: number }) => Promise<T>): Promise<T> => {
    const stored = await storeUpload(file)
    try {
      return await work(stored)
    } catch (error) {
      await datasets.deletePieces(stored.uploadId).catch(() => {})
      throw error
    }
  }

  /**
   * Stores a large upload, then creates the data set and its import job in one transaction: 202
   * now, rows later.
   */
  const spool = async (dataset: NewDataset, file: FileToImport): Promise<Dataset> =>
    await withStoredUpload(file, async ({ uploadId, bytes }) => await sql.begin(async (tx) => {
      const created = await datasets.insert(tx, dataset, { source: 'upload', format: file.format, uploadId, bytes, options: file.options })
      await jobs.enqueue(tx, 'import_dataset', { dataset_id: created.id })
      return created
    }))

  /**
   * An append or a replace: written during the request (200) when its Content-Length is at most
   * syncMaxBytes and it fits the memory budget, else stored and written by a job (202, the write
   * `queued` on the data set). Refused before its body is read when the data set cannot take it.
   */
  const write = async (id: number, kind: WriteKind, upload: FileUpload, append: AppendOptions, writer: Writer): Promise<DatasetDetail> => {
    // The owner first (it never changes), so that no one else's body is read or stored.
    const before = writable(authorize(id, await datasets.findOwned(id), writer, kind === 'append' ? 'append to' : 'replace'), id)
    if (kind === 'append') checkOnConflict(before, append.onConflict)
    const how = { kind, format: upload.format, onConflict: append.onConflict, strict: append.strict, apiKeyId: writer.keyId, options: upload.options }
    const length = upload.contentLength
    if (length === undefined || length > options.syncMaxBytes || bytesInMemory + length > memoryBudget) {
      const queued = await withStoredUpload(upload, async ({ uploadId }) => await sql.begin(async (tx) => {
        const written = await datasets.insertWrite(tx, id, { ...how, uploadId })
        await jobs.enqueue(tx, 'write_dataset', { write_id: written.id })
        return written
      }))
      return detailOf(writable(await datasets.find(id), id), await datasets.columns(id), undefined, queued)
    }
    bytesInMemory += length
    try {
      const whole = await readWhole(upload.input, options.maxBytes)
      const done = await sql.begin(async (tx) => {
        await tx.unsafe(`set local lock_timeout to '${SYNC_WRITE_LOCK_TIMEOUT}'`)
        const result = await writeRows(tx, id, kind, upload.format, decompressed(whole, upload.compression), upload.charset, append, { apiKeyId: writer.keyId, options: upload.options })
        return { ...result, write: await datasets.insertWrite(tx, id, { ...how, counts: result.counts }) }
      })
      metadata.forget(id)
      return detailOf(done.dataset, done.columns, undefined, done.write)
    } finally {
      bytesInMemory -= length
    }
  }

  /**
   * The rows of a body written to data set `id` in the caller's transaction (writes.ts), read as
   * the client asked, and the write's entry in the history, by the key that sent it.
   */
  const writeRows = async (tx: TransactionSql, id: number, kind: WriteKind, format: Format, input: AsyncIterable<Buffer>, charset: string, append: AppendOptions, how: WriteHow): Promise<WriteResult> => {
    const counted = countBytes(input, options.maxBytes)
    const rows = rowSource(format, counted, charset, how.options)
    const deps = { datasets, jobs }
    const reading = { types: how.options.types, onProgress: how.onProgress }
    const result = kind === 'append'
      ? await appendInto(tx, deps, id, rows, append, reading)
      : await replaceWith(tx, deps, id, rows, { format, bytes: () => counted.bytes }, reading)
    const { inserted, updated, ignored } = result.counts
    await datasets.recordChange(tx, {
      datasetId: id,
      kind: kind === 'replace' ? 'replace' : append.onConflict === undefined ? 'append' : 'upsert',
      apiKeyId: how.apiKeyId,
      rows: inserted + updated,
      details: {
        source: 'upload',
        format,
        bytes: counted.bytes,
        ...(kind === 'replace'
          ? { columns: result.columns.map(({ name, type }) => ({ name, type })) }
          : { inserted, updated, ignored, ...(append.onConflict !== undefined && { on_conflict: append.onConflict }), ...(result.added.length > 0 && { columns_added: result.added }) }),
      },
    })
    return result
  }

  /**
   * The pieces of a stored upload, one query each, as a stream of bytes: the next is read while
   * one is imported. A piece goes on in slices the size of a network read, so that the rows parsed
   * from one die young (a whole piece's rows would outlive the young generation and swell the heap).
   */
  async function * storedUpload (uploadId: string): AsyncGenerator<Buffer> {
    let next = datasets.readPiece(uploadId, 0)
    for (let seq = 1; ; seq++) {
      const piece = await next
      if (piece === undefined) return
      next = datasets.readPiece(uploadId, seq)
      next.catch(() => {}) // awaited at the next turn; observed now, should the import stop first
      for (let at = 0; at < piece.length; at += SLICE_BYTES) yield piece.subarray(at, at + SLICE_BYTES)
    }
  }

  /**
   * A URL import's response, through the SSRF guard; a 4xx answer or an unknown format is final.
   * Compressed when it says so (Content-Encoding gzip, or gzip as its type) or its path ends in .gz.
   */
  const fetchImport = async (url: string, named: Format | null, signal: AbortSignal): Promise<{ input: Readable, format: Format, charset: string, compression?: Compression }> => {
    const checked = await options.guard.check(url)
    const timeout = options.fetchTimeoutMs
    const dispatcher = options.guard.agent({ connectTimeout: timeout, headersTimeout: timeout, bodyTimeout: timeout })
    const response = await httpRequest(checked, {
      dispatcher,
      signal,
      headers: { 'accept': 'text/csv, text/tab-separated-values, application/x-ndjson, application/json;q=0.9, */*;q=0.5', 'accept-encoding': 'gzip, identity' },
    })
    response.body.once('close', () => { void dispatcher.close() })
    const refuse = async (error: Error): Promise<never> => {
      await response.body.dump()
      throw error
    }
    if (response.statusCode >= 400 && response.statusCode < 500) return await refuse(new InvalidDataError(`The URL answered ${response.statusCode}.`))
    if (response.statusCode !== 200) return await refuse(new Error(`import URL answered ${response.statusCode}`)) // retried
    const contentType = response.headers['content-type']
    const type = typeof contentType === 'string' ? contentType : undefined
    const encoding = response.headers['content-encoding']
    let format: Format | undefined
    let charset: string
    let compression: Compression | undefined
    try {
      format = named ?? formatOf(type, checked.pathname)
      charset = charsetOf(type)
      compression = contentEncodingOf(typeof encoding === 'string' ? encoding : undefined) ?? (isGzipFile(type, checked.pathname) ? 'gzip' : undefined)
    } catch (error) {
      return await refuse(new InvalidDataError(`The URL's answer: ${(error as Error).message}`))
    }
    if (format === undefined) return await refuse(new InvalidDataError('The format of the URL\'s data is unknown: give `format` (csv, tsv, json, ndjson or xlsx) with the import.'))
    return { input: response.body, format, charset, compression }
  }

  /** A data set's state as its event streams show it (events.ts): its progress and its latest write. */
  const eventState = async (id: number): Promise<DatasetState | undefined> => {
    const [dataset, write] = await Promise.all([datasets.find(id), datasets.latestWrite(id)])
    if (dataset === undefined) return undefined
    const { status, rows, error, updated_at: updatedAt } = dataset
    return { dataset: { id, status, rows, error, updated_at: updatedAt }, write: write ?? null }
  }

  /** The lesson's {dataset, schema, stats}: three reads at once, one Server-Timing entry each. */
  const detail = async (id: number, signal: AbortSignal, timing?: ServerTiming): Promise<DatasetDetail> => {
    const { values } = await gather({
      // The data set and its latest write (an append or replace, followed after a 202) are one part.
      dataset: async (branch) => {
        const [dataset, write] = await Promise.all([datasets.find(id, branch), datasets.latestWrite(id, branch)])
        if (dataset === undefined) throw notFound(id)
        return { dataset, write }
      },
      schema: async (branch) => await datasets.columns(id, branch),
      stats: async (branch) => await datasets.stats(id, branch),
    }, { signal, timing })
    return detailOf(values.dataset.dataset, values.schema, values.stats, values.dataset.write)
  }

  return {
    detail,
    eventState,

    /** POST /datasets/{id}/rows: the rows of the body appended, or upserted by the key (writes.ts). */
    async append (id: number, upload: FileUpload, append: AppendOptions, writer: Writer): Promise<DatasetDetail> {
      return await write(id, 'append', upload, append, writer)
    },

    /** PUT /datasets/{id}/data: every row replaced by the body's, at once for readers (writes.ts). */
    async replace (id: number, upload: FileUpload, writer: Writer): Promise<DatasetDetail> {
      return await write(id, 'replace', upload, { strict: false }, writer)
    },

    /** PUT /datasets/{id}/key: declares the key (checked against the rows, then a unique index), or drops it. */
    async setKey (id: number, key: string[] | null, writer: Writer): Promise<DatasetDetail> {
      authorize(id, await datasets.findOwned(id), writer, 'change the key of')
      const dataset = await sql.begin(async (tx) => {
        await tx.unsafe(`set local lock_timeout to '${SYNC_WRITE_LOCK_TIMEOUT}'`)
        const changed = await changeKey(tx, { datasets, jobs }, id, key)
        await datasets.recordChange(tx, { datasetId: id, kind: 'patch', apiKeyId: writer.keyId, rows: null, details: { key } })
        return changed
      })
      metadata.forget(id)
      return detailOf(dataset, await datasets.columns(id))
    },

    /**
     * The write job of a large append or replace. As with imports, data problems are final (the
     * write is marked failed with the reason and where; the data set is unchanged), anything else
     * is thrown for the queue to retry, and its dead letter calls `writeGaveUp`.
     */
    async runWrite (writeId: number): Promise<void> {
      const source = await datasets.writeSource(writeId)
      if (source === undefined || (source.status !== 'queued' && source.status !== 'running') || source.upload_id === null) return
      await datasets.markWriteRunning(writeId)
      try {
        await withoutStatementTimeout(sql, async (tx) => {
          // One attempt at a time (an expired attempt may still run beside its retry).
          const [{ locked }] = await tx<[{ locked: boolean }]>`select pg_try_advisory_xact_lock(hashtextextended(${`dataset-write:${writeId}`}, 0)) as locked`
          if (!locked) throw new Error(`another attempt of write ${writeId} is running`)
          const append = { onConflict: source.on_conflict ?? undefined, strict: source.strict_columns }
          const result = await writeRows(tx, source.dataset_id, source.kind, source.format, storedUpload(source.upload_id!), 'utf-8', append, {
            apiKeyId: source.api_key_id === null ? null : Number(source.api_key_id),
            options: source.import_options,
            onProgress: async (rows) => { if (!await datasets.recordWriteProgress(writeId, rows)) throw new DatasetGone() },
          })
          if (await datasets.finishWrite(tx, writeId, result.counts) === undefined) throw new DatasetGone()
        })
        metadata.forget(source.dataset_id)
      } catch (error) {
        if (error instanceof DatasetGone || (await datasets.writeSource(writeId)) === undefined) return
        if (!(error instanceof Problem && error.status < 500)) throw error
        await datasets.markWriteFailed(writeId, error.message, error instanceof InvalidDataError ? error.location : {})
      }
    },

    /** The dead letter of a write job: every attempt failed or died, so the write is marked failed (the data set is unchanged). */
    async writeGaveUp (writeId: number): Promise<void> {
      await datasets.markWriteFailed(writeId, 'The write did not finish: every attempt failed or was cut short (the database kept failing, or its worker stopped); see the service log. The data set is unchanged.', {})
    },

    async list (page: { limit: number, before?: number }, signal: AbortSignal): Promise<{ datasets: Dataset[], next_cursor: string | null }> {
      const rows = await datasets.list({ limit: page.limit + 1, before: page.before }, signal)
      const found = rows.slice(0, page.limit)
      return { datasets: found, next_cursor: rows.length > page.limit ? String(found.at(-1)!.id) : null }
    },

    /**
     * A data set from an upload: imported now (201) when its Content-Length is at most
     * syncMaxBytes and it fits the memory budget, else stored and imported by a job (202); a URL
     * import is always a job.
     */
    async create (upload: Upload, naming: Naming): Promise<DatasetDetail> {
      if (upload.kind === 'url') {
        const url = await options.guard.check(upload.url)
        const dataset = { ...naming, name: naming.name ?? (url.pathname.split('/').pop() || 'import') }
        const created = await sql.begin(async (tx) => {
          const row = await datasets.insert(tx, dataset, { source: 'url', format: upload.format ?? null, sourceUrl: url.href, options: upload.options })
          await jobs.enqueue(tx, 'import_dataset', { dataset_id: row.id })
          return row
        })
        return detailOf(created, [])
      }
      const dataset = { ...naming, name: naming.name ?? 'upload' }
      const length = upload.contentLength
      if (length === undefined || length > options.syncMaxBytes || bytesInMemory + length > memoryBudget) {
        return detailOf(await spool(dataset, upload), [])
      }
      bytesInMemory += length
      try {
        const whole = await readWhole(upload.input, options.maxBytes)
        const imported = await sql.begin(async (tx) => await importInto(tx, dataset, 'upload', { ...upload, input: whole }))
        return detailOf(imported.dataset, imported.columns)
      } finally {
        bytesInMemory -= length
      }
    },

    /** Imports generated data (the demo data set) inside the caller's transaction. */
    async importSample (tx: TransactionSql, dataset: NewDataset, csv: AsyncIterable<Buffer>): Promise<Dataset> {
      return (await importInto(tx, dataset, 'sample', { format: 'csv', input: csv, charset: 'utf-8', options: {} })).dataset
    },

    /**
     * A page of rows, with its total and its facets when asked: the page, the count and each facet
     * at once (the lesson's gather), one Server-Timing entry each (`rows`, `count`, `facet1`… with
     * the column as `desc`). A facet past FACET_TIMEOUT_MS is cancelled and answered
     * `{timed_out: true}`; by default a count past COUNT_TIMEOUT_MS is cancelled and estimated.
     * The page failing, or the client leaving, cancels every part in PostgreSQL.
     */
    async rows (id: number, query: QueryString, signal: AbortSignal, timing?: ServerTiming): Promise<RowsPage> {
      return await onReadable(id, signal, async ({ dataset, columns }) => {
        const view = new DataQuery(columns, query, ROWS_PARAMETERS)
        // Every 400 before any query: the facets, the count, the filters.
        const facets = readFacets(view)
        const mode = view.one('count')
        const table = rowsTable(id)
        const where = view.where(sql, table)
        const measure = async <T>(name: string, work: () => Promise<T>, description?: string): Promise<T> =>
          timing === undefined ? await work() : await timing.measure(name, work, description)
        /** A missed deadline, or no connection in time: what a part that may give up (`timed_out`, an estimate) gives up on. */
        const isLate = (error: unknown): boolean => ['timeout', 'database-busy'].includes(asProblem(error)?.code ?? '')

        const total = async (branch: AbortSignal): Promise<Pick<RowsPage, 'total' | 'total_is_estimate'>> => {
          if (mode === 'none') return {}
          if (!view.isFiltered) return { total: dataset.rows, total_is_estimate: false }
          const estimate = async (): Promise<Pick<RowsPage, 'total' | 'total_is_estimate'>> => ({ total: await estimateRows(sql, table, where, branch), total_is_estimate: true })
          if (mode === 'estimated') return await measure('count', estimate)
          const key = ViewCache.key(dataset, view, 'count')
          const remembered = totals.get(key)
          if (remembered !== undefined && 'total' in remembered) return await measure('count', async () => ({ total: remembered.total, total_is_estimate: false }), 'cached')
          const exact = async (signal: AbortSignal): Promise<number> => {
            const found = await onSideConnection(signal, async (db) => await countRows(db, table, where, signal))
            totals.set(key, { total: found })
            return found
          }
          if (mode === 'exact') return { total: await measure('count', async () => await exact(branch)), total_is_estimate: false }
          if (remembered !== undefined && remembered.lateUntil > Date.now()) return await measure('count', estimate, 'late-recently')
          return await measure('count', async () => {
            try {
              return { total: await withDeadline(options.countTimeoutMs, branch, exact), total_is_estimate: false }
            } catch (error) {
              if (branch.aborted || !isLate(error)) throw error
              totals.set(key, { lateUntil: Date.now() + LATE_COUNT_MS })
              return await estimate()
            }
          })
        }

        const facet = async (request: typeof facets[number], branch: AbortSignal): Promise<Facet | { timed_out: true }> => {
          const key = ViewCache.key(dataset, view, ['facet', request.column.position, request.by ?? null, request.size])
          const seen = facetsSeen.get(key)
          if (seen !== undefined) return seen
          try {
            const computed = await withDeadline(options.facetTimeoutMs, branch, async (signal) => await onSideConnection(signal, async (db) => await computeFacet(db, table, where, request, signal)))
            facetsSeen.set(key, computed)
            return computed
          } catch (error) {
            if (branch.aborted || !isLate(error)) throw error
            return { timed_out: true }
          }
        }

        const { values } = await gather({
          rows: async (branch) => await measure('rows', async () => await queryRows(sql, id, view, { signal: branch, maxBytes: options.pageMaxBytes })),
          total,
          facets: async (branch) => {
            // Every facet settles before this part does (a failing one aborts the others through gather).
            const settled = await Promise.allSettled(facets.map(async (request, index) => await measure(`facet${index + 1}`, async () => await facet(request, branch), request.column.name)))
            const failed = settled.find((result) => result.status === 'rejected')
            if (failed !== undefined) throw failed.reason
            return settled.map((result) => (result as PromiseFulfilledResult<Facet | { timed_out: true }>).value)
          },
        }, { signal })
        const page: RowsPage = { ...values.rows, ...values.total }
        if (facets.length > 0) {
          const byColumn = Object.create(null) as Record<string, Facet | { timed_out: true }>
          facets.forEach((request, index) => { byColumn[request.column.name] = values.facets[index]! })
          page.facets = byColumn
        }
        return page
      })
    },

    /** Groups of the filtered rows and their metrics, a page of them (aggregate.ts). */
    async aggregate (id: number, query: QueryString, signal: AbortSignal): Promise<AggregatePage> {
      return await onReadable(id, signal, async ({ columns }) => await queryAggregate(sql, id, new DataQuery(columns, query, AGGREGATE_PARAMETERS), { signal, queryTimeoutMs: options.queryTimeoutMs }))
    },

    async export (id: number, query: QueryString, signal: AbortSignal): Promise<{ dataset: Dataset, format: ExportFormat, rows: Readable }> {
      return await onReadable(id, signal, async ({ dataset, columns }) => ({ dataset, ...await exportRows(sql, dataset, new DataQuery(columns, query, EXPORT_PARAMETERS), signal) }))
    },

    /**
     * Deletes a data set and its table at once, whatever is running on it: an import notices at
     * its next progress report and rolls back; queries on its table (reads, the statistics job)
     * are cancelled so that the table can go (SQL queries on its view too: `drop` drops both).
     * False when there was no such data set.
     */
    async remove (id: number, writer: Writer): Promise<boolean> {
      const table = rowsTable(id)
      const removed = await sql.begin(async (tx) => {
        await tx.unsafe(`set local lock_timeout to '${DELETE_LOCK_TIMEOUT}'`)
        const target = await datasets.lockForWrite(tx, id)
        if (target === undefined) return false
        authorize(id, target, writer, 'delete')
        if (await datasets.delete(tx, id) === undefined) return false
        await tx`
          select pg_cancel_backend(pid) from pg_locks
          where relation = to_regclass(${table.name})::oid and pid <> pg_backend_pid() and granted`
        await table.drop(tx)
        return true
      })
      metadata.forget(id) // now, not when the announcement arrives: this process's next read sees it
      return removed
    },

    /**
     * Deletes the rows the filters (and `_q`) select, exactly the rows GET /rows would list, in one
     * transaction with the data set's new row count and version (updated_at), its history entry
     * and the statistics job. A filter is required: deleting every row is not done by accident.
     * A delete that selects no row changes nothing and is not recorded.
     */
    async deleteRows (id: number, query: QueryString, writer: Writer): Promise<{ deleted: number }> {
      const table = rowsTable(id)
      const deleted = await sql.begin(async (tx) => {
        await tx.unsafe(`set local lock_timeout to '${DELETE_LOCK_TIMEOUT}'`)
        const target = authorize(id, await datasets.lockForWrite(tx, id), writer, 'delete rows of')
        mustBeReady(id, target)
        const view = new DataQuery(await datasets.columnsIn(tx, id), query, DELETE_ROWS_PARAMETERS)
        if (!view.isFiltered) {
          throw new Problem('validation-error', 'Name the rows to delete with at least one filter (`column__op=value`) or `_q`, as on GET /rows; to delete every row, delete the data set.', {
            extra: { errors: [{ in: 'querystring', pointer: '/', detail: 'a filter is required' }] },
          })
        }
        const count = await table.deleteWhere(tx, view.where(sql, table))
        if (count === 0) return 0
        await datasets.rowsChanged(tx, id, -count)
        await datasets.recordChange(tx, {
          datasetId: id,
          kind: 'delete_rows',
          apiKeyId: writer.keyId,
          rows: count,
          details: { filters: view.filters.map(({ parameter, value }) => [parameter, value]), q: view.texts('q')?.[0] ?? null },
        })
        await jobs.enqueue(tx, 'compute_dataset_stats', { dataset_id: id })
        return count
      })
      metadata.forget(id)
      return { deleted }
    },

    /**
     * Renames the data set, edits its description, renames columns and changes their types, all in
     * one transaction: the names (unique after the change), the table's column types, the view for
     * SQL queries (dropped and made again with the new names and types) and the history entry. A
     * value that does not convert to its new type is a 400 naming its row, and nothing changes.
     */
    async patch (id: number, patch: DatasetPatch, writer: Writer, signal: AbortSignal): Promise<DatasetDetail> {
      const table = rowsTable(id)
      const pointer = (name: string, field?: string): string => `/columns/${name.replaceAll('~', '~0').replaceAll('/', '~1')}${field === undefined ? '' : `/${field}`}`
      const invalid = (detail: string, at: string, extra: Record<string, unknown> = {}): Problem =>
        new Problem('validation-error', detail, { extra: { errors: [{ in: 'body', pointer: at, detail }], ...extra } })
      await sql.begin(async (tx) => {
        await tx.unsafe(`set local lock_timeout to '${DELETE_LOCK_TIMEOUT}'`)
        const target = authorize(id, await datasets.lockForWrite(tx, id), writer, 'change')
        const asked = Object.entries(patch.columns ?? {})
        const details: Record<string, unknown> = {}
        if (patch.name !== undefined) details.name = patch.name
        if (patch.description !== undefined) details.description = patch.description
        let retyped = 0
        if (asked.length > 0) {
          mustBeReady(id, target)
          const columns = await datasets.columnsIn(tx, id)
          const next = columns.map((column) => ({ ...column }))
          for (const [old, change] of asked) {
            const column = columns.find((candidate) => candidate.name === old)
            if (column === undefined) throw invalid(`columns: there is no column "${old.slice(0, 200)}" (columns: ${columns.map((candidate) => candidate.name).slice(0, 20).join(', ')})`, pointer(old))
            if (change.name !== undefined && literal('text', change.name) === undefined) throw invalid(`columns.${old.slice(0, 200)}.name: a name may not hold a NUL character (U+0000) or a lone surrogate`, pointer(old, 'name'))
            next[column.position] = { ...column, name: change.name ?? column.name, type: change.type ?? column.type }
          }
          const taken = new Map<string, string>()
          for (const [index, column] of next.entries()) {
            const before = taken.get(column.name)
            if (before !== undefined) throw invalid(`columns: two columns would be named "${column.name.slice(0, 200)}" ("${before.slice(0, 200)}" and "${columns[index]!.name.slice(0, 200)}"); column names stay unique`, pointer(columns[index]!.name, 'name'))
            taken.set(column.name, columns[index]!.name)
          }
          const changed = next.filter((column, index) => column.name !== columns[index]!.name || column.type !== columns[index]!.type)
          const changes: Record<string, unknown> = {}
          for (const column of changed) {
            const old = columns[column.position]!
            changes[old.name] = { ...(column.name !== old.name && { name: column.name }), ...(column.type !== old.type && { type: column.type, from_type: old.type }) }
          }
          details.columns = changes
          if (changed.length > 0) {
            const types = changed.filter((column) => column.type !== columns[column.position]!.type)
            retyped = types.length
            // The view pins its columns' names and types: it goes first, and comes back with the new ones.
            await tx.unsafe(table.dropViewSql)
            if (types.length > 0) {
              // A type change reads every value and rewrites the table: no statement timeout, as an import.
              await tx`set local statement_timeout to 0`
              if (types.some((column) => column.type === 'text' || columns[column.position]!.type === 'text')) await table.dropSearchIndexes(tx)
              for (const column of types) {
                const old = columns[column.position]!
                const failed = await firstUnconvertible(tx, id, old, column.type)
                if (failed !== undefined) {
                  throw invalid(`columns.${old.name.slice(0, 200)}.type: row ${failed.row} has the value "${failed.value.slice(0, 200)}", which is not a ${column.type}; nothing was changed`, pointer(old.name, 'type'), { row: failed.row, value: failed.value.slice(0, 1000), column: old.name })
                }
                await table.retypeColumn(tx, old, column.type)
              }
            }
            await datasets.updateColumns(tx, id, changed)
            await tx.unsafe(table.createViewSql(next.map((column) => column.name)))
            await jobs.enqueue(tx, 'compute_dataset_stats', { dataset_id: id })
          }
        }
        await datasets.rename(tx, id, { name: patch.name, description: patch.description })
        await datasets.recordChange(tx, { datasetId: id, kind: 'patch', apiKeyId: writer.keyId, rows: retyped > 0 ? target.rows : null, details })
      })
      metadata.forget(id)
      return await detail(id, signal)
    },

    /** A page of the data set's history, newest first; 404 when there is no such data set. */
    async changes (id: number, page: { limit: number, before?: number }, signal: AbortSignal): Promise<{ changes: DatasetChange[], next_cursor: string | null }> {
      const { values } = await gather({
        dataset: async (branch) => await datasets.find(id, branch),
        changes: async (branch) => await datasets.changes(id, { limit: page.limit + 1, before: page.before }, branch),
      }, { signal })
      if (values.dataset === undefined) throw notFound(id)
      const found = values.changes.slice(0, page.limit)
      return { changes: found, next_cursor: values.changes.length > page.limit ? String(found.at(-1)!.id) : null }
    },

    /**
     * The import job. Data problems (malformed rows, a refused or missing URL) are final: the data
     * set is marked failed with the reason and where. Anything else (database or network down) is
     * thrown, so the queue retries; when no retry is left (or the last attempt died with its
     * process), the queue's dead letter calls `importGaveUp`.
     */
    async runImport (id: number, { signal }: { signal: AbortSignal }): Promise<void> {
      const source = await datasets.importSource(id)
      if (source?.status !== 'importing') return // deleted, or a repeated job of a finished import
      try {
        // A stored upload is decompressed and UTF-8 already (spool).
        const { input, format, charset, compression } = source.source === 'url'
          ? await fetchImport(source.source_url!, source.format, signal)
          : { input: storedUpload(source.upload_id!), format: source.format ?? 'csv', charset: 'utf-8', compression: undefined }
        const readAs = source.import_options
        await withoutStatementTimeout(sql, async (tx) => {
          // One attempt at a time (an expired attempt may still run beside its retry).
          const [{ locked }] = await tx<[{ locked: boolean }]>`select pg_try_advisory_xact_lock(hashtextextended(${`dataset-import:${id}`}, 0)) as locked`
          if (!locked) throw new Error(`another attempt of the import of data set ${id} is running`)
          const counted = countBytes(decompressed(input, compression), options.maxBytes)
          const table = rowsTable(id)
          const result = await importRows(tx, table, rowSource(format, counted, charset, readAs), {
            types: readAs.types,
            // Outside the transaction, so that readers see the count while the import runs.
            onProgress: async (rows) => { if (!await datasets.recordProgress(id, rows)) throw new DatasetGone() },
          })
          if (source.key !== null) await enforceKey(tx, table, result.columns, source.key, result.locationOf)
          const importing = await datasets.lockImporting(tx, id)
          if (importing === undefined) throw new DatasetGone()
          // The view for SQL queries, now that its columns' types are final (sql-queries.ts).
          await tx.unsafe(table.createViewSql(result.columns.map((column) => column.name)))
          // A stored upload's size is the size it was sent at (the pieces are its UTF-8 text).
          await datasets.finishImport(tx, id, importing.uploadId, { ...result, format, bytes: source.source === 'url' ? counted.bytes : undefined })
          await jobs.enqueue(tx, 'compute_dataset_stats', { dataset_id: id })
        })
      } catch (error) {
        if (error instanceof DatasetGone || (await datasets.importSource(id)) === undefined) return
        if (!(error instanceof Problem && error.status < 500)) throw error
        await datasets.markFailed(id, error.message, error instanceof InvalidDataError ? error.location : {})
      }
    },

    /** The dead letter of an import: every attempt failed or died, so the data set is marked failed. */
    async importGaveUp (id: number): Promise<void> {
      await datasets.markFailed(id, 'The import did not finish: every attempt failed or was cut short (the database or the URL kept failing, or its worker stopped); see the service log.', {})
    },

    /** The statistics job; nothing to do once the data set is gone (a DELETE cancels it). */
    async computeStats (id: number): Promise<void> {
      try {
        await computeDatasetStats(sql, datasets, id)
      } catch (error) {
        if (await datasets.find(id) !== undefined) throw error
      }
    },

    countsByStatus: async (signal: AbortSignal) => await datasets.countsByStatus(signal),

    /** The event streams of GET /datasets/{id}/events; `close` ends them (before the server closes). */
    events,

    /**
     * What hears of data set changes (db/listener.ts on DATASET_CHANGED): the metadata cache
     * (nothing is kept until it listens) and the event streams.
     */
    changeHandlers: fanOut(metadata, events),
  }
}

/** Handlers that pass every call on to each of `handlers`. */
function fanOut (...handlers: ListenHandlers[]): ListenHandlers {
  return {
    notify: (payload) => { for (const handler of handlers) handler.notify(payload) },
    listening: () => { for (const handler of handlers) handler.listening() },
    lost: () => { for (const handler of handlers) handler.lost() },
  }
}

/** The service as configured: the API's routes and the job worker each make theirs with this. */
export function createConfiguredDatasetService (config: Config, deps: { sql: Sql, jobs: JobQueue, log: Logger }): DatasetService {
  return createDatasetService({
    ...deps,
    eventStreams: config.datasets.eventStreams,
    guard: createSsrfGuard({ allow: config.ssrfAllowlist }),
    syncMaxBytes: config.datasets.syncMaxBytes,
    maxBytes: config.datasets.maxBytes,
    pageMaxBytes: config.datasets.pageMaxBytes,
    fetchTimeoutMs: config.datasets.fetchTimeoutMs,
    uploadTimeoutMs: config.http.requestTimeoutMs,
    queryTimeoutMs: config.database.queryTimeoutMs,
    facetTimeoutMs: config.datasets.facetTimeoutMs,
    countTimeoutMs: config.datasets.countTimeoutMs,
    poolMax: config.database.poolMax,
    poolWaitMs: config.database.poolWaitMs,
  })
}

/** The bytes of an upload as they pass, counted; more than `maxBytes` is a 413. */
function countBytes (input: AsyncIterable<Buffer>, maxBytes: number): AsyncIterable<Buffer> & { readonly bytes: number } {
  let bytes = 0
  return {
    get bytes () { return bytes },
    async * [Symbol.asyncIterator] () {
      for await (const chunk of input) {
        bytes += chunk.length
        if (bytes > maxBytes) throw new Problem('payload-too-large', `The upload is larger than ${maxBytes} bytes (DATASET_MAX_BYTES).`)
        yield chunk
      }
    },
  }
}

/** A small upload read whole, before any database work. */
async function readWhole (input: AsyncIterable<Buffer>, maxBytes: number): Promise<AsyncIterable<Buffer>> {
  const chunks: Buffer[] = []
  for await (const chunk of countBytes(input, maxBytes)) chunks.push(chunk)
  return (async function * () { yield * chunks })()
}
