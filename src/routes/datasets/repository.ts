// The metadata of data sets in SQL: the `datasets` rows, their columns and statistics, and the
// pieces of uploads waiting for their import. (The rows themselves live in tables of their own:
// table.ts.) Reads take the caller's AbortSignal and are cancelled on the server when it fires.
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import type { TransactionSql } from 'postgres'
import { binaryCopyRow, binaryCopyRows } from '../../db/binary-copy.ts'
import type { Sql } from '../../db/pool.ts'
import { reserveConnection } from '../../db/scoped.ts'
import { cancellable } from '../../lib/concurrency.ts'
import type { Format } from './import/formats.ts'
import type { DataLocation } from './import/invalid-data.ts'
import type { ImportOptions } from './import/options.ts'
import type { ChangeKind, Dataset, DatasetChange, DatasetColumn, DatasetSource, DatasetStats, DatasetWrite, OnConflict, WriteKind } from './schemas.ts'

export type DatasetsRepository = ReturnType<typeof createDatasetsRepository>

export interface NewDataset { name: string, description?: string, createdBy?: number, /** Key columns (names, in order). */ key?: string[] }

/** What a write job needs to know of its write. */
export interface WriteSource {
  id: number
  dataset_id: number
  kind: WriteKind
  status: DatasetWrite['status']
  format: Format
  on_conflict: OnConflict | null
  strict_columns: boolean
  upload_id: string | null
  /** The key that sent the write (for the history; int8, as text); null once that key is deleted. */
  api_key_id: string | null
  /** How the client asked its body to be read. */
  import_options: ImportOptions
}

export interface WriteCounts { inserted: number, updated: number, ignored: number }

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

/** A data set as the API shows it, and who owns it: what a write is authorised on. */
export type OwnedDataset = Dataset & Pick<WriteTarget, 'createdBy'>


/** What an import job needs to know of its data set. */
export interface ImportSource { status: Dataset['status'], source: DatasetSource, source_url: string | null, format: Format | null, upload_id: string | null, key: string[] | null, import_options: ImportOptions }

