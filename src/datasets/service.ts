// The life of a data set: created from an upload (imported at once, or spooled into the database
// and imported by a job when large), from a URL (always a job), read, exported, deleted.
//
// A synchronous import is one transaction: metadata, table, rows, columns and the statistics job
// commit together or not at all. An import job does the same in its own transaction, and reports
// progress (rows so far) outside it; if the data turns out malformed, the data set is marked
// failed with the reason, and its table never existed.
import { Readable } from 'node:stream'
import type { TransactionSql } from 'postgres'
import { request as httpRequest } from 'undici'
import type { Sql } from '../db/pool.ts'
import type { JobQueue } from '../jobs/queue.ts'
import { cancellable } from '../lib/concurrency.ts'
import { Problem } from '../lib/errors.ts'
import type { SsrfGuard } from '../upstream/ssrf-guard.ts'
import { importRows, physical, type Column } from './importer.ts'
import type { ColumnInfo } from './rows-query.ts'
import { rowSource, type Format } from './sources.ts'
import type { DatasetStats } from './stats.ts'

export type DatasetStatus = 'importing' | 'ready' | 'failed'

export interface DatasetRow {
  id: number
  name: string
  description: string | null
  status: DatasetStatus
  source: 'upload' | 'url' | 'sample'
  source_url: string | null
  format: Format | null
  rows: number
  bytes: number
  error: { detail: string, line?: number, item?: number } | null
  created_at: Date
  updated_at: Date
}

export interface NewDataset { name: string, description?: string, createdBy?: number }

const UPLOAD_CHUNK_BYTES = 1024 * 1024

/** Counts the bytes of an upload as they pass and refuses more than `maxBytes` (413). */
export function limitBytes (input: Readable, maxBytes: number): { stream: Readable, bytes: () => number } {
  let bytes = 0
  const stream = Readable.from((async function * () {
    for await (const chunk of input as AsyncIterable<Buffer>) {
      bytes += chunk.length
      if (bytes > maxBytes) throw new Problem('payload-too-large', `The upload is larger than ${maxBytes} bytes (DATASET_MAX_BYTES).`)
      yield chunk
    }
  })(), { objectMode: false })
  return { stream, bytes: () => bytes }
}

async function insertDataset (tx: TransactionSql, dataset: NewDataset, source: DatasetRow['source'], format: Format | null, sourceUrl?: string): Promise<DatasetRow> {
  const [row] = await tx<[DatasetRow]>`
    insert into datasets (name, description, status, source, source_url, format, created_by)
    values (${dataset.name}, ${dataset.description ?? null}, 'importing', ${source}, ${sourceUrl ?? null}, ${format}, ${dataset.createdBy ?? null})
    returning *`
  return row
}

/** Columns, status and row count of a finished import, and its statistics job: one transaction. */
async function finishImport (tx: TransactionSql, jobs: JobQueue, datasetId: number, result: { rows: number, columns: Column[] }, bytes: number): Promise<void> {
  if (result.columns.length > 0) {
    await tx`insert into dataset_columns ${tx(result.columns.map((column) => ({ dataset_id: datasetId, ...column })))}`
  }
  await tx`update datasets set status = 'ready', rows = ${result.rows}, bytes = ${bytes}, error = null, updated_at = now() where id = ${datasetId}`
  await tx`delete from dataset_uploads where dataset_id = ${datasetId}`
  await jobs.enqueue(tx, 'compute_dataset_stats', { dataset_id: datasetId })
}

/** Imports an upload now, in one transaction; returns the new data set. */
export async function importUpload (sql: Sql, jobs: JobQueue, dataset: NewDataset, format: Format, input: Readable, maxBytes: number): Promise<DatasetRow> {
  const id = await sql.begin(async (tx) => await importWithin(tx, jobs, dataset, 'upload', format, input, maxBytes))
  return (await findDataset(sql, id))!
}

/** A whole import inside the caller's transaction; returns the new data set's id. */
export async function importWithin (tx: TransactionSql, jobs: JobQueue, dataset: NewDataset, source: DatasetRow['source'], format: Format, input: Readable, maxBytes: number): Promise<number> {
  const counted = limitBytes(input, maxBytes)
  const row = await insertDataset(tx, dataset, source, format)
  const result = await importRows(tx, row.id, rowSource(format, counted.stream))
  await finishImport(tx, jobs, row.id, result, counted.bytes())
  return row.id
}

/**
 * Stores a large upload in the database (in 1 MiB pieces, so any worker on any machine can read
 * it) and enqueues its import, in one transaction: 202 now, rows later.
 */
