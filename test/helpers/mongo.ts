// Each test file that needs MongoDB gets a database of its own on the server that global-setup.ts
// provides (FerretDB, or the MONGODB_URL you gave), dropped when the file is done.
import { randomBytes } from 'node:crypto'
import { MongoClient } from 'mongodb'
import { createMongoCatalog, type MongoCatalog } from '../../src/routes/products/mongo-catalog.ts'
import type { Cleanup } from './database.ts'

export function testMongoUrl (): string {
  const url = process.env.TEST_MONGODB_URL
  if (url === undefined) throw new Error('TEST_MONGODB_URL is not set: run the tests with `npm test`')
  return url
}

/** `url` with its database path replaced by `name` (hosts and query options kept). */
export function withDatabase (url: string, name: string): string {
  return url.replace(/^(mongodb(?:\+srv)?:\/\/[^/?]+)(\/[^?]*)?/, `$1/${name}`)
}

/** A fresh database name, dropped after the test (file). */
export function createTestMongoDatabase (t: Cleanup, url = testMongoUrl()): string {
  const name = newDatabaseName()
  t.after(async () => { await dropDatabase(url, name) })
  return name
}

/** The MongoDB catalog store on a fresh database, closed and dropped after the test (file). */
export async function createTestMongoCatalog (t: Cleanup, { url = testMongoUrl(), timeoutMs = 5_000 } = {}): Promise<MongoCatalog> {
  const databaseName = newDatabaseName()
  const catalog = createMongoCatalog({ url, timeoutMs, databaseName })
  t.after(async () => {
    await catalog.close()
    await dropDatabase(url, databaseName)
  })
  await catalog.ensureIndexes()
  return catalog
}

function newDatabaseName (): string {
  return `data_api_test_${randomBytes(6).toString('hex')}`
}

async function dropDatabase (url: string, name: string): Promise<void> {
  const client = new MongoClient(url, { serverSelectionTimeoutMS: 5_000 })
  try {
    await client.db(name).dropDatabase()
  } finally {
    await client.close()
  }
}
