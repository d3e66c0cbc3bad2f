// Data-set metadata kept in memory: a page of a ready data set costs no query of the metadata
// tables, and no process serves what another one changed. Two apps share one database here, as two
// processes of `serve --processes` do; each listens for changes on its own connection.
import assert from 'node:assert/strict'
import { after, describe, it } from 'node:test'
import { createApiKeysRepository } from '../src/auth/api-keys.ts'
import { MetadataCache, type DatasetMetadata } from '../src/routes/datasets/metadata-cache.ts'
import type { Dataset } from '../src/routes/datasets/schemas.ts'
import { buildTestApp, listen } from './helpers/app.ts'
import { createTestDatabase } from './helpers/database.ts'
import { json, until } from './helpers/http.ts'

const ANSWER_WITHIN_MS = 30_000
const PROBE_MS = 1_000

describe('MetadataCache', () => {
  const entry = (id: number, status: Dataset['status'] = 'ready'): DatasetMetadata => ({ dataset: { id, status } as Dataset, columns: [] })
  const counting = (found: DatasetMetadata | undefined): { read: () => Promise<DatasetMetadata | undefined>, reads: () => number } => {
    let reads = 0
    return { read: async () => { reads++; return found }, reads: () => reads }
  }

  it('keeps nothing until it listens, and nothing after its connection is lost', async () => {
    const cache = new MetadataCache()
    const source = counting(entry(1))
    await cache.get(1, source.read)
    await cache.get(1, source.read)
    assert.equal(source.reads(), 2)
    cache.listening()
    await cache.get(1, source.read)
    await cache.get(1, source.read)
    assert.equal(source.reads(), 3)
    cache.lost()
    await cache.get(1, source.read)
    await cache.get(1, source.read)
    assert.equal(source.reads(), 5)
  })

  it('drops an entry on its announcement, and keeps only ready data sets', async () => {
    const cache = new MetadataCache()
    cache.listening()
    const ready = counting(entry(1))
    await cache.get(1, ready.read)
    cache.notify('2')
    await cache.get(1, ready.read)
    assert.equal(ready.reads(), 1)
    cache.notify('1')
    await cache.get(1, ready.read)
    assert.equal(ready.reads(), 2)
    const importing = counting(entry(3, 'importing'))
    await cache.get(3, importing.read)
    await cache.get(3, importing.read)
    assert.equal(importing.reads(), 2)
    const missing = counting(undefined)
    assert.equal(await cache.get(4, missing.read), undefined)
    await cache.get(4, missing.read)
    assert.equal(missing.reads(), 2)
  })

  it('does not keep a read that a change (or a lost connection) overtook', async () => {
    for (const overtake of [(cache: MetadataCache) => { cache.notify('1') }, (cache: MetadataCache) => { cache.lost(); cache.listening() }]) {
      const cache = new MetadataCache()
      cache.listening()
      let release!: () => void
      const slow = async (): Promise<DatasetMetadata> => { await new Promise<void>((resolve) => { release = resolve }); return entry(1) }
      const reading = cache.get(1, slow)
      overtake(cache)
      release()
      await reading
      const after = counting(entry(1))
      await cache.get(1, after.read)
      assert.equal(after.reads(), 1, 'the overtaken read was kept')
    }
  })
})

