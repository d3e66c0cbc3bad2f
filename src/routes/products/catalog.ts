// The product catalog behind /products: one interface (schemas.ts), two stores. PostgreSQL is the
// default (the embedded server, so `npm start` needs nothing else); MongoDB when MONGODB_URL is
// set. The store is chosen once at start; routes and seeds only see the interface.
import type { Logger } from 'pino'
import type { Config } from '../../config.ts'
import type { Sql } from '../../db/pool.ts'
import { createPostgresCatalog } from './postgres-catalog.ts'
import type { CatalogStore } from './schemas.ts'

/** The configured store: MongoDB when MONGODB_URL is set, else PostgreSQL on the shared pool. */
export async function openCatalogStore (mongodb: Config['mongodb'], sql: Sql, logger: Logger): Promise<CatalogStore> {
  if (mongodb.url === undefined) return createPostgresCatalog(sql)
  // Loaded only when used: the driver costs ~35 MB of memory that a PostgreSQL-only service saves.
  const { createMongoCatalog } = await import('./mongo-catalog.ts')
  const store = createMongoCatalog({ url: mongodb.url, timeoutMs: mongodb.timeoutMs })
  // The service starts even while MongoDB is down (/readyz and /products say so, and recover with
  // it); the index is then created by the next start or seed.
  await store.ensureIndexes().catch((error: unknown) => {
    logger.warn({ err: error }, 'MongoDB did not answer at start; the catalog index was not checked')
  })
  return store
}
