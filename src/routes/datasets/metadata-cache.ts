// The metadata of ready data sets (the row and its columns), kept in memory so that a page of rows
// or an export costs one query, not three. An entry is dropped when PostgreSQL announces a change
// of its data set (migration 0007: any process's change, at commit), and nothing is kept while no
// announcement can arrive (before LISTEN is in effect, or after its connection dropped): then
// every read goes to the database, as without a cache.
//
// A read that started before a change and ends after it would put back what it read; each id's
// count of changes, taken before the read and compared after, keeps that out. A data set that is
// still importing or failed is not kept: its progress and error change by the second.
import type { ListenHandlers } from '../../db/listener.ts'
import type { Dataset, DatasetColumn } from './schemas.ts'

/** The channel the migration's triggers notify, with the data set's id as payload. */
export const DATASET_CHANGED = 'dataset_changed'

export interface DatasetMetadata { dataset: Dataset, columns: DatasetColumn[] }

const MAX_ENTRIES = 10_000

export class MetadataCache implements ListenHandlers {
  readonly #entries = new Map<number, DatasetMetadata>()
  /** Changes heard per id while a read of it was running (only ids being read are counted). */
  readonly #changes = new Map<number, number>()
  readonly #reading = new Map<number, number>()
  #live = false
  /** Bumped when the whole cache is dropped: a read started before then is not kept. */
  #epoch = 0

  /** The metadata of `id`: from memory, or from `read` (kept when ready and nothing changed meanwhile). */
  async get (id: number, read: () => Promise<DatasetMetadata | undefined>): Promise<DatasetMetadata | undefined> {
    const kept = this.#entries.get(id)
    if (kept !== undefined) return kept
    if (!this.#live) return await read()
    const epoch = this.#epoch
    this.#reading.set(id, (this.#reading.get(id) ?? 0) + 1)
    const changesBefore = this.#changes.get(id) ?? 0
    try {
      const found = await read()
      if (found?.dataset.status === 'ready' && this.#live && epoch === this.#epoch && (this.#changes.get(id) ?? 0) === changesBefore) {
        if (this.#entries.size >= MAX_ENTRIES) this.#entries.delete(this.#entries.keys().next().value!)
        this.#entries.set(id, found)
      }
      return found
    } finally {
      const readers = this.#reading.get(id)! - 1
      if (readers === 0) {
        this.#reading.delete(id)
        this.#changes.delete(id)
      } else {
        this.#reading.set(id, readers)
      }
    }
  }

  /** Drops what is kept of `id` (this process's own changes, before their announcement arrives). */
  forget (id: number): void {
    this.#entries.delete(id)
    if (this.#reading.has(id)) this.#changes.set(id, (this.#changes.get(id) ?? 0) + 1)
  }

  notify (payload: string): void {
    const id = Number(payload)
    if (Number.isSafeInteger(id)) this.forget(id)
    else this.#dropAll()
  }

  listening (): void {
    this.#dropAll()
    this.#live = true
  }

  lost (): void {
    this.#live = false
    this.#dropAll()
  }

  #dropAll (): void {
    this.#entries.clear()
    this.#epoch++
  }
}