export async function spoolUpload (sql: Sql, jobs: JobQueue, dataset: NewDataset, format: Format, input: Readable, maxBytes: number): Promise<DatasetRow> {
  const counted = limitBytes(input, maxBytes)
  return await sql.begin(async (tx) => {
    const row = await insertDataset(tx, dataset, 'upload', format)
    let seq = 0
    let pieces: Buffer[] = []
    let size = 0
    const store = async (): Promise<void> => {
      if (size === 0) return
      await tx`insert into dataset_uploads (dataset_id, seq, data) values (${row.id}, ${seq++}, ${Buffer.concat(pieces)})`
      pieces = []
      size = 0
    }
    for await (const chunk of counted.stream as AsyncIterable<Buffer>) {
      pieces.push(chunk)
      size += chunk.length
      if (size >= UPLOAD_CHUNK_BYTES) await store()
    }
    await store()
    await tx`update datasets set bytes = ${counted.bytes()} where id = ${row.id}`
    await jobs.enqueue(tx, 'import_dataset', { dataset_id: row.id })
    return { ...row, bytes: counted.bytes() }
  })
}

/** Registers an import from a URL (already vetted by the SSRF guard) and enqueues it. */
export async function enqueueUrlImport (sql: Sql, jobs: JobQueue, dataset: NewDataset, url: URL, format: Format | null): Promise<DatasetRow> {
  return await sql.begin(async (tx) => {
    const row = await insertDataset(tx, dataset, 'url', format, url.href)
    await jobs.enqueue(tx, 'import_dataset', { dataset_id: row.id })
    return row
  })
}

/**
 * Serialises an import and a deletion of one data set, until the transaction ends. One 64-bit key
 * hashed from the id: the two-key form takes 32-bit integers, which ids may outgrow.
 */
async function lockDataset (tx: TransactionSql, id: number): Promise<void> {
  await tx`select pg_advisory_xact_lock(hashtextextended(${`dataset:${id}`}, 0))`
}

/** The spooled upload, piece by piece, as a stream. */
function spooledUpload (sql: Sql, datasetId: number): Readable {
  return Readable.from((async function * () {
    for (let seq = 0; ; seq++) {
      const [piece] = await sql<[{ data: Buffer }?]>`select data from dataset_uploads where dataset_id = ${datasetId} and seq = ${seq}`
      if (piece === undefined) return
      yield piece.data
    }
  })(), { objectMode: false })
}

const FORMAT_BY_TYPE: Record<string, Format> = {
  'text/csv': 'csv',
  'application/csv': 'csv',
  'application/json': 'json',
  'application/x-ndjson': 'ndjson',
  'application/ndjson': 'ndjson',
  'application/jsonl': 'ndjson',
  'application/jsonlines': 'ndjson',
}

export function formatOf (contentType: string | undefined, path = ''): Format | undefined {
  const type = contentType?.split(';')[0]?.trim().toLowerCase()
  if (type !== undefined && FORMAT_BY_TYPE[type] !== undefined) return FORMAT_BY_TYPE[type]
  const extension = /\.(csv|json|ndjson|jsonl)$/i.exec(path)?.[1]?.toLowerCase()
  return extension === undefined ? undefined : extension === 'jsonl' ? 'ndjson' : extension as Format
}

export interface ImportJobDeps {
  sql: Sql
  jobs: JobQueue
  guard: SsrfGuard
  maxBytes: number
  fetchTimeoutMs: number
}

/**
 * The import job. Data problems (malformed rows, a refused or missing URL) are final: the data set
 * is marked failed with the reason. Anything else (database or network down) is thrown, so the
 * queue retries; the last attempt marks it failed too.
 */
export async function runImportJob (deps: ImportJobDeps, datasetId: number, { lastAttempt, signal }: { lastAttempt: boolean, signal: AbortSignal }): Promise<void> {
  const { sql } = deps
  const [dataset] = await sql<[DatasetRow?]>`select * from datasets where id = ${datasetId}`
  if (dataset?.status !== 'importing') return // deleted, or a repeated job of a finished import
  try {
    const { input, format } = dataset.source === 'url'
      ? await fetchImport(deps, dataset, signal)
      : { input: spooledUpload(sql, datasetId), format: dataset.format ?? 'csv' }
    const counted = limitBytes(input, deps.maxBytes)
    await sql.begin(async (tx) => {
      await lockDataset(tx, datasetId)
      const [still] = await tx`select 1 from datasets where id = ${datasetId} and status = 'importing'`
      if (still === undefined) return
      const result = await importRows(tx, datasetId, rowSource(format, counted.stream), {
        // Outside the transaction, so that readers see the count while the import runs.
        onProgress: async (rows) => { await sql`update datasets set rows = ${rows}, updated_at = now() where id = ${datasetId}` },
      })
      await tx`update datasets set format = ${format} where id = ${datasetId}`
      await finishImport(tx, deps.jobs, datasetId, result, counted.bytes())
    })
  } catch (error) {
    const final = error instanceof Problem && error.status < 500
    if (!final && !lastAttempt) throw error
    const detail = error instanceof Problem ? error.message : 'The import failed repeatedly; see the service log.'
    const where = error instanceof Problem ? { line: error.extra.line, item: error.extra.item } : {}
    await sql`
      update datasets set status = 'failed', rows = 0, error = ${sql.json({ detail, ...where } as never)}, updated_at = now()
      where id = ${datasetId}`
    await sql`delete from dataset_uploads where dataset_id = ${datasetId}`
    if (!final) throw error
  }
}

