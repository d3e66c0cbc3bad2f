// The memory of what views cost a scan to learn (routes/datasets/view-cache.ts): keys that tell
// versions and selections apart (and not the order of filters), and a byte budget kept.
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { ROWS_PARAMETERS } from '../src/routes/datasets/rows.ts'
import type { Dataset, DatasetColumn } from '../src/routes/datasets/schemas.ts'
import { ViewCache } from '../src/routes/datasets/view-cache.ts'
import { DataQuery } from '../src/routes/datasets/view.ts'

const columns: DatasetColumn[] = [{ position: 0, name: 'a', type: 'integer', nullable: true }, { position: 1, name: 'b', type: 'text', nullable: true }]
const dataset = { id: 7, rows: 100, updated_at: new Date('2026-12-02T10:00:00.000Z') } as unknown as Dataset
const view = (query: Record<string, string | string[]>): DataQuery => new DataQuery(columns, query, ROWS_PARAMETERS)

describe('ViewCache', () => {
  it('keys a question by data set version and selection, whatever the order of the filters', () => {
    const key = (d: Dataset, query: Record<string, string | string[]>, what: unknown = 'count'): string => ViewCache.key(d, view(query), what)
    assert.equal(key(dataset, { a__gt: '1', b: 'x' }), key(dataset, { b: 'x', a__gt: '1', _limit: '5', _sort: '-a' }))
    const base = key(dataset, { a__gt: '1' })
    for (const other of [
      key(dataset, { a__gt: '2' }),
      key(dataset, { a__gte: '1' }),
      key(dataset, { a__gt: '1', _q: 'x' }),
      key(dataset, { a__gt: '1' }, ['facet', 0, null, 20]),
      key({ ...dataset, rows: 101 }, { a__gt: '1' }),
      key({ ...dataset, updated_at: new Date('2026-12-02T10:00:00.001Z') }, { a__gt: '1' }),
      key({ ...dataset, id: 8 }, { a__gt: '1' }),
    ]) assert.notEqual(other, base)
    // A value that could be read as two: "x,y" is one value, not two filters.
    assert.notEqual(key(dataset, { b: ['x', 'y'] }), key(dataset, { b: 'x,y' }))
  })

  it('keeps its byte budget, the oldest entries going first, and keeps no entry over a sixteenth of it', () => {
    const cache = new ViewCache<string>({ maxBytes: 16_000, sizeOf: (value) => value.length })
    for (let index = 0; index < 100; index++) cache.set(`k${index}`, 'x'.repeat(800)) // 1,000 bytes each with the entry's own
    const kept = Array.from({ length: 100 }, (_, index) => cache.get(`k${index}`) !== undefined)
    assert.equal(kept.filter(Boolean).length, 16)
    assert.deepEqual(kept.slice(84), Array(16).fill(true), 'the newest')
    cache.set('big', 'x'.repeat(1_000))
    assert.equal(cache.get('big'), undefined)
    cache.set('k99', 'y')
    assert.equal(cache.get('k99'), 'y', 'set again: the new value')
  })
})
