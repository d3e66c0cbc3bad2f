// Writes to a ready data set's rows — appends (upserts by key) and replaces — and its key. Each is
// one transaction in the caller's hands: all of it or nothing, and readers, who read in snapshots,
// see the rows before it until it commits, then the rows after it, never a part. The data set's
// `rows` and `updated_at` change in the same transaction (what the metadata cache, TotalsCache and
// the facets keep is keyed on them, and the dataset_changed trigger announces the change), and the
// statistics job is enqueued in it.
//
// The work that takes long (reading and checking the body) runs before the data set is locked:
// an append COPYs its rows into a staging table (temporary, dropped at commit), a replace into the
// data set's replacement table. Then the data set's row is locked (`lockForWrite`: every write
// takes it, so writes to one data set merge one at a time and see each other's rows), its columns
// are read again (a write that committed meanwhile may have added or widened some), and the
// staged rows are merged or the replacement swapped in.
//
// Each write is recorded in the data set's history (recordChange) in its own transaction, by the
// caller (service.ts), who knows the key that sent it.
import type { TransactionSql } from 'postgres'
import type { JobQueue } from '../../jobs/queue.ts'
import { Problem } from '../../lib/errors.ts'
import { widen, type ColumnType } from './column-types.ts'
import type { Format } from './import/formats.ts'
import { importRows } from './import/importer.ts'
import { InvalidDataError, type DataLocation } from './import/invalid-data.ts'
import type { RowSource } from './import/sources.ts'
import type { DatasetsRepository, WriteCounts } from './repository.ts'
import type { Dataset, DatasetColumn, OnConflict } from './schemas.ts'
import { INDEXABLE_TEXT_LENGTH } from './stats.ts'
import { replacementTable, rowsTable, stagingTable, type RowsTable } from './table.ts'

export interface WriteDeps { datasets: DatasetsRepository, jobs: JobQueue }

export interface AppendOptions {
  /** With a key: what a row whose key is there already does; without: such a row is a 409. */
  onConflict?: OnConflict
  /** Refuse columns the data set does not have (400) instead of adding them. */
  strict: boolean
}

/** How a write reads its body: the types the client chose (`?types=`), and who hears of its progress (a job). */
export interface ReadOptions {
  types?: Readonly<Record<string, ColumnType>>
  onProgress?: (rows: number) => Promise<void>
}

export interface WriteResult {
  dataset: Dataset
  columns: DatasetColumn[]
  counts: WriteCounts
  /** The columns an append added, by name (a replace: none; its columns are the new data's). */
  added: string[]
}

/** How often, and how long each time, a replace waits for readers of the old table to let go. */
const SWAP_ATTEMPTS = 5
const SWAP_LOCK_TIMEOUT = '2s'

/**
 * A row inserted into an indexed table costs about ten times what it costs without indexes: each
 * btree and GIN index is updated row by row (1,000,000 rows into a table with the statistics
 * job's six column indexes and three search indexes: 42 s, against 2.7 s with its primary key
 * only, and 13 s to build those nine indexes afterwards). So an append of at least this many rows,
 * and at least a quarter as many as the data set has, builds the data set's table again beside
 * the live one, as a replace does: its rows, then the new ones, into a table with only its
 * primary key and key; swapped in at commit, and the statistics job builds the other indexes
 * again (sorted pages and searches scan until then, as after an import).
 */
const BULK_APPEND_MIN_ROWS = 50_000
const BULK_APPEND_MIN_SHARE = 0.25

/** The data set, when it may be written to: 404 when missing, 409 while importing or failed. */
export function writable (dataset: Dataset | undefined, id: number): Dataset {
  if (dataset === undefined) throw new Problem('not-found', `There is no data set ${id}.`)
  if (dataset.status === 'importing') throw new Problem('conflict', `Data set ${id} is still importing; it can be written to once its status is "ready".`)
  if (dataset.status === 'failed') throw new Problem('conflict', `Data set ${id} failed to import; delete it, or create it again.`)
  return dataset
}

/** on_conflict needs a key to find the conflicts by. */
export function checkOnConflict (dataset: Dataset, onConflict: OnConflict | undefined): void {
  if (onConflict !== undefined && dataset.key === null) {
    throw new Problem('validation-error', `on_conflict=${onConflict}: data set ${dataset.id} has no key to find conflicts by; declare one first (PUT /datasets/${dataset.id}/key).`, {
      extra: { errors: [{ in: 'querystring', pointer: '/on_conflict', detail: 'needs a key' }] },
    })
  }
}

