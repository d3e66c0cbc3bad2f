// GET /products and GET /products/{id} through the real app, once with each catalog store.
import assert from 'node:assert/strict'
import { after, describe, it } from 'node:test'
import type { App } from '../src/app.ts'
import { buildTestApp } from './helpers/app.ts'
import { createTestMongoCatalog } from './helpers/mongo.ts'
import { skipWithoutMongo } from './helpers/requirements.ts'

const COUNT = 25

const postgres = await buildTestApp({ after })
await postgres.catalog.seedProducts({ count: COUNT, seed: 1 })

const setups: Array<{ name: string, store: 'postgres' | 'mongodb', app: App, missingId: string, otherStoresId: string }> = [
  { name: 'PostgreSQL', store: 'postgres', app: postgres.app, missingId: '4242', otherStoresId: '65a1b2c3d4e5f60718293a4b' },
]
const mongoSkip = skipWithoutMongo()
if (mongoSkip === false) {
  const mongoCatalog = await createTestMongoCatalog({ after })
  await mongoCatalog.seedProducts({ count: COUNT, seed: 1 })
  const mongo = await buildTestApp({ after }, {}, { catalog: mongoCatalog })
  setups.push({ name: 'MongoDB', store: 'mongodb', app: mongo.app, missingId: 'ffffffffffffffffffffffff', otherStoresId: '17' })
} else {
  describe('/products (MongoDB store)', { skip: mongoSkip }, () => {})
}

interface Injected { statusCode: number, headers: Record<string, string | string[] | number | undefined>, json: () => any, body: string }

function nextLink (response: Injected): string | undefined {
  return /^<([^>]+)>; rel="next"$/.exec(String(response.headers.link ?? ''))?.[1]
}

async function followLinks (app: App, first: string): Promise<{ ids: string[], pages: number, products: any[] }> {
  const products: any[] = []
  let next: string | undefined = first
  let pages = 0
  while (next !== undefined) {
    const response: Injected = await app.inject({ url: next })
    assert.equal(response.statusCode, 200, response.body)
    products.push(...response.json())
    next = nextLink(response)
    pages++
  }
  return { ids: products.map((product: { id: string }) => product.id), pages, products }
}

function assertProblem (response: Injected, status: number, type: string): any {
  assert.equal(response.statusCode, status, response.body)
  assert.match(String(response.headers['content-type']), /^application\/problem\+json/)
  assert.equal(response.json().type, type)
  return response.json()
}