describe('metadata of ready data sets across processes', async () => {
  const database = await createTestDatabase({ after })
  const shared = { sql: database.sql, databaseUrl: database.url }
  const [one, other] = await Promise.all([buildTestApp({ after }, {}, shared), buildTestApp({ after }, {}, shared)])
  const [base, otherBase] = await Promise.all([listen(one.app), listen(other.app)])
  const { key } = await createApiKeysRepository(database.sql).create('tests')
  const auth = { authorization: `Bearer ${key}` }

  const createDataset = async (name: string): Promise<number> => {
    const response = await fetch(`${base}/datasets?name=${name}`, { method: 'POST', headers: { ...auth, 'content-type': 'text/csv' }, body: 'id,t\n1,a\n2,b\n' })
    assert.equal(response.status, 201)
    return (await json(response)).dataset.id
  }
  const status = async (url: string, timeoutMs = ANSWER_WITHIN_MS): Promise<number> => (await fetch(url, { signal: AbortSignal.timeout(timeoutMs) }).then(async (response) => { await response.arrayBuffer(); return response })).status
  /** The file name an export would be saved under: it carries the data set's name. */
  const exportName = async (url: string): Promise<string | undefined> => {
    const response = await fetch(url)
    await response.arrayBuffer()
    return /filename="([^"]+)"/.exec(response.headers.get('content-disposition') ?? '')?.[1]
  }
  /** Both processes have read (and so keep) the data set's metadata: its rows answer even while the metadata tables are locked. */
  const readByBoth = async (id: number): Promise<void> => {
    await until('both processes to keep the metadata', async () => {
      for (const url of [base, otherBase]) assert.equal(await status(`${url}/datasets/${id}/rows`), 200)
      return await withMetadataLocked(async () => await Promise.all([base, otherBase].map(async (url) => await status(`${url}/datasets/${id}/rows?lock_probe=1`, PROBE_MS).catch(() => 0))))
        .then((answers) => answers.every((code) => code === 400) ? true : undefined)
    })
  }
  /**
   * `work` while another session holds the metadata tables locked: a request that reads them
   * waits (a probe gives up after PROBE_MS, which cancels its query), one served from memory does not.
   */
  const withMetadataLocked = async <T>(work: () => Promise<T>): Promise<T> => {
    let result!: T
    await database.sql.begin(async (tx) => {
      await tx`lock table datasets, dataset_columns in access exclusive mode`
      result = await work()
    })
    return result
  }

  it('serves a page of a ready data set without reading the metadata tables', async () => {
    const id = await createDataset('cached')
    await readByBoth(id) // kept from here on (once each process listens)
    const answers = await withMetadataLocked(async () => await Promise.all([
      fetch(`${base}/datasets/${id}/rows?limit=1`, { signal: AbortSignal.timeout(ANSWER_WITHIN_MS) }).then(async (response) => ({ status: response.status, body: await json(response) })),
      // An unknown column is a 400 from the metadata alone: no query of the rows table either.
      status(`${base}/datasets/${id}/rows?nope=1`),
    ]))
    assert.equal(answers[0].status, 200)
    assert.deepEqual(answers[0].body.rows, [{ id: 1, t: 'a' }])
    assert.equal(answers[1], 400)
  })

  it('answers 404 in every process at once when one of them deletes the data set', async () => {
    const id = await createDataset('deleted')
    await readByBoth(id)
    const removed = await fetch(`${base}/datasets/${id}`, { method: 'DELETE', headers: auth })
    assert.equal(removed.status, 204)
    // No waiting for the announcement: the table is gone, so the kept metadata is not used.
    assert.equal(await status(`${otherBase}/datasets/${id}/rows`), 404)
    assert.equal(await status(`${otherBase}/datasets/${id}/export`), 404)
    assert.equal(await status(`${base}/datasets/${id}/rows`), 404)
  })

  it('sees a change made by anyone (another process, or SQL by hand) once it is committed', async () => {
    const id = await createDataset('before')
    await readByBoth(id)
    assert.equal(await exportName(`${otherBase}/datasets/${id}/export`), 'before.csv')
    await database.sql`update datasets set name = 'after' where id = ${id}`
    for (const url of [base, otherBase]) {
      await until('the new name', async () => await exportName(`${url}/datasets/${id}/export`) === 'after.csv' ? true : undefined)
    }
    await database.sql`update datasets set status = 'failed', error = '{"detail":"by hand"}' where id = ${id}`
    for (const url of [base, otherBase]) await until('the 409', async () => await status(`${url}/datasets/${id}/rows`) === 409 ? true : undefined)
  })

  it('keeps nothing it may have missed while its listening connection was gone', async () => {
    const id = await createDataset('listened')
    await readByBoth(id)
    // Cut every listener of this database, and change the data set before they are back.
    await database.sql`
      select pg_terminate_backend(pid) from pg_stat_activity
      where application_name = 'data-api listener' and datname = current_database()`
    await database.sql`update datasets set name = 'missed' where id = ${id}`
    for (const url of [base, otherBase]) {
      await until('the change made while nobody listened', async () => await exportName(`${url}/datasets/${id}/export`) === 'missed.csv' ? true : undefined)
    }
    // Listening again: pages are served from memory again.
    await readByBoth(id)
  })
})