/** Appends the rows of `source`, or upserts them by the data set's key (`onConflict`). */
export async function appendInto (tx: TransactionSql, { datasets, jobs }: WriteDeps, id: number, source: RowSource, options: AppendOptions, reading: ReadOptions = {}): Promise<WriteResult> {
  // The data set is looked at (ready? a key for on_conflict?) before the body is read, by the
  // caller, and again under the lock once the rows are staged.
  await tx`set local statement_timeout to 0`
  const before = new Map((await datasets.columnsIn(tx, id)).map((column) => [column.name, column]))
  const staging = stagingTable(id)
  const staged = await importRows(tx, staging, source, {
    ...reading,
    freeze: false,
    knownType: (name) => {
      const known = before.get(name)
      if (known === undefined && options.strict) throw newColumnRefused(name)
      return known?.type
    },
  })

  const dataset = writable(await datasets.lockForWrite(tx, id), id)
  checkOnConflict(dataset, options.onConflict)
  const current = await datasets.columnsIn(tx, id)
  const live = rowsTable(id)
  const bulk = staged.rows >= Math.max(BULK_APPEND_MIN_ROWS, BULK_APPEND_MIN_SHARE * dataset.rows) && await lockReplacement(tx, id)
  const named = new Map(current.map((column) => [column.name, column]))

  // Each staged column (by position in the file) and the data set's column it lands in.
  let nextPosition = current.reduce((last, column) => Math.max(last, column.position + 1), 0)
  const plan = staged.columns.map((column, index) => {
    const existing = named.get(column.name)
    if (existing === undefined) {
      if (options.strict) throw newColumnRefused(column.name)
      return { index, existing, target: { position: nextPosition++, name: column.name, type: column.type, nullable: dataset.rows > 0 || column.nullable } }
    }
    return { index, existing, target: { ...existing, type: widen(existing.type, column.type)!, nullable: existing.nullable || column.nullable } }
  })
  const inFile = new Set(staged.columns.map((column) => column.name))
  const absent = current.filter((column) => !inFile.has(column.name) && !column.nullable && staged.rows > 0)

  // The key: present in every row, once per file, then (below) once per data set.
  const keyPlan = (dataset.key ?? []).map((name) => {
    const entry = plan.find((candidate) => candidate.target.name === name)
    if (entry === undefined) throw new InvalidDataError(`the key column "${name}" is missing: every row needs its key ${keyText(dataset.key!)}`)
    return entry
  })
  if (keyPlan.length > 0) await checkKey(tx, staging, keyPlan.map((entry) => entry.index), dataset.key!, staged.locationOf)

  // New and wider columns: in the live table, or (bulk) in the table built beside it. The view
  // pins its columns' types, so it goes first and comes back after.
  const changed = plan.filter(({ existing, target }) => existing === undefined || existing.type !== target.type)
  if (changed.length > 0 && !bulk) await tx.unsafe(live.dropViewSql)
  for (const { index, existing, target } of plan) {
    if (existing === undefined) {
      if (!bulk) await live.addColumn(tx, target.position, target.type)
      await datasets.addColumn(tx, id, target)
    } else if (existing.type !== target.type || existing.nullable !== target.nullable) {
      if (existing.type !== target.type && !bulk) await live.widenColumn(tx, target.position, target.type)
      await datasets.updateColumn(tx, id, target)
    }
    if (staged.columns[index]!.type !== target.type) await staging.widenColumn(tx, index, target.type)
  }
  for (const column of absent) await datasets.updateColumn(tx, id, { ...column, nullable: true })
  const columns = await datasets.columnsIn(tx, id)
  let table = live
  if (bulk) {
    table = await rebuildBeside(tx, id, current, columns, dataset.key === null ? undefined : keyPlan.map(({ target }) => target.position))
  } else {
    if (changed.some(({ target }) => target.type === 'text')) await live.dropSearchIndexes(tx)
    await dropIndexesOfLongText(tx, live, staging, plan)
  }

  const counts = await mergeStaged(tx, dataset, table, staging, { rows: staged.rows, locationOf: staged.locationOf }, plan, keyPlan, options.onConflict)
  if (bulk) await swapIn(tx, live, table)
  if (changed.length > 0 || bulk) await tx.unsafe(live.createViewSql(columns.map((column) => column.name)))
  const written = await datasets.recordWrite(tx, id, { rows: dataset.rows + counts.inserted })
  await jobs.enqueue(tx, 'compute_dataset_stats', { dataset_id: id })
  return { dataset: written, columns, counts, added: plan.filter(({ existing }) => existing === undefined).map(({ target }) => target.name) }
}

