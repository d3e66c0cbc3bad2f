// The products area's models: a product (the source of its type) and the catalog store interface
// both stores implement. The id format depends on the store chosen at start, so the request
// schemas are built from it: a malformed id is refused by validation (400) in either store.
import Type, { type Static } from 'typebox'
import { DateTime } from '../../lib/schemas.ts'

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
  /** `errorMessage`: what a refusal of a malformed id says (lib/errors.ts), instead of the pattern. */
  readonly idFormat: { pattern: string, description: string, errorMessage: string }
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


export const ID_RULES = 'Ids are strings: with the PostgreSQL store (the default) a positive decimal integer such as `17`; ' +
  'with MongoDB (`MONGODB_URL`) an ObjectId, 24 lowercase hex digits. A malformed id is a 400 validation problem, ' +
  'a well-formed id that no product has a 404.'

export function productIdSchema (catalog: CatalogStore, description = catalog.idFormat.description) {
  return Type.String({ pattern: catalog.idFormat.pattern, errorMessage: catalog.idFormat.errorMessage, description })
}

export function productPageQuery (catalog: CatalogStore) {
  return Type.Object({
    limit: Type.Integer({ minimum: 1, maximum: 100, default: 10 }),
    category: Type.Optional(Type.String({ minLength: 1, maxLength: 100, description: 'Only products of this category (exact match)' })),
    after: Type.Optional(productIdSchema(catalog, 'Return products whose id sorts after this one: the last id of the previous page')),
  })
}
