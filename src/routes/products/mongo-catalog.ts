// The MongoDB catalog store (MONGODB_URL), on the official driver: one MongoClient for the process,
// created at start and closed at shutdown. Every call has a deadline (MONGODB_TIMEOUT_MS) and the
// caller's AbortSignal, so a server that is down or stalled answers a 503 problem, never a hang.
//
// Why our own deadline: the driver's client-side operation timeout (`timeoutMS`) is accepted but
// ignored by mongodb 7.9 ("has no effect"); serverSelectionTimeoutMS and connectTimeoutMS only bound
// finding and dialling a server, not a server that accepts the connection and then stalls.
import { MongoClient, MongoNetworkError, MongoOperationTimeoutError, MongoServerSelectionError, MongoTopologyClosedError, ObjectId, type Collection, type Filter } from 'mongodb'
import { withDeadline, type Branch } from '../../lib/concurrency.ts'
import { Problem } from '../../lib/errors.ts'
import type { CatalogStore, Product } from './schemas.ts'
import { sampleProduct } from './sample-products.ts'

const DEFAULT_DATABASE = 'data_api'
const COLLECTION = 'products'
const ID_PATTERN = /^[0-9a-f]{24}$/
const INSERT_BATCH = 1_000
// Seeding is not on a request path: a batch, or finding the last sample product in a large
// collection, may take longer than a query should (FerretDB's SQLite backend scans to sort).
const SEED_CALL_TIMEOUT_MS = 60_000

interface ProductDocument {
  _id: ObjectId
  name: string
  price: number
  category: string
  tags: string[]
  created_at: Date
}

export interface MongoCatalogOptions {
  url: string
  timeoutMs: number
  /** Default: the database in the URL's path, else `data_api`. */
  databaseName?: string
}

export interface MongoCatalog extends CatalogStore {
  /** Creates the (category, _id) index that category pages use; idempotent. */
  ensureIndexes: () => Promise<void>
}

export function createMongoCatalog ({ url, timeoutMs, databaseName = databaseInUrl(url) ?? DEFAULT_DATABASE }: MongoCatalogOptions): MongoCatalog {
  const client = new MongoClient(url, {
    appName: 'data-api',
    serverSelectionTimeoutMS: timeoutMs,
    connectTimeoutMS: timeoutMs,
  })
  const products: Collection<ProductDocument> = client.db(databaseName).collection<ProductDocument>(COLLECTION)

  /** Runs one driver call within the deadline; an unreachable or stalled server becomes a 503 problem. */
  const call = async <T>(signal: AbortSignal | undefined, work: Branch<T>, deadlineMs = timeoutMs): Promise<T> => {
    try {
      return await withDeadline(deadlineMs, signal, work)
    } catch (error) {
      if (signal?.aborted === true) throw error // the caller gave up (client gone): not an outage
      if (isOutage(error)) {
        throw new Problem('catalog-unavailable', `The catalog store (MongoDB) is not reachable or did not answer within ${deadlineMs} ms.`, { cause: error })
      }
      throw error
    }
  }

  const ensureIndexes = async (): Promise<void> => {
    await call(undefined, async (deadline) => await untilAborted(deadline, products.createIndex({ category: 1, _id: 1 }, { name: 'category_id' })))
  }

  return {
    kind: 'mongodb',
    idFormat: { pattern: ID_PATTERN.source, description: 'A product id: a MongoDB ObjectId, 24 lowercase hex digits', errorMessage: 'must be a MongoDB ObjectId: 24 lowercase hex digits' },
    ensureIndexes,

    async listProducts ({ limit, after, category }, signal) {
      const filter: Filter<ProductDocument> = {}
      if (after !== undefined) {
        if (!ID_PATTERN.test(after)) return []
        filter._id = { $gt: new ObjectId(after) }
      }
      if (category !== undefined) filter.category = category
      const documents = await call(signal, async (deadline) => await products.find(filter, { signal: deadline }).sort({ _id: 1 }).limit(limit).toArray())
      return documents.map(toProduct)
    },

    async findProduct (id, signal) {
      if (!ID_PATTERN.test(id)) return undefined
      const document = await call(signal, async (deadline) => await products.findOne({ _id: new ObjectId(id) }, { signal: deadline }))
      return document === null ? undefined : toProduct(document)
    },

    async ping (signal) {
      await call(signal, async (deadline) => await client.db(databaseName).command({ ping: 1 }, { signal: deadline }))
    },

    async seedProducts ({ count, seed = 42 }) {
      const started = performance.now()
      await ensureIndexes()
      const seedTimeoutMs = Math.max(timeoutMs, SEED_CALL_TIMEOUT_MS)
      const firstNumber = await call(undefined, async (deadline) => {
        const [last] = await products.find({ _id: { $gte: sampleId(0), $lte: sampleId(Number.MAX_SAFE_INTEGER) } }, { signal: deadline })
          .sort({ _id: -1 }).limit(1).toArray()
        return last === undefined ? 1 : sampleNumber(last._id) + 1
      }, seedTimeoutMs)
      for (let from = 0; from < count; from += INSERT_BATCH) {
        const batch: ProductDocument[] = []
        for (let number = firstNumber + from; number < firstNumber + Math.min(count, from + INSERT_BATCH); number++) {
          batch.push({ _id: sampleId(number), ...sampleProduct(number, seed) })
        }
        await call(undefined, async (deadline) => await untilAborted(deadline, products.insertMany(batch, { ordered: true })), seedTimeoutMs)
      }
      return { products: count, firstNumber, ms: Math.round(performance.now() - started) }
    },

    async close () {
      await client.close()
    },
  }
}

