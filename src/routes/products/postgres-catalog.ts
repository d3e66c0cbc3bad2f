// The default catalog store: the `products` table (migration 0004) on the shared postgres.js pool.
// Ids are bigints, exposed as decimal strings so both stores share one id type.
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import type { TransactionSql } from 'postgres'
import type { Sql } from '../../db/pool.ts'
import { firstFreeId } from '../../db/first-free-id.ts'
import { cancellable } from '../../lib/concurrency.ts'
import { chunks } from '../../lib/sample-data.ts'
import type { CatalogStore, Product, SeedProductsOptions, SeedProductsResult } from './schemas.ts'
import { sampleProduct } from './sample-products.ts'

const ID_PATTERN = /^[1-9][0-9]{0,18}$/
const MAX_BIGINT = 9_223_372_036_854_775_807n

/** The id as a bigint literal, or undefined when it is malformed or beyond bigint (no product has it). */
function asBigint (id: string): string | undefined {
  return ID_PATTERN.test(id) && BigInt(id) <= MAX_BIGINT ? id : undefined
}

export function createPostgresCatalog (sql: Sql): CatalogStore {
  const columns = sql`id::text as id, name, price::float8 as price, category, tags, created_at`
  // Rows as plain arrays of plain objects, whatever the driver's result type.
  const plain = (rows: readonly Product[]): Product[] => rows.map((row) => ({ ...row }))
  return {
    kind: 'postgres',
    idFormat: { pattern: ID_PATTERN.source, description: 'A product id: a positive integer written in decimal', errorMessage: 'must be a positive whole number (at most 19 digits)' },

    async listProducts ({ limit, after, category }, signal) {
      const afterId = after === undefined ? '0' : asBigint(after)
      if (afterId === undefined) return [] // past the largest possible id
      // `products.id`, not `id`: that would be the text column of the select list, sorting 10 before 9.
      return plain(await cancellable(sql<Product[]>`
        select ${columns} from products
        where id > ${afterId} ${category === undefined ? sql`` : sql`and category = ${category}`}
        order by products.id limit ${limit}`, signal))
    },

    async findProduct (id, signal) {
      const productId = asBigint(id)
      if (productId === undefined) return undefined
      const [product] = plain(await cancellable(sql<Product[]>`select ${columns} from products where id = ${productId}`, signal))
      return product
    },

    async ping (signal) {
      await cancellable(sql`select 1`, signal)
    },

    async seedProducts (options) {
      return await sql.begin(async (tx) => await insertSampleProducts(tx, options))
    },

    async close () {
      // The pool belongs to the database, which closes it.
    },
  }
}

/** Appends sample products with COPY; product number n gets id n. Also used by the demo seed. */
export async function insertSampleProducts (tx: TransactionSql, { count, seed = 42 }: SeedProductsOptions): Promise<SeedProductsResult> {
  const started = performance.now()
  const firstNumber = await firstFreeId(tx, 'products')
  const line = (index: number): string => {
    const number = firstNumber + index
    const product = sampleProduct(number, seed)
    // Names and tags are plain words from fixed lists: nothing to escape for COPY or array syntax.
    return `${number}\t${product.name}\t${product.price.toFixed(2)}\t${product.category}\t{${product.tags.join(',')}}\t${product.created_at.toISOString()}\n`
  }
  await pipeline(Readable.from(chunks(count, line)), await tx`copy products (id, name, price, category, tags, created_at) from stdin`.writable())
  // Ids were given explicitly; move the identity past them so plain inserts go on working.
  if (count > 0) await tx`select setval(pg_get_serial_sequence('products', 'id'), (select max(id) from products))`
  return { products: count, firstNumber, ms: Math.round(performance.now() - started) }
}
