// The metadata of data sets in SQL: the `datasets` rows, their columns and statistics, and the
// pieces of uploads waiting for their import. (The rows themselves live in tables of their own:
// table.ts.) Reads take the caller's AbortSignal and are cancelled on the server when it fires.
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import type { TransactionSql } from 'postgres'
import { binaryCopyRow, binaryCopyRows } from '../../db/binary-copy.ts'
import type { Sql } from '../../db/pool.ts'
import { cancellable } from '../../lib/concurrency.ts'
import type { Format } from './import/formats.ts'
import type { DataLocation } from './import/invalid-data.ts'
import type { ImportOptions } from './import/options.ts'
import type { Dataset, DatasetColumn, DatasetSource, DatasetStats } from './schemas.ts'

export type DatasetsRepository = ReturnType<typeof createDatasetsRepository>

export interface NewDataset { name: string, description?: string, createdBy?: number }

/** What an import job needs to know of its data set. */
export interface ImportSource { status: Dataset['status'], source: DatasetSource, source_url: string | null, format: Format | null, upload_id: string | null, import_options: ImportOptions }

export function createDatasetsRepository (sql: Sql) {
  const datasetColumns = sql`id, name, description, status, source, source_url, format, rows, bytes, error, created_at, updated_at`

  /**
   * Locks a data set that is still importing until the transaction ends (a DELETE waits for the
   * import to commit or roll back); undefined when it was deleted or finished meanwhile.
   */
  const lockImporting = async (tx: TransactionSql, id: number): Promise<{ uploadId: string | null } | undefined> => {
    const [row] = await tx<[{ upload_id: string | null }?]>`select upload_id from datasets where id = ${id} and status = 'importing' for update`
    return row === undefined ? undefined : { uploadId: row.upload_id }
  }

  return {
    async find (id: number, signal?: AbortSignal): Promise<Dataset | undefined> {
      const query = sql<Dataset[]>`select ${datasetColumns} from datasets where id = ${id}`
      const [row] = signal === undefined ? await query : await cancellable(query, signal)
      return row
    },

    async list ({ limit, before }: { limit: number, before?: number }, signal: AbortSignal): Promise<Dataset[]> {
      return await cancellable(sql<Dataset[]>`
        select ${datasetColumns} from datasets where id < ${before ?? Number.MAX_SAFE_INTEGER} order by id desc limit ${limit}`, signal)
    },

    async columns (id: number, signal?: AbortSignal): Promise<DatasetColumn[]> {
      const query = sql<DatasetColumn[]>`select position, name, type, nullable from dataset_columns where dataset_id = ${id} order by position`
      return signal === undefined ? await query : await cancellable(query, signal)
    },

    async stats (id: number, signal: AbortSignal): Promise<{ stats: DatasetStats, computed_at: Date } | undefined> {
      const [row] = await cancellable(sql<Array<{ stats: DatasetStats, computed_at: Date }>>`
        select stats, computed_at from dataset_stats where dataset_id = ${id}`, signal)
      return row
    },

    /** Counts by status, for /metrics. */
    async countsByStatus (signal: AbortSignal): Promise<Array<{ status: string, count: number, rows: number }>> {
      return await cancellable(sql<Array<{ status: string, count: number, rows: number }>>`
        select status, count(*)::int as count, coalesce(sum(rows), 0)::int8 as rows from datasets group by status`, signal)
    },

    async insert (tx: TransactionSql, dataset: NewDataset, how: { source: DatasetSource, format: Format | null, sourceUrl?: string, uploadId?: string, bytes?: number, options?: ImportOptions }): Promise<Dataset> {
      const [row] = await tx<[Dataset]>`
        insert into datasets (name, description, status, source, source_url, format, created_by, upload_id, bytes, import_options)
        values (${dataset.name}, ${dataset.description ?? null}, 'importing', ${how.source}, ${how.sourceUrl ?? null}, ${how.format},
          ${dataset.createdBy ?? null}, ${how.uploadId ?? null}, ${how.bytes ?? 0}, ${tx.json((how.options ?? {}) as Parameters<typeof tx.json>[0])})
        returning ${datasetColumns}`
      return row
    },

    async importSource (id: number): Promise<ImportSource | undefined> {
      const [row] = await sql<[ImportSource?]>`select status, source, source_url, format, upload_id, import_options from datasets where id = ${id}`
      return row
    },

    lockImporting,

    /** The import's result, in the transaction that holds lockImporting: columns, row count, status ready, the upload's pieces gone. */
    async finishImport (tx: TransactionSql, id: number, uploadId: string | null, result: { rows: number, columns: DatasetColumn[], format: Format, bytes?: number }): Promise<Dataset> {
      if (result.columns.length > 0) {
        await tx`insert into dataset_columns ${tx(result.columns.map((column) => ({ dataset_id: id, ...column })))}`
      }
      const [row] = await tx<[Dataset]>`
        update datasets set status = 'ready', rows = ${result.rows}, bytes = coalesce(${result.bytes ?? null}::int8, bytes), format = ${result.format}, error = null, upload_id = null, updated_at = now()
        where id = ${id} returning ${datasetColumns}`
      if (uploadId !== null) await tx`delete from dataset_upload_pieces where upload_id = ${uploadId}`
      return row
    },

    /** Rows so far of a running import, outside its transaction; false when the data set is gone. */
    async recordProgress (id: number, rows: number): Promise<boolean> {
      const updated = await sql`update datasets set rows = ${rows}, updated_at = now() where id = ${id} and status = 'importing' returning id`
      return updated.length > 0
    },

    /** Marks a data set that is still importing failed, with the reason; its upload's pieces go. */
    async markFailed (id: number, detail: string, location: DataLocation): Promise<void> {
      await sql.begin(async (tx) => {
        const importing = await lockImporting(tx, id)
        if (importing === undefined) return
        await tx`
          update datasets set status = 'failed', rows = 0, error = ${tx.json({ detail, ...location })}, upload_id = null, updated_at = now()
          where id = ${id}`
        if (importing.uploadId !== null) await tx`delete from dataset_upload_pieces where upload_id = ${importing.uploadId}`
      })
    },

    async saveStats (id: number, stats: DatasetStats): Promise<void> {
      await sql`
        insert into dataset_stats (dataset_id, stats) values (${id}, ${sql.json(stats)})
        on conflict (dataset_id) do update set stats = excluded.stats, computed_at = now()`
    },

    /** Deletes the metadata (columns and statistics go with it); false when there was none. */
    async delete (tx: TransactionSql, id: number): Promise<{ uploadId: string | null } | undefined> {
      const [row] = await tx<[{ upload_id: string | null }?]>`delete from datasets where id = ${id} returning upload_id`
      if (row === undefined) return undefined
      if (row.upload_id !== null) await tx`delete from dataset_upload_pieces where upload_id = ${row.upload_id}`
      return { uploadId: row.upload_id }
    },

    /** One piece of an upload, in binary COPY (a bytea parameter would travel as hex text). */
    async storePiece (uploadId: string, seq: number, data: Buffer): Promise<void> {
      const seqField = Buffer.alloc(4)
      seqField.writeInt32BE(seq)
      const copy = await sql`copy dataset_upload_pieces (upload_id, seq, data) from stdin with (format binary)`.writable()
      await pipeline(Readable.from([binaryCopyRow([uuidBytes(uploadId), seqField, data])]), copy)
    },

    async readPiece (uploadId: string, seq: number): Promise<Buffer | undefined> {
      // COPY takes no parameters: the id is checked to be a UUID, the number is an integer of ours.
      const copy = sql.unsafe(`copy (select data from dataset_upload_pieces where upload_id = '${uuidText(uploadId)}' and seq = ${Math.trunc(seq)}) to stdout with (format binary)`)
      const chunks: Buffer[] = []
      for await (const chunk of await copy.readable() as AsyncIterable<Buffer>) chunks.push(chunk)
      const [row] = binaryCopyRows(Buffer.concat(chunks))
      return row?.[0] ?? undefined
    },

    async deletePieces (uploadId: string): Promise<void> {
      await sql`delete from dataset_upload_pieces where upload_id = ${uploadId}`
    },

    /** Removes pieces of uploads no data set names that are older than `olderThanMs`. */
    async sweepPieces (olderThanMs: number): Promise<number> {
      const removed = await sql`
        delete from dataset_upload_pieces p
        where created_at < now() - ${olderThanMs / 1000} * interval '1 second'
          and not exists (select 1 from datasets d where d.upload_id = p.upload_id)`
      return removed.count
    },
  }
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

function uuidText (id: string): string {
  if (!UUID.test(id)) throw new Error(`not a UUID: ${id.slice(0, 40)}`)
  return id
}

function uuidBytes (id: string): Buffer {
  return Buffer.from(uuidText(id).replaceAll('-', ''), 'hex')
}
