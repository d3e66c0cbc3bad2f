// What a view of a data set's rows costs a scan to learn — its exact total, its facets — kept in
// memory by data set version and question: paging through a filtered view, or many clients
// reading the same one, costs one count and one scan per facet, not one per page.
//
// The version is the data set's `updated_at` and row count, which every change of its rows moves
// and every process's metadata cache hears of (metadata-cache.ts): an entry of an older version is
// never read again, and the oldest entries go first past MAX_ENTRIES.
import { createHash } from 'node:crypto'
import type { Dataset } from './schemas.ts'
import type { DataQuery } from './view.ts'

const MAX_ENTRIES = 10_000

export class ViewCache<T> {
  readonly #entries = new Map<string, T>()

  /** The key of `what` (a count, a facet…) of a selection (filters and search): a digest, however long the values. */
  static key (dataset: Dataset, view: DataQuery, what: unknown): string {
    return createHash('sha256').update(JSON.stringify([dataset.id, new Date(dataset.updated_at).getTime(), dataset.rows, view.selection, what])).digest('base64url')
  }

  get (key: string): T | undefined {
    return this.#entries.get(key)
  }

  set (key: string, value: T): void {
    this.#entries.delete(key)
    if (this.#entries.size >= MAX_ENTRIES) this.#entries.delete(this.#entries.keys().next().value!)
    this.#entries.set(key, value)
  }

  delete (key: string): void {
    this.#entries.delete(key)
  }
}