/**
 * For driver calls that take no AbortSignal (createIndex, insertMany): stop waiting when the signal
 * fires, so a stalled server cannot hang a start or a seed. The call itself is left to the driver.
 */
async function untilAborted<T> (signal: AbortSignal, work: Promise<T>): Promise<T> {
  let onAbort: (() => void) | undefined
  const aborted = new Promise<never>((_resolve, reject) => {
    onAbort = () => { reject(signal.reason as Error) }
    if (signal.aborted) onAbort()
    else signal.addEventListener('abort', onAbort, { once: true })
  })
  try {
    return await Promise.race([work, aborted])
  } finally {
    signal.removeEventListener('abort', onAbort!)
  }
}

function toProduct ({ _id, name, price, category, tags, created_at }: ProductDocument): Product {
  return { id: _id.toHexString(), name, price, category, tags, created_at }
}

// Sample products get deterministic ObjectIds: the 4-byte timestamp is fixed (2026-01-01) and the
// other 8 bytes hold the product number, so ids ascend with the number, a re-run of the same seed
// gives the same ids, and the next seed continues after the highest one.
const SAMPLE_ID_SECONDS = Date.UTC(2026, 0, 1) / 1000

function sampleId (number: number): ObjectId {
  const bytes = Buffer.alloc(12)
  bytes.writeUInt32BE(SAMPLE_ID_SECONDS, 0)
  bytes.writeBigUInt64BE(BigInt(number), 4)
  return new ObjectId(bytes)
}

function sampleNumber (id: ObjectId): number {
  return Number(Buffer.from(id.id).readBigUInt64BE(4))
}

/** Errors that mean "the server is down, unreachable or stalled", as opposed to "this request is wrong". */
function isOutage (error: unknown): boolean {
  return (error as { name?: string } | undefined)?.name === 'TimeoutError' ||
    error instanceof MongoNetworkError || error instanceof MongoServerSelectionError ||
    error instanceof MongoOperationTimeoutError || error instanceof MongoTopologyClosedError ||
    (error as { name?: string } | undefined)?.name === 'MongoWaitQueueTimeoutError'
}

/** The database named in a mongodb:// URL's path, if any (`mongodb://h1,h2/shop?…` → `shop`). */
export function databaseInUrl (url: string): string | undefined {
  const name = /^mongodb(?:\+srv)?:\/\/[^/?]*\/([^?]+)/.exec(url)?.[1]
  return name === undefined ? undefined : decodeURIComponent(name)
}