export function createDatasetsRepository (sql: Sql) {
  const datasetColumns = sql`id, name, description, status, source, source_url, format, rows, bytes, error, key, created_at, updated_at`
  const writeColumns = sql`id, kind, status, on_conflict, rows_read, inserted, updated, ignored, error, created_at, finished_at`

  /**
   * Locks a data set that is still importing until the transaction ends (a DELETE waits for the
   * import to commit or roll back); undefined when it was deleted or finished meanwhile.
   */
  const lockImporting = async (tx: TransactionSql, id: number): Promise<{ uploadId: string | null } | undefined> => {
    const [row] = await tx<[{ upload_id: string | null }?]>`select upload_id from datasets where id = ${id} and status = 'importing' for update`
    return row === undefined ? undefined : { uploadId: row.upload_id }
  }

  const owned = ([row]: Array<Dataset & { created_by: number | null }>): OwnedDataset | undefined => {
    if (row === undefined) return undefined
    const { created_by: createdBy, ...dataset } = row
    return { ...dataset, createdBy: createdBy === null ? null : Number(createdBy) }
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

    async insert (tx: TransactionSql, dataset: NewDataset, how: { source: DatasetSource, format: Format | null, sourceUrl?: string, uploadId?: string, bytes?: number, options?: ImportOptions }): Promise<Dataset> {
      const [row] = await tx<[Dataset]>`
        insert into datasets (name, description, status, source, source_url, format, created_by, upload_id, bytes, key, import_options)
        values (${dataset.name}, ${dataset.description ?? null}, 'importing', ${how.source}, ${how.sourceUrl ?? null}, ${how.format},
          ${dataset.createdBy ?? null}, ${how.uploadId ?? null}, ${how.bytes ?? 0}, ${dataset.key ?? null}::text[], ${tx.json((how.options ?? {}) as Parameters<typeof tx.json>[0])})
        returning ${datasetColumns}`
      return row
    },

    async importSource (id: number): Promise<ImportSource | undefined> {
      const [row] = await sql<[ImportSource?]>`select status, source, source_url, format, upload_id, key, import_options from datasets where id = ${id}`
      return row
    },

    lockImporting,

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
    /** Columns changed by a PATCH (their names or types), by position; the statistics go with them. */
    async updateColumns (tx: TransactionSql, id: number, columns: DatasetColumn[]): Promise<void> {
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

    /** A data set and its owner, without a lock: the check before a write's body is read (an owner never changes). */
    async findOwned (id: number): Promise<OwnedDataset | undefined> {
      return owned(await sql<Array<Dataset & { created_by: number | null }>>`select ${datasetColumns}, created_by from datasets where id = ${id}`)
    },

    /**
     * A data set locked against other writes until the transaction ends (each write takes it
     * before it changes rows or columns: appends, replaces, row deletes, PATCH, DELETE), with its
     * owner; undefined when there is no such data set.
     */
    async lockForWrite (tx: TransactionSql, id: number): Promise<OwnedDataset | undefined> {
      return owned(await tx<Array<Dataset & { created_by: number | null }>>`select ${datasetColumns}, created_by from datasets where id = ${id} for update`)
    },

    async addColumn (tx: TransactionSql, id: number, column: DatasetColumn): Promise<void> {
      await tx`insert into dataset_columns ${tx({ dataset_id: id, ...column })}`
    },

    async updateColumn (tx: TransactionSql, id: number, column: Pick<DatasetColumn, 'position' | 'type' | 'nullable'>): Promise<void> {
      await tx`update dataset_columns set type = ${column.type}, nullable = ${column.nullable} where dataset_id = ${id} and position = ${column.position}`
    },

    /** A replace's columns instead of the old ones. */
    async replaceColumns (tx: TransactionSql, id: number, columns: DatasetColumn[]): Promise<void> {
      await tx`delete from dataset_columns where dataset_id = ${id}`
      if (columns.length > 0) await tx`insert into dataset_columns ${tx(columns.map((column) => ({ dataset_id: id, ...column })))}`
    },

    /**
     * The data set's new row count (and, for a replace, its format and size), in the write's
     * transaction. `updated_at` moves forward by at least a millisecond, so that whatever is kept
     * by version (metadata, totals, facets: view-cache.ts) never takes the new rows for the old.
     */
    async recordWrite (tx: TransactionSql, id: number, change: { rows: number, format?: Format, bytes?: number }): Promise<Dataset> {
      const [row] = await tx<[Dataset]>`
        update datasets set rows = ${change.rows}, format = coalesce(${change.format ?? null}, format), bytes = coalesce(${change.bytes ?? null}::int8, bytes),
          updated_at = greatest(clock_timestamp(), updated_at + interval '1 millisecond')
        where id = ${id} returning ${datasetColumns}`
      return row
    },

    async setKey (tx: TransactionSql, id: number, key: string[] | null): Promise<Dataset> {
      const [row] = await tx<[Dataset]>`
        update datasets set key = ${key}::text[], updated_at = greatest(clock_timestamp(), updated_at + interval '1 millisecond')
        where id = ${id} returning ${datasetColumns}`
      return row
    },

    /** Statistics of rows that are gone (a replace): none are shown until the job has computed the new ones. */
    async deleteStats (tx: TransactionSql, id: number): Promise<void> {
      await tx`delete from dataset_stats where dataset_id = ${id}`
    },

    /** A write: done now (`counts` given) or queued for a job (its upload stored as `uploadId`). */
    async insertWrite (tx: TransactionSql, id: number, write: { kind: WriteKind, format: Format, onConflict?: OnConflict, strict: boolean, apiKeyId: number, options: ImportOptions, uploadId?: string, counts?: WriteCounts }): Promise<DatasetWrite> {
      const done = write.counts !== undefined
      const [row] = await tx<[DatasetWrite]>`
        insert into dataset_writes (dataset_id, kind, status, format, on_conflict, strict_columns, api_key_id, import_options, upload_id, inserted, updated, ignored, finished_at)
        values (${id}, ${write.kind}, ${done ? 'done' : 'queued'}, ${write.format}, ${write.onConflict ?? null}, ${write.strict}, ${write.apiKeyId}, ${tx.json(write.options as Parameters<typeof tx.json>[0])}, ${write.uploadId ?? null},
          ${write.counts?.inserted ?? null}, ${write.counts?.updated ?? null}, ${write.counts?.ignored ?? null}, ${done ? sql`clock_timestamp()` : null})
        returning ${writeColumns}`
      return row
    },

    async writeSource (writeId: number): Promise<WriteSource | undefined> {
      const [row] = await sql<[WriteSource?]>`
        select id, dataset_id, kind, status, format, on_conflict, strict_columns, upload_id, api_key_id, import_options from dataset_writes where id = ${writeId}`
      return row
    },

    /** Rows read so far by a running write job, outside its transaction; false when the write is gone (its data set deleted). */
    async recordWriteProgress (writeId: number, rows: number): Promise<boolean> {
      const updated = await sql`update dataset_writes set rows_read = ${rows} where id = ${writeId} and status = 'running' returning id`
      return updated.length > 0
    },

    async markWriteRunning (writeId: number): Promise<void> {
      await sql`update dataset_writes set status = 'running' where id = ${writeId} and status = 'queued'`
    },

    /** A job's write done, in its transaction: its counts, its upload's pieces gone. */
    async finishWrite (tx: TransactionSql, writeId: number, counts: WriteCounts): Promise<DatasetWrite | undefined> {
      const [held] = await tx<[{ upload_id: string | null }?]>`select upload_id from dataset_writes where id = ${writeId} and status in ('queued', 'running') for update`
      if (held === undefined) return undefined
      const [row] = await tx<[DatasetWrite]>`
        update dataset_writes set status = 'done', inserted = ${counts.inserted}, updated = ${counts.updated}, ignored = ${counts.ignored},
          upload_id = null, finished_at = clock_timestamp()
        where id = ${writeId} returning ${writeColumns}`
      if (held.upload_id !== null) await tx`delete from dataset_upload_pieces where upload_id = ${held.upload_id}`
      return row
    },

    /** A write that cannot be done (its data is malformed, its data set no longer ready): failed, with why; nothing of it was written. */
    async markWriteFailed (writeId: number, detail: string, location: DataLocation): Promise<void> {
      await sql.begin(async (tx) => {
        const [row] = await tx<[{ upload_id: string | null }?]>`
          select upload_id from dataset_writes where id = ${writeId} and status in ('queued', 'running') for update`
        if (row === undefined) return
        await tx`update dataset_writes set status = 'failed', error = ${tx.json({ detail, ...location })}, upload_id = null, finished_at = clock_timestamp() where id = ${writeId}`
        if (row.upload_id !== null) await tx`delete from dataset_upload_pieces where upload_id = ${row.upload_id}`
      })
    },

    /** The latest write of a data set, if any. */
    async latestWrite (id: number, signal?: AbortSignal): Promise<DatasetWrite | undefined> {
      const query = sql<DatasetWrite[]>`select ${writeColumns} from dataset_writes where dataset_id = ${id} order by id desc limit 1`
      const [row] = signal === undefined ? await query : await cancellable(query, signal)
      return row
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
      // A COPY on a connection of its own: postgres.js would pipeline another query of the pool
      // onto a connection in COPY, which then fails (COPY_IN_PROGRESS).
      await using db = await reserveConnection(sql)
      const copy = await db`copy dataset_upload_pieces (upload_id, seq, data) from stdin with (format binary)`.writable()
      await pipeline(Readable.from([binaryCopyRow([uuidBytes(uploadId), seqField, data])]), copy)
    },

    async readPiece (uploadId: string, seq: number): Promise<Buffer | undefined> {
      // COPY takes no parameters: the id is checked to be a UUID, the number is an integer of ours.
      await using db = await reserveConnection(sql) // a COPY on a connection of its own (storePiece)
      const copy = db.unsafe(`copy (select data from dataset_upload_pieces where upload_id = '${uuidText(uploadId)}' and seq = ${Math.trunc(seq)}) to stdout with (format binary)`)
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
          and not exists (select 1 from datasets d where d.upload_id = p.upload_id)
          and not exists (select 1 from dataset_writes w where w.upload_id = p.upload_id)`
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