interface PlannedColumn { index: number, target: DatasetColumn }

/** One replacement table per data set at a time (a replace, a bulk append): false while another write builds it. */
async function lockReplacement (tx: TransactionSql, id: number): Promise<boolean> {
  const [{ locked }] = await tx<[{ locked: boolean }]>`select pg_try_advisory_xact_lock(hashtextextended(${`dataset-replace:${id}`}, 0)) as locked`
  return locked
}

/**
 * The data set's rows copied into its replacement table (a bulk append), each column as `columns`
 * now type it (`before`: as the live table does), new columns missing: with its primary key and
 * its key's unique index, for the appended rows to be merged into, then swapped in.
 */
async function rebuildBeside (tx: TransactionSql, id: number, before: readonly DatasetColumn[], columns: readonly DatasetColumn[], key: number[] | undefined): Promise<RowsTable> {
  const live = rowsTable(id)
  const next = replacementTable(id)
  const typeAt = new Map(columns.map((column) => [column.position, column.type]))
  await next.create(tx, Array.from({ length: columns.length }, (_, position) => typeAt.get(position)!))
  const kept = before.map(({ position, type }) => ({ position, copied: type === typeAt.get(position) ? live.column(position) : live.widened(position, typeAt.get(position)!) }))
  await tx.unsafe(`
    insert into ${next.name} (_row${kept.map(({ position }) => `, ${next.column(position)}`).join('')})
    select _row${kept.map(({ copied }) => `, ${copied}`).join('')} from ${live.name}`)
  await next.addPrimaryKey(tx)
  if (key !== undefined) await next.addKeyIndex(tx, key)
  return next
}

/**
 * Makes `next` the data set's rows (writes.ts's replace and bulk append), waiting a little for
 * readers of the old table (an export streaming, say) and letting new readers in meanwhile rather
 * than queueing them behind the swap for long.
 */
async function swapIn (tx: TransactionSql, live: RowsTable, next: RowsTable): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      await tx.savepoint(async (savepoint) => {
        await savepoint.unsafe(`set local lock_timeout to '${SWAP_LOCK_TIMEOUT}'`)
        await live.swapIn(savepoint, next)
      })
      break
    } catch (error) {
      if ((error as { code?: string }).code !== '55P03' || attempt === SWAP_ATTEMPTS) throw error
    }
  }
  await tx`set local lock_timeout to default`
}

