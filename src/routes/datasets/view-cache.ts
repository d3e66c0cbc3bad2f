// What a view of a data set's rows costs a scan to learn — its exact total, its facets — kept in
// memory by data set version and question: paging through a filtered view, or many clients
// reading the same one, costs one count and one scan per facet, not one per page.
//
// The version is the data set's `updated_at` and row count, which every change of its rows moves
// and every process's metadata cache hears of (metadata-cache.ts): an entry of an older version is
// never read again. The cache holds at most `maxBytes` (by `sizeOf`), the oldest entries going
// first; an entry larger than a sixteenth of that is not kept.
import { createHash } from 'node:crypto'
import type { Dataset } from './schemas.ts'
import type { DataQuery } from './view.ts'

/** Bytes of an entry beside its value: the key and the map's own. */
const ENTRY_BYTES = 200

export class ViewCache<T> {
  readonly #entries = new Map<string, { value: T, bytes: number }>()
  readonly #maxBytes: number
  readonly #sizeOf: (value: T) => number
  #bytes = 0

  constructor ({ maxBytes, sizeOf = () => 0 }: { maxBytes: number, sizeOf?: (value: T) => number }) {
    this.#maxBytes = maxBytes
    this.#sizeOf = sizeOf
  }

  /** The key of `what` (a count, a facet…) of a selection (filters and search): a digest, however long the values. */
  static key (dataset: Dataset, view: DataQuery, what: unknown): string {
    return createHash('sha256').update(JSON.stringify([dataset.id, new Date(dataset.updated_at).getTime(), dataset.rows, view.selection, what])).digest('base64url')
  }

  get (key: string): T | undefined {
    return this.#entries.get(key)?.value
  }

  set (key: string, value: T): void {
    this.#drop(key)
    const bytes = ENTRY_BYTES + this.#sizeOf(value)
    if (bytes > this.#maxBytes / 16) return
    while (this.#bytes + bytes > this.#maxBytes) this.#drop(this.#entries.keys().next().value!)
    this.#entries.set(key, { value, bytes })
    this.#bytes += bytes
  }

  #drop (key: string): void {
    const found = this.#entries.get(key)
    if (found === undefined) return
    this.#entries.delete(key)
    this.#bytes -= found.bytes
  }
}