async function fetchImport (deps: ImportJobDeps, dataset: DatasetRow, signal: AbortSignal): Promise<{ input: Readable, format: Format }> {
  const url = await deps.guard.check(dataset.source_url!)
  const dispatcher = deps.guard.agent({ connectTimeout: deps.fetchTimeoutMs, headersTimeout: deps.fetchTimeoutMs, bodyTimeout: deps.fetchTimeoutMs })
  const response = await httpRequest(url, { dispatcher, signal, headers: { accept: 'text/csv, application/x-ndjson, application/json;q=0.9, */*;q=0.5' } })
  const closeAgent = (): void => { void dispatcher.close() }
  response.body.once('close', closeAgent)
  if (response.statusCode >= 400 && response.statusCode < 500) {
    await response.body.dump()
    throw new Problem('invalid-data', `The URL answered ${response.statusCode}.`)
  }
  if (response.statusCode !== 200) {
    await response.body.dump()
    throw new Error(`import URL answered ${response.statusCode}`) // retried
  }
  const contentType = response.headers['content-type']
  const format = dataset.format ?? formatOf(typeof contentType === 'string' ? contentType : undefined, url.pathname)
  if (format === undefined) {
    await response.body.dump()
    throw new Problem('invalid-data', 'The format of the URL\'s data is unknown: give `format` (csv, json or ndjson) with the import.')
  }
  return { input: response.body, format }
}

export async function findDataset (sql: Sql, id: number, signal?: AbortSignal): Promise<DatasetRow | undefined> {
  const query = sql<DatasetRow[]>`select * from datasets where id = ${id}`
  const [row] = signal === undefined ? await query : await cancellable(query, signal)
  return row
}

export async function findColumns (sql: Sql, id: number, signal: AbortSignal): Promise<ColumnInfo[]> {
  return await cancellable(sql<ColumnInfo[]>`
    select position, name, type, nullable from dataset_columns where dataset_id = ${id} order by position`, signal)
}

export async function findStats (sql: Sql, id: number, signal: AbortSignal): Promise<{ stats: DatasetStats, computed_at: Date } | undefined> {
  const [row] = await cancellable(sql<Array<{ stats: DatasetStats, computed_at: Date }>>`
    select stats, computed_at from dataset_stats where dataset_id = ${id}`, signal)
  return row
}

export async function listDatasets (sql: Sql, { limit, before }: { limit: number, before?: number }, signal: AbortSignal): Promise<DatasetRow[]> {
  return await cancellable(sql<DatasetRow[]>`
    select * from datasets where id < ${before ?? Number.MAX_SAFE_INTEGER} order by id desc limit ${limit}`, signal)
}

/** Deletes a data set and its table; waits for a running import of it to finish first. */
export async function deleteDataset (sql: Sql, id: number): Promise<boolean> {
  return await sql.begin(async (tx) => {
    await lockDataset(tx, id)
    const deleted = await tx`delete from datasets where id = ${id} returning id`
    if (deleted.length === 0) return false
    await tx.unsafe(`drop table if exists dataset_rows.ds_${id}`)
    return true
  })
}

/** COPY … TO STDOUT of a data set's rows in row order, as CSV (header first) or NDJSON. */
export function exportRows (sql: Sql, id: number, columns: ColumnInfo[], format: 'csv' | 'ndjson'): Readable {
  const table = `dataset_rows.ds_${id}`
  if (format === 'csv') {
    // Booleans as true/false and timestamps in ISO 8601, so that the file imports back the same.
    const values = columns.map((column) => {
      const c = physical(column.position)
      return column.type === 'boolean' ? `${c}::text` : column.type === 'timestamp' ? `to_json(${c})#>>'{}'` : c
    })
    const header = columns.map((column) => csvField(column.name)).join(',') + '\n'
    return Readable.from((async function * () {
      yield header
      if (columns.length === 0) return
      yield * await sql.unsafe(`copy (select ${values.join(', ')} from ${table} order by _row) to stdout with (format csv)`).readable()
    })(), { objectMode: false })
  }
  // One JSON object per line, built in SQL with the names as JSON string literals. (json_build_object
  // takes at most 50 pairs; row_to_json would need the names as SQL identifiers, cut at 63 bytes.)
  // CSV format with a quote and delimiter that JSON text never contains passes each line through
  // untouched, where the text format would escape its backslashes.
  const members = columns.map((column, index) => `'${(index === 0 ? '' : ',') + JSON.stringify(column.name).replaceAll('\'', '\'\'')}:' || coalesce(to_json(${physical(column.position)})::text, 'null')`)
  const object = columns.length === 0 ? `'{}'` : `'{' || ${members.join(' || ')} || '}'`
  const copy = `copy (select ${object} from ${table} order by _row) to stdout with (format csv, quote e'\\x01', delimiter e'\\x02')`
  return Readable.from((async function * () { yield * await sql.unsafe(copy).readable() })(), { objectMode: false })
}

function csvField (text: string): string {
  return /[",\r\n]/.test(text) || text.trim() !== text ? `"${text.replaceAll('"', '""')}"` : text
}
