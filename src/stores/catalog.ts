// The product catalog behind /products: one interface, two stores. PostgreSQL is the default (the
// embedded server, so `npm start` needs nothing else); MongoDB when MONGODB_URL is set. The store
// is chosen once at start; routes and seeds only see this interface.
import type { Logger } from 'pino'
import Type, { type Static } from 'typebox'
import type { Config } from '../config.ts'
import type { Sql } from '../db/pool.ts'
import { DateTime } from '../lib/schemas.ts'
import { createPostgresCatalog } from './postgres-catalog.ts'

export const Product = Type.Object({
  id: Type.String({ description: 'Opaque string id: decimal digits with the PostgreSQL store, an ObjectId (24 hex digits) with MongoDB' }),
  name: Type.String(),
  price: Type.Number({ minimum: 0 }),
  category: Type.String(),
  tags: Type.Array(Type.String()),
  created_at: DateTime,
}, { $id: 'Product' })

export type Product = Static<typeof Product>

export interface ProductPageQuery {
  limit: number
  /** Only products whose id sorts after this one (the last id of the previous page). */
  after?: string
  category?: string
}

export interface SeedProductsOptions { count: number, seed?: number }
export interface SeedProductsResult { products: number, firstNumber: number, ms: number }

export type CatalogStoreKind = 'postgres' | 'mongodb'

export interface CatalogStore {
  readonly kind: CatalogStoreKind
  /** What a well-formed id of this store looks like; routes answer anything else with a 400. */
  readonly idFormat: { pattern: string, description: string }
  /** A page in ascending id order. */
  listProducts: (query: ProductPageQuery, signal: AbortSignal) => Promise<Product[]>
  /** undefined when no product has this id (a malformed id included). */
  findProduct: (id: string, signal: AbortSignal) => Promise<Product | undefined>
  /** Resolves when the store answers (readiness). */
  ping: (signal: AbortSignal) => Promise<void>
  /** Appends deterministic sample products numbered after the ones already seeded. */
  seedProducts: (options: SeedProductsOptions) => Promise<SeedProductsResult>
  /** Releases what the store opened itself (the MongoDB client); the PostgreSQL pool is not its own. */
  close: () => Promise<void>
}

/** The configured store: MongoDB when MONGODB_URL is set, else PostgreSQL on the shared pool. */
export async function openCatalogStore (config: Config, sql: Sql, logger: Logger): Promise<CatalogStore> {
  if (config.MONGODB_URL === undefined) return createPostgresCatalog(sql)
  // Loaded only when used: the driver costs ~35 MB of memory that a PostgreSQL-only service saves.
  const { createMongoCatalog } = await import('./mongo-catalog.ts')
  const store = createMongoCatalog({ url: config.MONGODB_URL, timeoutMs: config.MONGODB_TIMEOUT_MS })
  // The service starts even while MongoDB is down (/readyz and /products say so, and recover with
  // it); the index is then created by the next start or seed.
  await store.ensureIndexes().catch((error: unknown) => {
    logger.warn({ err: error }, 'MongoDB did not answer at start; the catalog index was not checked')
  })
  return store
}