/** The staged rows into the data set's table, numbered after its last row; a key clash as `onConflict` says. */
async function mergeStaged (tx: TransactionSql, dataset: Dataset, table: RowsTable, staging: RowsTable, staged: { rows: number, locationOf: (row: number) => DataLocation }, plan: PlannedColumn[], keyPlan: PlannedColumn[], onConflict: OnConflict | undefined): Promise<WriteCounts> {
  const stagedRows = staged.rows
  if (stagedRows === 0) return { inserted: 0, updated: 0, ignored: 0 }
  const matches = keyPlan.map(({ index, target }) => `t.${table.column(target.position)} = s.${staging.column(index)}`).join(' and ')
  let existing = 0
  if (keyPlan.length > 0) {
    if (onConflict === undefined) {
      const [clash] = await tx.unsafe<Array<{ _row: number, values: string[] }>>(`
        select s._row, array[${keyPlan.map(({ index }) => `s.${staging.column(index)}::text`).join(', ')}] as values
        from ${staging.name} s where exists (select 1 from ${table.name} t where ${matches}) order by s._row limit 1`)
      if (clash !== undefined) {
        const location = staged.locationOf(clash._row)
        const where = location.line !== undefined ? `line ${location.line}: ` : location.item !== undefined ? `item ${location.item}: ` : ''
        throw new Problem('conflict', `${where}a row with the key ${keyText(dataset.key!)} = ${valuesText(clash.values)} is already in data set ${dataset.id}; ` +
          'append with on_conflict=update (update that row) or on_conflict=ignore (keep it).', { extra: { ...location, key: Object.fromEntries(dataset.key!.map((name, at) => [name, clash.values[at]])) } })
      }
    } else {
      // Exact: every write holds the data set's lock, so no other one adds or removes keys meanwhile.
      const [{ count }] = await tx.unsafe<[{ count: number }]>(`
        select count(*)::int8 as count from ${staging.name} s where exists (select 1 from ${table.name} t where ${matches})`)
      existing = Number(count)
    }
  }
  const targets = plan.map(({ target }) => table.column(target.position))
  const values = plan.map(({ index }) => `s.${staging.column(index)}`)
  const keyColumns = new Set(keyPlan.map(({ target }) => target.position))
  const updates = plan.filter(({ target }) => !keyColumns.has(target.position)).map(({ target }) => `${table.column(target.position)} = excluded.${table.column(target.position)}`)
  const conflict = onConflict === undefined || keyPlan.length === 0
    ? ''
    : ` on conflict ${table.conflictTarget(keyPlan.map(({ target }) => target.position))} ${onConflict === 'update' && updates.length > 0 ? `do update set ${updates.join(', ')}` : 'do nothing'}`
  const inserted = await tx.unsafe(`
    insert into ${table.name} (_row${targets.map((c) => `, ${c}`).join('')})
    select (select coalesce(max(_row), 0) from ${table.name}) + s._row${values.map((v) => `, ${v}`).join('')} from ${staging.name} s${conflict}`)
  if (onConflict === 'update') return { inserted: inserted.count - existing, updated: existing, ignored: 0 }
  return { inserted: inserted.count, updated: 0, ignored: stagedRows - inserted.count }
}

/**
 * A column whose values may now be longer than a btree entry holds (a third of a page) loses the
 * (column, _row) index the statistics job gave it (which leaves out such columns too): else the
 * merge would fail on the first long value.
 */
async function dropIndexesOfLongText (tx: TransactionSql, table: RowsTable, staging: RowsTable, plan: PlannedColumn[]): Promise<void> {
  const texts = plan.filter(({ target }) => target.type === 'text')
  if (texts.length === 0) return
  const [lengths] = await tx.unsafe<[Record<string, number | null>]>(`select ${texts.map(({ index }) => `max(length(${staging.column(index)})) as l${index}`).join(', ')} from ${staging.name}`)
  for (const { index, target } of texts) {
    if (Number(lengths[`l${index}`] ?? 0) > INDEXABLE_TEXT_LENGTH) await table.dropColumnIndex(tx, target.position)
  }
}

/**
 * Every row of `table` has its key (the columns at `positions`), and no two the same: else a 400
 * naming the line of the row without one, or the lines of both rows that share one.
 */
async function checkKey (tx: TransactionSql, table: RowsTable, positions: number[], key: string[], locationOf: (row: number) => DataLocation): Promise<void> {
  const columns = positions.map((position) => table.column(position))
  const [missing] = await tx.unsafe<Array<{ _row: number, nulls: boolean[] }>>(`
    select _row, array[${columns.map((c) => `${c} is null`).join(', ')}] as nulls
    from ${table.name} where ${columns.map((c) => `${c} is null`).join(' or ')} order by _row limit 1`)
  if (missing !== undefined) {
    const name = key[missing.nulls.indexOf(true)]
    throw new InvalidDataError(`the key column "${name}" has no value: every row needs its key ${keyText(key)}`, locationOf(missing._row))
  }
  const [twice] = await tx.unsafe<Array<{ _row: number, previous: number, values: string[] }>>(`
    select _row, previous, values from (
      select _row, lag(_row) over (partition by ${columns.join(', ')} order by _row) as previous, array[${columns.map((c) => `${c}::text`).join(', ')}] as values
      from ${table.name}) rows
    where previous is not null order by _row limit 1`)
  if (twice === undefined) return
  const first = locationOf(twice.previous)
  const second = locationOf(twice._row)
  const where = first.line !== undefined ? `line ${first.line} and here` : first.item !== undefined ? `item ${first.item} and here` : `rows ${twice.previous} and ${twice._row}`
  throw new DuplicateKeyError(`the key ${keyText(key)} = ${valuesText(twice.values)} is there twice: ${where}`, second, first)
}

