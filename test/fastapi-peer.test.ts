// The FastAPI peer of the benchmark (bench/peers/fastapi/app.py, started by bench/fastapi-peer.ts)
// on the same database as data-api: it must answer the same routes with the same rows in the same
// shapes, or the benchmark compares different work. Builds the peer's venv in .cache/ first (pip
// install from PyPI, once). Without python3 it is skipped (helpers/requirements.ts), except under
// CI; without network it fails.
import assert from 'node:assert/strict'
import path from 'node:path'
import { after, before, describe, it } from 'node:test'
import type { App } from '../src/app.ts'
import type { Sql } from '../src/db/pool.ts'
import { ensureFastapiVenv, startFastapi } from '../bench/fastapi-peer.ts'
import { seedUsersAndOrders } from '../src/routes/users/seed.ts'
import { buildTestApp } from './helpers/app.ts'
import { createTestDatabase } from './helpers/database.ts'
import { skipWithoutPython } from './helpers/requirements.ts'

const PROJECT_ROOT = path.resolve(import.meta.dirname, '..')

let app: App
let base: string
let sql: Sql

async function get (route: string): Promise<{ status: number, body: any, ms: number }> {
  const started = performance.now()
  const response = await fetch(`${base}${route}`)
  const body = await response.json()
  return { status: response.status, body, ms: performance.now() - started }
}

/** data-api's answer to the same route. */
async function dataApi (route: string): Promise<any> {
  const response = await app.inject({ url: route })
  assert.equal(response.statusCode, 200, response.body)
  return response.json()
}

/**
 * Dates as instants: FastAPI writes "…T10:00:00+00:00", data-api "…T10:00:00.000Z". Everything
 * else must be equal as it is.
 */
function instants (value: unknown): unknown {
  if (typeof value === 'string' && /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d/.test(value)) return Date.parse(value)
  if (Array.isArray(value)) return value.map(instants)
  if (value !== null && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, instants(item)]))
  return value
}

