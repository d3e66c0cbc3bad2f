// Request schemas of /products. The id format depends on the store chosen at start, so the schemas
// are built from it: a malformed id is refused by validation (400) in either store.
import Type from 'typebox'
import type { CatalogStore } from '../../stores/catalog.ts'

export const ID_RULES = 'Ids are strings: with the PostgreSQL store (the default) a positive decimal integer such as `17`; ' +
  'with MongoDB (`MONGODB_URL`) an ObjectId, 24 lowercase hex digits. A malformed id is a 400 validation problem, ' +
  'a well-formed id that no product has a 404.'

export function productIdSchema (catalog: CatalogStore, description = catalog.idFormat.description) {
  return Type.String({ pattern: catalog.idFormat.pattern, description })
}

export function productPageQuery (catalog: CatalogStore) {
  return Type.Object({
    limit: Type.Integer({ minimum: 1, maximum: 100, default: 10 }),
    category: Type.Optional(Type.String({ minLength: 1, maxLength: 100, description: 'Only products of this category (exact match)' })),
    after: Type.Optional(productIdSchema(catalog, 'Return products whose id sorts after this one: the last id of the previous page')),
  })
}
