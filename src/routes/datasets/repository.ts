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
import type { ChangeKind, Dataset, DatasetChange, DatasetColumn, DatasetSource, DatasetStats } from './schemas.ts'

export type DatasetsRepository = ReturnType<typeof createDatasetsRepository>

/** One write of a data set, for its history (GET /datasets/{id}/changes). */
export interface NewChange {
  datasetId: number
  kind: ChangeKind
  /** The key that wrote; null for the demo seed. */
  apiKeyId: number | null
  /** Rows the write added, removed or changed; null when it touched none (a rename). */
  rows: number | null
  /** What the write was: its source, its filters, the columns it renamed… (JSON). */
  details: Record<string, unknown>
}

/**
 * Records a write in the data set's history, inside the transaction of the write itself, so that
 * the history holds exactly the writes that committed. Every write of a data set calls it: create,
 * row deletes, PATCH here; append, upsert and replace where they are built.
 */
export async function recordChange (tx: TransactionSql, change: NewChange): Promise<void> {
  await tx`
    insert into dataset_changes (dataset_id, kind, api_key_id, rows, details)
    values (${change.datasetId}, ${change.kind}, ${change.apiKeyId}, ${change.rows}, ${tx.json(change.details as Parameters<typeof tx.json>[0])})`
}

/** Who owns a data set and what state it is in, read under a row lock that serialises its writes. */
export interface WriteTarget { status: Dataset['status'], createdBy: number | null, rows: number }

export interface NewDataset { name: string, description?: string, createdBy?: number }

/** What an import job needs to know of its data set. */
export interface ImportSource { status: Dataset['status'], source: DatasetSource, source_url: string | null, format: Format | null, upload_id: string | null }

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

    /** The columns, read in the caller's transaction (a write's, holding lockForWrite). */
    async columnsIn (tx: TransactionSql, id: number): Promise<DatasetColumn[]> {
      return await tx<DatasetColumn[]>`select position, name, type, nullable from dataset_columns where dataset_id = ${id} order by position`
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

    async insert (tx: TransactionSql, dataset: NewDataset, how: { source: DatasetSource, format: Format | null, sourceUrl?: string, uploadId?: string, bytes?: number }): Promise<Dataset> {
      const [row] = await tx<[Dataset]>`
        insert into datasets (name, description, status, source, source_url, format, created_by, upload_id, bytes)
        values (${dataset.name}, ${dataset.description ?? null}, 'importing', ${how.source}, ${how.sourceUrl ?? null}, ${how.format},
          ${dataset.createdBy ?? null}, ${how.uploadId ?? null}, ${how.bytes ?? 0})
        returning ${datasetColumns}`
      return row
    },

    async importSource (id: number): Promise<ImportSource | undefined> {
      const [row] = await sql<[ImportSource?]>`select status, source, source_url, format, upload_id from datasets where id = ${id}`
      return row
    },

    lockImporting,

    /**
     * Locks a data set's row until the transaction ends, so that writes of one data set (row
     * deletes, PATCH, DELETE) take turns; undefined when there is no such data set.
     */
    async lockForWrite (tx: TransactionSql, id: number): Promise<WriteTarget | undefined> {
      const [row] = await tx<[{ status: Dataset['status'], created_by: number | null, rows: number }?]>`
        select status, created_by, rows from datasets where id = ${id} for update`
      return row === undefined ? undefined : { status: row.status, createdBy: row.created_by === null ? null : Number(row.created_by), rows: Number(row.rows) }
    },

    /**
     * A write of the rows committed: the row count moves by `delta` and `updated_at` with it (the
     * version the totals and facets kept in memory go by; the trigger of migration 0007 announces
     * it), and the statistics, now stale, go until the job computes them again.
     */
    async rowsChanged (tx: TransactionSql, id: number, delta: number): Promise<Dataset> {
      // Later than any version before, even one written by a transaction that began after this one.
      const [row] = await tx<[Dataset]>`update datasets set rows = rows + ${delta}, updated_at = greatest(clock_timestamp(), updated_at + interval '1 millisecond') where id = ${id} returning ${datasetColumns}`
      await tx`delete from dataset_stats where dataset_id = ${id}`
      return row
    },

    /** New name and description (undefined: unchanged; a null description removes it), and a new version. */
    async rename (tx: TransactionSql, id: number, change: { name?: string, description?: string | null }): Promise<Dataset> {
      const [row] = await tx<[Dataset]>`
        update datasets set
          name = coalesce(${change.name ?? null}::text, name),
          description = case when ${change.description !== undefined} then ${change.description ?? null}::text else description end,
          updated_at = greatest(clock_timestamp(), updated_at + interval '1 millisecond')
        where id = ${id} returning ${datasetColumns}`
      return row
    },

    /**
     * Writes new names and types of some columns (by position): deleted and written again in one
     * go, so that two columns may swap names (a unique constraint is checked row by row). The
     * statistics, keyed by name and computed for the old types, go until the job runs again.
     */
    async replaceColumns (tx: TransactionSql, id: number, columns: DatasetColumn[]): Promise<void> {
      if (columns.length === 0) return
      await tx`delete from dataset_columns where dataset_id = ${id} and position in ${tx(columns.map((column) => column.position))}`
      await tx`insert into dataset_columns ${tx(columns.map((column) => ({ dataset_id: id, ...column })))}`
      await tx`delete from dataset_stats where dataset_id = ${id}`
    },

    recordChange,

    /** A page of a data set's history, newest first, before the change `before` (keyset by id). */
    async changes (id: number, { limit, before }: { limit: number, before?: number }, signal: AbortSignal): Promise<DatasetChange[]> {
      return await cancellable(sql<DatasetChange[]>`
        select id, at, kind, api_key_id, rows, details from dataset_changes
        where dataset_id = ${id} and id < ${before ?? Number.MAX_SAFE_INTEGER}
        order by id desc limit ${limit}`, signal)
    },

    /** The import's result, in the transaction that holds lockImporting: columns, row count, status ready, the upload's pieces gone. */
    async finishImport (tx: TransactionSql, id: number, uploadId: string | null, result: { rows: number, columns: DatasetColumn[], format: Format, bytes?: number }): Promise<Dataset> {
      if (result.columns.length > 0) {
        await tx`insert into dataset_columns ${tx(result.columns.map((column) => ({ dataset_id: id, ...column })))}`
      }
      const [row] = await tx<[Dataset & { created_by: number | null }]>`
        update datasets set status = 'ready', rows = ${result.rows}, bytes = coalesce(${result.bytes ?? null}::int8, bytes), format = ${result.format}, error = null, upload_id = null, updated_at = now()
        where id = ${id} returning ${datasetColumns}, created_by`
      if (uploadId !== null) await tx`delete from dataset_upload_pieces where upload_id = ${uploadId}`
      const { created_by: createdBy, ...dataset } = row
      // The first entry of the history: the import, by the key that created the data set.
      await recordChange(tx, {
        datasetId: id,
        kind: 'create',
        apiKeyId: createdBy === null ? null : Number(createdBy),
        rows: result.rows,
        details: { source: dataset.source, format: result.format, bytes: Number(dataset.bytes), columns: result.columns.map(({ name, type }) => ({ name, type })), ...(dataset.source_url === null ? {} : { url: dataset.source_url }) },
      })
      return dataset
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