for (const { name, store, app, missingId, otherStoresId } of setups) {
  describe(`GET /products (${name} store)`, () => {
    it('returns an array of 10 products in the lesson\'s shape, with a next link', async () => {
      const response = await app.inject({ url: '/products' })
      assert.equal(response.statusCode, 200)
      const products = response.json()
      assert.ok(Array.isArray(products))
      assert.equal(products.length, 10)
      for (const product of products) {
        assert.deepEqual(Object.keys(product).sort(), ['category', 'created_at', 'id', 'name', 'price', 'tags'])
        assert.equal(typeof product.id, 'string')
        assert.equal(typeof product.price, 'number')
        assert.ok(Array.isArray(product.tags))
        assert.equal(new Date(product.created_at).toISOString(), product.created_at)
      }
      assert.equal(response.headers.link, `</products?limit=10&after=${products[9].id}>; rel="next"`)
    })

    it('pages through every product exactly once by following Link', async () => {
      const { ids, pages } = await followLinks(app, '/products?limit=7')
      assert.equal(ids.length, COUNT)
      assert.equal(new Set(ids).size, COUNT, 'no duplicates')
      assert.equal(pages, 4, 'no empty last page')
      const all = (await app.inject({ url: '/products?limit=100' })).json()
      assert.deepEqual(ids, all.map((product: { id: string }) => product.id), 'the same order as one big page')
      assert.equal((await app.inject({ url: '/products?limit=100' })).headers.link, undefined, 'no next link after the last page')
    })

    it('filters by category, and the next link keeps the filter', async () => {
      const all = (await app.inject({ url: '/products?limit=100' })).json()
      const category = all[0].category as string
      const expected = all.filter((product: { category: string }) => product.category === category).map((product: { id: string }) => product.id)
      assert.ok(expected.length >= 3, 'the sample has a few products of this category')
      const first = await app.inject({ url: `/products?limit=2&category=${category}` })
      assert.match(String(first.headers.link), new RegExp(`^</products\\?limit=2&category=${category}&after=`))
      const { ids, products } = await followLinks(app, `/products?limit=2&category=${category}`)
      assert.deepEqual(ids, expected)
      assert.ok(products.every((product) => product.category === category))
    })

    it('encodes the category in the next link', async () => {
      const response = await app.inject({ url: '/products?limit=1&category=kitchen%20%26%20bath' })
      assert.equal(response.statusCode, 200)
      assert.deepEqual(response.json(), [], 'no such category in the sample')
    })

    it('answers a category with a NUL character with a 4xx problem, never a 500 (found by schemathesis)', async () => {
      const response = await app.inject({ url: '/products?category=a%00b' })
      // PostgreSQL cannot hold NUL in text (400); MongoDB can, and simply finds nothing.
      if (store === 'postgres') assertProblem(response, 400, '/problems/bad-request')
      else assert.equal(response.statusCode, 200)
    })

    for (const query of ['limit=0', 'limit=101', 'limit=x', 'category=', `after=${otherStoresId}`, 'after=abc']) {
      it(`refuses ${query} with a 400 problem naming the parameter`, async () => {
        const body = assertProblem(await app.inject({ url: `/products?${query}` }), 400, '/problems/validation-error')
        assert.equal(body.errors[0].in, 'querystring')
        assert.equal(body.errors[0].pointer, `/${query.split('=')[0]}`)
      })
    }
  })

  describe(`GET /products/{id} (${name} store)`, () => {
    it('returns the product with that id', async () => {
      const [, second] = (await app.inject({ url: '/products?limit=2' })).json()
      const response = await app.inject({ url: `/products/${second.id}` })
      assert.equal(response.statusCode, 200)
      assert.deepEqual(response.json(), second)
    })

    it('answers a well-formed id that no product has with a 404 problem', async () => {
      const body = assertProblem(await app.inject({ url: `/products/${missingId}` }), 404, '/problems/not-found')
      assert.equal(body.detail, `There is no product ${missingId}.`)
    })

    for (const bad of ['abc', otherStoresId, '-1', '1.5', '1e3', '%20']) {
      it(`answers the malformed id ${JSON.stringify(bad)} with a 400 problem naming id`, async () => {
        const body = assertProblem(await app.inject({ url: `/products/${bad}` }), 400, '/problems/validation-error')
        assert.deepEqual(body.errors.map((error: { in: string, pointer: string }) => [error.in, error.pointer]), [['params', '/id']])
      })
    }

    it('answers an over-long or undecodable id with a 400 problem too', async () => {
      for (const bad of ['x'.repeat(300), '%zz']) {
        const response = await app.inject({ url: `/products/${bad}`, headers: { 'x-request-id': 'req-long-id' } })
        const body = assertProblem(response, 400, '/problems/bad-request')
        assert.equal(body.request_id, 'req-long-id')
        assert.equal(response.headers['x-request-id'], 'req-long-id')
      }
    })
  })

  describe(`/readyz (${name} store)`, () => {
    it('reports the catalog store', async () => {
      const response = await app.inject({ url: '/readyz' })
      assert.equal(response.statusCode, 200)
      const { checks } = response.json()
      assert.equal(checks.database.status, 'up')
      assert.equal(checks.catalog.status, 'up')
      assert.equal(checks.catalog.store, store)
      assert.equal(typeof checks.catalog.latency_ms, 'number')
    })
  })
}
