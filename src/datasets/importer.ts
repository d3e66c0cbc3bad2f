// Loads rows into a data set's own table with COPY … FROM STDIN, inside the caller's transaction:
// if anything fails, the rollback leaves no table behind.
//
// Types come from a sample (the first rows), then every value is checked as it streams past. A
// value that does not fit its column widens the column first: the COPY in progress is finished,
// the column is altered (at most twice per column: integer → numeric → text), and a new COPY goes
// on. A column never narrows, so each row is written once.
import { once } from 'node:events'
import type { Writable } from 'node:stream'
import type { TransactionSql } from 'postgres'
import type { Sql } from '../db/pool.ts'
import type { RowSource, Row } from './sources.ts'
import { fits, SQL_TYPES, toCopyField, typeOf, typeOfJson, widen, type ColumnType, type Value } from './types.ts'

export interface Column { position: number, name: string, type: ColumnType, nullable: boolean }

export interface ImportResult { rows: number, columns: Column[] }

export interface ImportOptions {
  /** Called every PROGRESS_ROWS rows, with the count so far (for "rows so far" while importing). */
  onProgress?: (rows: number) => Promise<void>
}

const SAMPLE_ROWS = 1_000
const CHUNK_CHARS = 256 * 1024
const PROGRESS_ROWS = 50_000

/** The table of a data set. Its name is built from the numeric id only. */
export function rowsTable (sql: Sql | TransactionSql, datasetId: number) {
  return sql(`dataset_rows.ds_${datasetId}`)
}

/** Physical column names: c1..cN. User-given names never reach SQL. */
export function physical (position: number): string {
  return `c${position + 1}`
}

export async function importRows (tx: TransactionSql, datasetId: number, source: RowSource, options: ImportOptions = {}): Promise<ImportResult> {
  // Timestamps without a zone are UTC, whatever the server's setting.
  await tx`set local timezone to 'UTC'`
  const table = rowsTable(tx, datasetId)
  const typeOfValue = source.valueKind === 'json' ? typeOfJson : typeOf
  const types: Array<ColumnType | null> = []
  const nullable: boolean[] = []

  // Read the sample with next(): breaking out of a for-await would close the generator.
  const batches = source.batches()
  const sample: Row[] = []
  while (sample.length < SAMPLE_ROWS) {
    const next = await batches.next()
    if (next.done === true) break
    sample.push(...next.value)
  }
  for (const { values } of sample) {
    for (let index = 0; index < source.columns.length; index++) types[index] = widen(types[index] ?? null, typeOfValue(values[index]))
  }
  // A column with nothing but missing values in the sample starts as text (the widest).
  const created = source.columns.map((_, index) => types[index] ?? 'text')
  created.forEach((type, index) => { types[index] = type })
  const definitions = ['_row bigint not null', ...created.map((type, index) => `${physical(index)} ${SQL_TYPES[type]}`)]
  await tx`create table ${table} (${tx.unsafe(definitions.join(', '))})`

  let copy: Writable | undefined
  let chunk = ''
  let rows = 0
  const columnList = (): string => ['_row', ...types.map((_, index) => physical(index))].join(', ')
  const openCopy = async (): Promise<Writable> => await tx.unsafe(`copy dataset_rows.ds_${datasetId} (${columnList()}) from stdin`).writable()
  const flush = async (): Promise<void> => {
    if (chunk === '' || copy === undefined) return
    const ok = copy.write(chunk)
    chunk = ''
    if (!ok) await once(copy, 'drain')
  }
  const closeCopy = async (): Promise<void> => {
    await flush()
    if (copy === undefined) return
    const closing = copy
    copy = undefined
    await new Promise<void>((resolve, reject) => {
      closing.once('error', reject)
      closing.end(resolve)
    })
  }
  /** Changes the table under the COPY: finish it, alter, start a new one. */
  const alter = async (change: () => Promise<unknown>): Promise<void> => {
    await closeCopy()
    await change()
    copy = await openCopy()
  }

  /**
   * Appends the rows to the COPY chunk, synchronously while every value fits; returns the index
   * of the first row that needs its table changed (a new or wider column), or -1 when all fit.
   */
  const appendRows = (batch: Row[], from: number): number => {
    const width = source.columns.length
    for (let at = from; at < batch.length; at++) {
      const values = batch[at]!.values
      if (width > types.length) return at
      let line = String(rows + 1)
      for (let index = 0; index < width; index++) {
        const value = values[index]
        const type = types[index]!
        if (value === null || value === undefined || value === '') {
          nullable[index] = true
          line += '\t\\N'
        } else if (fits(type, value, source.valueKind)) {
          line += '\t' + toCopyField(value, type)
        } else {
          return at
        }
      }
      chunk += line + '\n'
      rows++
    }
    return -1
  }

  /** Makes the table hold every value of `values`: new columns, wider types. */
  const accommodate = async (values: Value[]): Promise<void> => {
    for (let index = 0; index < source.columns.length; index++) {
      const type = typeOfValue(values[index])
      const current = types[index]
      if (current === undefined) {
        // A key first seen in a later JSON object: a new column, null in the rows before.
        const added = type ?? 'text'
        types[index] = added
        nullable[index] = rows > 0 || type === null
        await alter(async () => await tx`alter table ${table} add column ${tx(physical(index))} ${tx.unsafe(SQL_TYPES[added])}`)
      } else if (type !== null && widen(current, type) !== current) {
        const wider = widen(current, type)!
        types[index] = wider
        const column = tx(physical(index))
        await alter(async () => await tx`alter table ${table} alter column ${column} type ${tx.unsafe(SQL_TYPES[wider])} using ${column}::${tx.unsafe(SQL_TYPES[wider])}`)
      }
    }
  }

  const writeBatch = async (batch: Row[]): Promise<void> => {
    const before = rows
    for (let from = 0; from < batch.length;) {
      const stopped = appendRows(batch, from)
      if (stopped === -1) break
      await accommodate(batch[stopped]!.values)
      from = stopped
    }
    if (chunk.length >= CHUNK_CHARS) await flush()
    if (Math.floor(rows / PROGRESS_ROWS) > Math.floor(before / PROGRESS_ROWS)) await options.onProgress?.(rows)
  }

  copy = await openCopy()
  try {
    await writeBatch(sample)
    for (let next = await batches.next(); next.done !== true; next = await batches.next()) await writeBatch(next.value)
    await closeCopy()
  } finally {
    copy?.destroy()
  }
  await tx`alter table ${table} add primary key (_row)`
  return {
    rows,
    columns: source.columns.map((name, position) => ({ position, name, type: types[position] ?? 'text', nullable: nullable[position] === true })),
  }
}
