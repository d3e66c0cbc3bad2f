// A COPY never shares its connection: postgres.js pipelines a query of the pool onto a busy
// connection, and one in COPY then fails the query (COPY_IN_PROGRESS). Found in CI as a 500 of
// GET /datasets/{id} beside a stored upload. A pool of one connection, busy with a query when the
// COPY comes, makes the COPY and the queries after it share that connection.
import assert from 'node:assert/strict'
import { after, describe, it } from 'node:test'
import { createDatasetsRepository } from '../src/routes/datasets/repository.ts'
import { openTestDatabase } from './helpers/database.ts'

const database = await openTestDatabase({ max: 1 })
after(async () => { await database.close() })

describe('COPY on a pool of one connection', () => {
  it('stores and reads upload pieces while other queries of the pool run, each answered', async () => {
    const datasets = createDatasetsRepository(database.sql)
    const uploadId = '6f1c2a4e-0d3b-4c5a-9e7f-1a2b3c4d5e6f'
    const piece = Buffer.alloc(1_048_576, 'x')
    const others = async (): Promise<number[]> => await Promise.all(Array.from({ length: 10 }, async (_, index) => (await database.sql<[{ n: number }]>`select ${index}::int as n`)[0].n))
    const busy = async (): Promise<unknown> => await database.sql`select pg_sleep(0.2)`
    const [, , during] = await Promise.all([busy(), datasets.storePiece(uploadId, 0, piece), others()])
    assert.deepEqual(during, Array.from({ length: 10 }, (_, index) => index))
    const [, read, again] = await Promise.all([busy(), datasets.readPiece(uploadId, 0), others()])
    assert.equal(read?.equals(piece), true)
    assert.equal(again.length, 10)
    await datasets.deletePieces(uploadId)
  })
})
