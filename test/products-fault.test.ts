// The MongoDB catalog store when its server goes away or stalls: /products answers a 503 problem
// within MONGODB_TIMEOUT_MS (never a hang), /readyz says which part is down, and both recover once
// the server is back, with the same app. Uses a FerretDB of its own, so stopping it harms no other
// test file.
import assert from 'node:assert/strict'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { after, before, describe, it } from 'node:test'
import { pino } from 'pino'
import { loadConfig } from '../src/config.ts'
import { openCatalogStore } from '../src/routes/products/catalog.ts'
import { startFerretDb, type FerretDb } from '../tools/ferretdb.ts'
import type { App } from '../src/app.ts'
import { buildTestApp } from './helpers/app.ts'
import { createTestDatabase, type TestDatabase } from './helpers/database.ts'
import { delay } from './helpers/http.ts'
import { skipWithoutMongo } from './helpers/requirements.ts'

const TIMEOUT_MS = 500

let dataDir: string
let ferretDb: FerretDb
let app: App
let env: Record<string, string>
let database: TestDatabase

async function timedGet (url: string): Promise<{ response: Awaited<ReturnType<typeof app.inject>>, ms: number }> {
  const started = performance.now()
  const response = await app.inject({ url })
  return { response, ms: performance.now() - started }
}

/** A 503 answered while the server is still down or frozen (it comes back only after): no hang. */
function assertCatalogUnavailable ({ response }: { response: Awaited<ReturnType<typeof app.inject>> }, url: string): void {
  assert.equal(response.statusCode, 503, `${url}: ${response.body}`)
  assert.match(String(response.headers['content-type']), /^application\/problem\+json/)
  assert.equal(response.headers['retry-after'], '1')
  assert.equal(response.json().type, '/problems/catalog-unavailable')
  assert.doesNotMatch(response.body, /ECONNREFUSED|Mongo\w*Error|127\.0\.0\.1|socket/, 'no driver internals')
}

/**
 * SIGSTOP, then wait until every thread has stopped: the kernel stops a thread group only as its
 * threads get scheduled, and on a loaded machine one may still answer a request in the meantime.
 */
async function freeze (pid: number): Promise<void> {
  process.kill(pid, 'SIGSTOP')
  const taskDir = `/proc/${pid}/task`
  for (;;) {
    const states = await Promise.all((await fs.readdir(taskDir)).map(async (task) => {
      const stat = await fs.readFile(path.join(taskDir, task, 'stat'), 'utf8').catch(() => ') T')
      return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3)
    }))
    if (states.every((state) => state === 'T' || state === 't')) return
    await delay(5)
  }
}

/** Polls until `url` answers 200 (the driver reconnects on its own), within `withinMs`. */
async function eventually200 (url: string, withinMs: number): Promise<Awaited<ReturnType<typeof app.inject>>> {
  const deadline = Date.now() + withinMs
  for (;;) {
    const response = await app.inject({ url })
    if (response.statusCode === 200 || Date.now() > deadline) return response
    await delay(50)
  }
}

// FerretDB itself is needed here (it is stopped and frozen): skipped where it cannot be built.
describe('MongoDB catalog store outages', { skip: skipWithoutMongo(), timeout: 120_000 }, () => {
  // Closed in reverse order of opening: the app, then the catalog store and FerretDB, then the database.
  const cleanups: Array<() => Promise<void>> = []
  const later = { after: (cleanup: () => Promise<void>) => { cleanups.push(cleanup) } }
  after(async () => { for (const cleanup of cleanups.reverse()) await cleanup() })
  before(async () => {
    database = await createTestDatabase(later)
    dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'data-api-ferretdb-fault-'))
    ferretDb = await startFerretDb({ dataDir })
    // READY_TIMEOUT_MS well above the default: on a busy machine PostgreSQL may take a second to
    // answer /readyz, and this test is about the catalog being down, not the database being slow.
    env = { MONGODB_URL: `${ferretDb.url}catalog`, MONGODB_TIMEOUT_MS: String(TIMEOUT_MS), READY_TIMEOUT_MS: '10000' }
    const catalog = await openCatalogStore(loadConfig(env).mongodb, database.sql, pino({ level: 'silent' }))
    later.after(async () => {
      await catalog.close()
      await ferretDb.stop()
      await fs.rm(dataDir, { recursive: true, force: true })
    })
    app = (await buildTestApp(later, env, { sql: database.sql, databaseUrl: database.url, catalog })).app
    await catalog.seedProducts({ count: 12 })
  })

  it('answers 503 catalog-unavailable while MongoDB is stopped, and recovers when it is back', async () => {
    const before = await app.inject({ url: '/products' })
    assert.equal(before.statusCode, 200)
    const ids = before.json().map((product: { id: string }) => product.id)
    assert.equal(ids.length, 10)

    await ferretDb.stop()
    for (const url of ['/products', `/products/${ids[0]}`, '/products?category=kitchen']) assertCatalogUnavailable(await timedGet(url), url)

    const ready = await timedGet('/readyz')
    assertCatalogUnavailable(ready, '/readyz')
    assert.deepEqual(ready.response.json().checks.database.status, 'up', 'PostgreSQL is fine')
    assert.deepEqual({ ...ready.response.json().checks.catalog, reason: undefined }, { status: 'down', store: 'mongodb', reason: undefined })
    assert.equal((await app.inject({ url: '/healthz' })).statusCode, 200, 'liveness does not depend on the catalog')

    ferretDb = await startFerretDb({ dataDir, port: ferretDb.port })
    const back = await eventually200('/products', 10 * TIMEOUT_MS)
    assert.equal(back.statusCode, 200, back.body)
    assert.deepEqual(back.json().map((product: { id: string }) => product.id), ids, 'the same products (same data directory)')
    assert.equal((await app.inject({ url: '/readyz' })).statusCode, 200)
  })

  it('answers 503 at the deadline when MongoDB accepts connections but does not reply', async () => {
    assert.equal((await eventually200('/products', 10 * TIMEOUT_MS)).statusCode, 200)
    await freeze(ferretDb.pid)
    try {
      const stalled = await timedGet('/products?limit=3')
      assertCatalogUnavailable(stalled, '/products?limit=3')
      assert.ok(stalled.ms >= 0.9 * TIMEOUT_MS, `waited for the deadline (${Math.round(stalled.ms)} ms), it did not fail for another reason`)

      // A server starting against the stalled MongoDB does not hang on its index check either:
      // it opens while the server is still frozen.
      const another = await openCatalogStore(loadConfig(env).mongodb, database.sql, pino({ level: 'silent' }))
      await another.close()
    } finally {
      process.kill(ferretDb.pid, 'SIGCONT')
    }
    assert.equal((await eventually200('/products?limit=3', 10 * TIMEOUT_MS)).statusCode, 200, 'recovers once the server replies again')
  })
})