describe('the FastAPI peer', { skip: skipWithoutPython() }, () => {
  // Closed in reverse order of opening: the peer, the app, then the database.
  const cleanups: Array<() => Promise<void>> = []
  const later = { after: (cleanup: () => Promise<void>) => { cleanups.push(cleanup) } }
  after(async () => { for (const cleanup of cleanups.reverse()) await cleanup() })
  before(async () => {
    const database = await createTestDatabase(later)
    sql = database.sql
    await seedUsersAndOrders(sql, { users: 25, ordersPerUser: 14 })
    app = (await buildTestApp(later, {}, { sql: database.sql, databaseUrl: database.url })).app
    const venvStarted = performance.now()
    const python = await ensureFastapiVenv(path.join(PROJECT_ROOT, '.cache'), (line) => { console.error(line) })
    console.error(`FastAPI peer venv ready in ${((performance.now() - venvStarted) / 1000).toFixed(1)} s`)
    const peer = await startFastapi({ python, databaseUrl: database.url })
    later.after(async () => { await peer.stop() })
    base = peer.url
  })

  it('answers GET /healthz', async () => {
    const { status, body } = await get('/healthz')
    assert.equal(status, 200)
    assert.deepEqual(body, { status: 'ok' })
  })

  it('GET /users returns data-api\'s first page', async () => {
    const { status, body } = await get('/users')
    assert.equal(status, 200)
    assert.equal(body.length, 10)
    assert.deepEqual(body.map((user: { user_id: number }) => user.user_id), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10])
    assert.deepEqual(instants(body), instants(await dataApi('/users')))
  })

  it('GET /users/1 has data-api\'s shape and values; a missing user is 404', async () => {
    const { status, body } = await get('/users/1')
    assert.equal(status, 200)
    assert.deepEqual(Object.keys(body).sort(), ['created_at', 'email', 'name', 'user_id'])
    assert.deepEqual(instants(body), instants(await dataApi('/users/1')))
    assert.equal((await get('/users/4242')).status, 404)
  })

  it('GET /dashboard?user_id=1 equals data-api\'s: user, 10 recent orders, stats', async () => {
    const { status, body } = await get('/dashboard?user_id=1')
    assert.equal(status, 200)
    assert.deepEqual(Object.keys(body).sort(), ['orders', 'stats', 'user'])
    assert.equal(body.orders.length, 10)
    assert.deepEqual(Object.keys(body.orders[0]).sort(), ['amount', 'created_at', 'order_id', 'status'])
    assert.equal(typeof body.orders[0].amount, 'number')
    assert.deepEqual(Object.keys(body.stats).sort(), ['average', 'count', 'total'])
    assert.equal(body.stats.count, 14)
    assert.deepEqual(instants(body), instants(await dataApi('/dashboard?user_id=1')))
  })

  it('GET /users-pool-per-request returns the same rows as /users', async () => {
    const [perRequest, shared] = await Promise.all([get('/users-pool-per-request'), get('/users')])
    assert.equal(perRequest.status, 200)
    assert.deepEqual(perRequest.body, shared.body)
  })

  it('GET /fast is faster than GET /slow, with the same body', async (t) => {
    const slow = await get('/slow?delay_ms=300')
    const fast = await get('/fast?delay_ms=300')
    assert.equal(slow.status, 200)
    assert.equal(fast.status, 200)
    assert.deepEqual(fast.body, slow.body)
    assert.deepEqual(instants(fast.body), instants(await dataApi('/fast?delay_ms=0')))
    t.diagnostic(`delay_ms=300: /slow ${slow.ms.toFixed(0)} ms, /fast ${fast.ms.toFixed(0)} ms`)
    assert.ok(slow.ms >= 600, `slow took ${slow.ms.toFixed(0)} ms, less than its two 300 ms pauses`)
    assert.ok(fast.ms < 0.75 * slow.ms, `fast ${fast.ms.toFixed(0)} ms vs slow ${slow.ms.toFixed(0)} ms`)
  })

  it('GET /datasets/{id} equals data-api\'s: info, schema and stats', async () => {
    const [{ id }] = await sql<[{ id: number }]>`
      insert into datasets (name, status, source, format, rows, bytes, created_at, updated_at)
      values ('peer', 'ready', 'upload', 'csv', 2, 20, '2025-01-02T03:04:05.678Z', '2025-01-02T03:04:06.789Z') returning id`
    await sql`insert into dataset_columns (dataset_id, position, name, type, nullable)
      values (${id}, 1, 'city', 'text', false), (${id}, 2, 'population', 'integer', true)`
    await sql`insert into dataset_stats (dataset_id, stats, computed_at) values (${id}, ${sql.json({
      count: 2,
      columns: { city: { type: 'text', count: 2, nulls: 0, distinct: 2, distinct_estimated: false } },
    })}, '2025-01-02T03:05:00.000Z')`
    const { status, body } = await get(`/datasets/${id}`)
    assert.equal(status, 200)
    assert.deepEqual(body.schema.columns, ['city', 'population'])
    assert.deepEqual(instants(body), instants(await dataApi(`/datasets/${id}`)))
    assert.equal((await get('/datasets/987654')).status, 404)
  })

  it('answers the waiting and computing routes', async () => {
    assert.deepEqual((await get('/async-fast?seconds=0.05')).body, Array.from({ length: 10 }, () => 'done'))
    assert.deepEqual((await get('/sync-slow?n=2&seconds=0.01')).body, ['done', 'done'])
    assert.deepEqual((await get('/sync?seconds=0.01')).body, { message: 'Done' })
    assert.deepEqual((await get('/async?seconds=0.01')).body, { message: 'Done' })
    assert.deepEqual((await get('/sync-in-async?seconds=0.01')).body, { message: 'Done' })
    const compute = (await get('/compute?n=100000')).body
    assert.equal(compute.n, 100_000)
    assert.equal(compute.result, 9592)
    assert.equal(typeof compute.duration_ms, 'number')
  })

  it('GET /sync-in-async blocks the event loop; GET /async does not', async (t) => {
    // While a blocking 0.5 s sleep holds the loop, /healthz waits for it; during /async it does not.
    // Order, not time: a blocked loop answers /healthz only after the sleep's own answer; an
    // awaiting one answers it before the sleep ends.
    const finished: string[] = []
    const blocked = get('/sync-in-async?seconds=1').then(() => { finished.push('sleep') })
    await new Promise((resolve) => setTimeout(resolve, 100))
    const duringBlock = await get('/healthz')
    finished.push('healthz')
    await blocked
    assert.deepEqual(finished, ['sleep', 'healthz'], '/healthz waited for the blocking sleep')
    finished.length = 0
    const waiting = get('/async?seconds=1').then(() => { finished.push('sleep') })
    await new Promise((resolve) => setTimeout(resolve, 100))
    const duringAwait = await get('/healthz')
    finished.push('healthz')
    await waiting
    assert.deepEqual(finished, ['healthz', 'sleep'], '/healthz did not wait for the awaited sleep')
    t.diagnostic(`/healthz during a 1 s sleep: ${duringBlock.ms.toFixed(0)} ms (blocking, in async def), ${duringAwait.ms.toFixed(0)} ms (awaited)`)
  })
})