/** A key found twice in one body: the 400 names both places (`line` and `duplicate_of`). */
class DuplicateKeyError extends InvalidDataError {
  constructor (detail: string, location: DataLocation, first: DataLocation) {
    super(detail, location)
    this.extra.duplicate_of = first
  }
}

/** Makes `key` the key of the freshly imported `table` (an import, a replace): checked, then its unique index. */
export async function enforceKey (tx: TransactionSql, table: RowsTable, columns: DatasetColumn[], key: string[], locationOf: (row: number) => DataLocation): Promise<void> {
  const positions = key.map((name) => {
    const column = columns.find((candidate) => candidate.name === name)
    if (column === undefined) throw new InvalidDataError(`the key column "${name}" is not a column of the data (${columns.length === 0 ? 'it has none' : `it has ${columns.map((c) => JSON.stringify(c.name)).join(', ')}`})`)
    return column.position
  })
  await checkKey(tx, table, positions, key, locationOf)
  await table.addKeyIndex(tx, positions)
}

/**
 * Replaces every row (and the columns, as the new data has them), keeping the data set's id, name,
 * description and key: imported into the replacement table first, then swapped in, so that
 * readers see the old rows until the new ones are complete.
 */
export async function replaceWith (tx: TransactionSql, { datasets, jobs }: WriteDeps, id: number, source: RowSource, how: { format: Format, bytes: () => number }, reading: ReadOptions = {}): Promise<WriteResult> {
  await tx`set local statement_timeout to 0`
  // One replace of a data set at a time: the replacement table has one name.
  if (!await lockReplacement(tx, id)) throw new Problem('conflict', `Data set ${id} is being replaced by another request right now; send yours once that one is done.`)
  const next = replacementTable(id)
  const result = await importRows(tx, next, source, reading)

  const dataset = writable(await datasets.lockForWrite(tx, id), id)
  if (dataset.key !== null) await enforceKey(tx, next, result.columns, dataset.key, result.locationOf)
  const table = rowsTable(id)
  await swapIn(tx, table, next)
  await tx.unsafe(table.createViewSql(result.columns.map((column) => column.name)))
  await datasets.replaceColumns(tx, id, result.columns)
  await datasets.deleteStats(tx, id)
  const written = await datasets.recordWrite(tx, id, { rows: result.rows, format: how.format, bytes: how.bytes() })
  await jobs.enqueue(tx, 'compute_dataset_stats', { dataset_id: id })
  return { dataset: written, columns: result.columns, counts: { inserted: result.rows, updated: 0, ignored: 0 }, added: [] }
}

/**
 * Declares (or, with null, drops) the key of a ready data set: its rows must already hold a value
 * of every key column and no key twice, else a 409 naming the rows. The unique index is built in
 * the transaction; writes to the data set wait for it, readers do not.
 */
export async function changeKey (tx: TransactionSql, { datasets }: WriteDeps, id: number, key: string[] | null): Promise<Dataset> {
  await tx`set local statement_timeout to 0`
  writable(await datasets.lockForWrite(tx, id), id)
  const table = rowsTable(id)
  await table.dropKeyIndex(tx)
  if (key !== null) {
    const columns = await datasets.columnsIn(tx, id)
    const unknown = key.find((name) => !columns.some((column) => column.name === name))
    if (unknown !== undefined) {
      throw new Problem('validation-error', `"${unknown}" is not a column of data set ${id}.`, { extra: { errors: [{ in: 'body', pointer: `/key/${key.indexOf(unknown)}`, detail: 'is not a column' }] } })
    }
    try {
      await enforceKey(tx, table, columns, key, () => ({}))
    } catch (error) {
      if (!(error instanceof InvalidDataError)) throw error
      throw new Problem('conflict', `The rows of data set ${id} do not fit this key: ${error.message}.`, { cause: error })
    }
  }
  return await datasets.setKey(tx, id, key)
}

function newColumnRefused (name: string): InvalidDataError {
  return new InvalidDataError(`"${name}" is not a column of the data set, and columns=strict refuses new columns`)
}

function keyText (key: string[]): string {
  return `(${key.map((name) => JSON.stringify(name)).join(', ')})`
}

function valuesText (values: string[]): string {
  return `(${values.map((value) => JSON.stringify(value)).join(', ')})`
}
