// The catalog store contract, written once and run against both stores: PostgreSQL (the default)
// and MongoDB (FerretDB started by the global setup, or your MONGODB_URL). Sample product n is the
// same in either store, so each store's answers are checked against the generator itself.
import assert from 'node:assert/strict'
import { after, describe, it } from 'node:test'
import type { CatalogStore, Product } from '../src/routes/products/schemas.ts'
import { createPostgresCatalog } from '../src/routes/products/postgres-catalog.ts'
import { sampleProduct } from '../src/routes/products/sample-products.ts'
import { createTestDatabase } from './helpers/database.ts'
import { createTestMongoCatalog } from './helpers/mongo.ts'
import { skipWithoutMongo } from './helpers/requirements.ts'

const SEED = 5
const COUNT = 53
const never = new AbortController().signal

/** Ids of either store as numbers: decimal (PostgreSQL) or 24 hex digits (ObjectId). */
function idValue (id: string): bigint {
  return /^[0-9a-f]{24}$/.test(id) ? BigInt(`0x${id}`) : BigInt(id)
}

function withoutId ({ id: _id, ...rest }: Product): Omit<Product, 'id'> {
  return rest
}

function samples (numbers: number[]): Array<Omit<Product, 'id'>> {
  return numbers.map((number) => sampleProduct(number, SEED))
}

const range = (from: number, to: number): number[] => Array.from({ length: to - from + 1 }, (_, i) => from + i)

async function listAll (store: CatalogStore, { pageSize, category }: { pageSize: number, category?: string }): Promise<{ products: Product[], pages: number }> {
  const products: Product[] = []
  let pages = 0
  for (;;) {
    const page = await store.listProducts({ limit: pageSize, after: products.at(-1)?.id, category }, never)
    pages++
    products.push(...page)
    if (page.length < pageSize) return { products, pages }
  }
}

function describeCatalogContract (name: string, makeStore: () => Promise<CatalogStore>, { missingId, malformedIds, skip = false }: { missingId: string, malformedIds: string[], skip?: string | false }): void {
  describe(`${name} catalog store`, { skip }, async () => {
    const store = await makeStore()
    const seeded = await store.seedProducts({ count: COUNT, seed: SEED })

    it('numbers a first seed from 1', () => {
      assert.deepEqual([seeded.products, seeded.firstNumber], [COUNT, 1])
    })

    it('lists products in ascending id order, `limit` at most', async () => {
      const page = await store.listProducts({ limit: 10 }, never)
      assert.equal(page.length, 10)
      assert.deepEqual(page.map(withoutId), samples(range(1, 10)), 'products 1..10, as generated')
      const ids = page.map((product) => idValue(product.id))
      assert.deepEqual(ids, [...ids].sort((a, b) => (a < b ? -1 : 1)), 'ascending ids')
      assert.equal(new Set(ids).size, 10)
    })

    it('returns fewer than `limit` on the last page', async () => {
      const page = await store.listProducts({ limit: 100 }, never)
      assert.equal(page.length, COUNT)
    })

    it('pages through every product exactly once (keyset on id)', async () => {
      const { products, pages } = await listAll(store, { pageSize: 7 })
      assert.equal(pages, Math.ceil((COUNT + 1) / 7))
      assert.deepEqual(products.map(withoutId), samples(range(1, COUNT)), 'no gaps, no duplicates, in order')
      assert.equal(new Set(products.map((product) => product.id)).size, COUNT)
    })

    it('filters by category, in id order, across pages', async () => {
      const category = sampleProduct(1, SEED).category
      const expected = range(1, COUNT).filter((number) => sampleProduct(number, SEED).category === category)
      assert.ok(expected.length > 3, 'the sample has several products of this category')
      const { products } = await listAll(store, { pageSize: 3, category })
      assert.deepEqual(products.map(withoutId), samples(expected))
    })

    it('answers an unknown category with an empty page', async () => {
      assert.deepEqual(await store.listProducts({ limit: 10, category: 'no-such-category' }, never), [])
    })

    it('finds one product by its id', async () => {
      const [, third] = await store.listProducts({ limit: 2, after: (await store.listProducts({ limit: 1 }, never))[0]!.id }, never)
      assert.ok(third !== undefined)
      assert.deepEqual(await store.findProduct(third.id, never), third)
    })

    it('answers undefined for a well-formed id that no product has', async () => {
      assert.match(missingId, new RegExp(store.idFormat.pattern))
      assert.equal(await store.findProduct(missingId, never), undefined)
    })

    it('refuses malformed ids: the id format rejects them and look-ups find nothing', async () => {
      const pattern = new RegExp(store.idFormat.pattern)
      for (const id of malformedIds) {
        assert.doesNotMatch(id, pattern, `${JSON.stringify(id)} is malformed`)
        assert.equal(await store.findProduct(id, never), undefined)
        assert.deepEqual(await store.listProducts({ limit: 5, after: id }, never), [], 'no page follows a malformed id')
      }
      const [first] = await store.listProducts({ limit: 1 }, never)
      assert.match(first!.id, pattern, 'its own ids match')
    })

    it('answers pings', async () => {
      await store.ping(never)
    })

    it('appends a further seed after the last product', async () => {
      const more = await store.seedProducts({ count: 4, seed: SEED })
      assert.equal(more.firstNumber, COUNT + 1)
      const { products } = await listAll(store, { pageSize: 20 })
      assert.deepEqual(products.map(withoutId), samples(range(1, COUNT + 4)))
    })
  })
}

const commonMalformed = ['', 'abc', '-1', '1.5', ' 1', "1' or '1'='1", '{"$gt":""}']
describeCatalogContract('PostgreSQL', async () => createPostgresCatalog((await createTestDatabase({ after })).sql), {
  missingId: '9223372036854775807',
  malformedIds: [...commonMalformed, '0', '012', '65a1b2c3d4e5f60718293a4b', '99999999999999999999'],
})
describeCatalogContract('MongoDB', async () => await createTestMongoCatalog({ after }), {
  missingId: 'ffffffffffffffffffffffff',
  malformedIds: [...commonMalformed, '17', '65A1B2C3D4E5F60718293A4B', '65a1b2c3d4e5f60718293a4', 'zzzzzzzzzzzzzzzzzzzzzzzz'],
  skip: skipWithoutMongo(),
})
