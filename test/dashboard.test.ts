// /dashboard, /slow and /fast against real queries: shapes, partial results, sibling cancellation,
// the sum-versus-maximum claim and Server-Timing.
import assert from 'node:assert/strict'
import { after, describe, it } from 'node:test'
import { seedUsersAndOrders } from '../src/routes/users/seed.ts'
import { buildTestApp, listen } from './helpers/app.ts'
import { delay, json, timed } from './helpers/http.ts'

const { app, sql, databaseUrl } = await buildTestApp({ after }, { DASHBOARD_PART_TIMEOUT_MS: '400' })
await seedUsersAndOrders(sql, { users: 5, ordersPerUser: 12 })
const base = await listen(app)
// Parts that would wait a minute: if this app answers while a part is stuck, it did not wait.
const patient = await buildTestApp({ after }, { DASHBOARD_PART_TIMEOUT_MS: '60000' }, { sql, databaseUrl })

/** Our own queries still running in this test database (anything but this check itself). */
async function runningQueries (): Promise<string[]> {
  const rows = await sql`
    select query from pg_stat_activity
    where datname = current_database() and pid <> pg_backend_pid() and state = 'active'`
  return rows.map((row) => row.query as string)
}

/** Holds an exclusive lock on orders (in a transaction of its own) until released. */
async function lockOrders (): Promise<() => Promise<void>> {
  const connection = await sql.reserve()
  await connection`begin`
  await connection`lock table orders in access exclusive mode`
  return async () => {
    await connection`rollback`
    connection.release()
  }
}

function serverTimingNames (header: string | null): string[] {
  return (header ?? '').split(',').map((entry) => entry.trim().split(';')[0]!).sort()
}

describe('GET /dashboard', () => {
  it('gathers user, recent orders and stats', async () => {
    const response = await fetch(`${base}/dashboard?user_id=2`)
    assert.equal(response.status, 200)
    const body = await json(response)
    assert.deepEqual(Object.keys(body).sort(), ['orders', 'stats', 'user'])
    assert.equal(body.user.user_id, 2)
    assert.equal(body.orders.length, 10, 'the ten most recent')
    const dates = body.orders.map((order: { created_at: string }) => order.created_at)
    assert.deepEqual(dates, [...dates].sort().reverse(), 'newest first')
    const [expected] = await sql`select count(*)::int as count, sum(amount)::float8 as total from orders where user_id = 2`
    assert.equal(body.stats.count, expected?.count)
    assert.ok(Math.abs(body.stats.total - expected?.total) < 0.001)
    assert.deepEqual(serverTimingNames(response.headers.get('server-timing')), ['orders', 'stats', 'user'])
  })

  it('uses user 1 when no user_id is given, as the lesson\'s URL has none', async () => {
    const response = await fetch(`${base}/dashboard`)
    assert.equal((await json(response)).user.user_id, 1)
  })

  it('fails with a 404 problem for a missing user', async () => {
    const response = await fetch(`${base}/dashboard?user_id=999`)
    assert.equal(response.status, 404)
    assert.equal(response.headers.get('content-type'), 'application/problem+json; charset=utf-8')
  })

  it('returns a partial result when orders and stats fail', async () => {
    await sql`alter table orders rename to orders_away`
    try {
      const response = await fetch(`${base}/dashboard?user_id=3`)
      assert.equal(response.status, 200)
      const body = await json(response)
      assert.equal(body.user.user_id, 3)
      assert.equal(body.orders, null)
      assert.equal(body.stats, null)
      assert.deepEqual(body.errors.sort((a: { part: string }, b: { part: string }) => a.part.localeCompare(b.part)), [
        { part: 'orders', reason: 'failed' },
        { part: 'stats', reason: 'failed' },
      ])
      assert.doesNotMatch(JSON.stringify(body), /orders_away|relation|does not exist/, 'no internal message leaks')
    } finally {
      await sql`alter table orders_away rename to orders`
    }
  })

  it('reports a part that passes its deadline as a timeout, and cancels its query', { timeout: 30_000 }, async () => {
    const release = await lockOrders()
    try {
      // Answered while the lock is still held: after the part deadline, not the lock.
      const response = await fetch(`${base}/dashboard?user_id=3`)
      const body = await json(response)
      assert.equal(response.status, 200)
      assert.equal(body.user.user_id, 3)
      assert.deepEqual(body.errors.map((error: { reason: string }) => error.reason), ['timeout', 'timeout'])
      await delay(200)
      assert.deepEqual((await runningQueries()).filter((query) => query.includes('orders')), [], 'timed-out queries were cancelled')
    } finally {
      await release()
    }
  })

  it('aborts the other parts when the user part fails', { timeout: 30_000 }, async () => {
    const release = await lockOrders()
    try {
      // Orders and stats are stuck behind the lock, with a minute's deadline: an answer while the
      // lock is held means the missing user ended the request and cancelled them.
      const response = await patient.app.inject({ url: '/dashboard?user_id=999' })
      assert.equal(response.statusCode, 404)
      await delay(100)
      assert.deepEqual((await runningQueries()).filter((query) => query.includes('orders')), [], 'sibling queries were cancelled')
    } finally {
      await release()
    }
  })
})

describe('GET /slow and GET /fast', () => {
  it('take the sum and the maximum of two one-second fetches', async () => {
    const slow = await timed(async () => await fetch(`${base}/slow?user_id=4`))
    const fast = await timed(async () => await fetch(`${base}/fast?user_id=4`))
    assert.equal(slow.value.status, 200)
    assert.equal(fast.value.status, 200)
    const [slowBody, fastBody] = [await json(slow.value), await json(fast.value)]
    assert.deepEqual(slowBody, fastBody, 'same answer either way')
    assert.deepEqual(Object.keys(slowBody).sort(), ['orders', 'user'])
    assert.ok(slow.ms >= 2000, `/slow waits for both fetches in turn (${slow.ms.toFixed(0)} ms)`)
    assert.ok(fast.ms < 0.75 * slow.ms, `/fast ${fast.ms.toFixed(0)} ms < 0.75 × /slow ${slow.ms.toFixed(0)} ms`)
    for (const response of [slow.value, fast.value]) {
      assert.deepEqual(serverTimingNames(response.headers.get('server-timing')), ['orders', 'user'])
    }
  })

  it('honour delay_ms and refuse it out of range', async () => {
    const quick = await fetch(`${base}/fast?delay_ms=0`)
    assert.equal(quick.status, 200)
    for (const path of ['/slow?delay_ms=5001', '/fast?delay_ms=-1', '/fast?user_id=x']) {
      const response = await fetch(`${base}${path}`)
      assert.equal(response.status, 400, path)
    }
  })

  it('answer 404 for a missing user', async () => {
    for (const path of ['/slow?user_id=999&delay_ms=10', '/fast?user_id=999&delay_ms=10']) {
      const response = await fetch(`${base}${path}`)
      assert.equal(response.status, 404, path)
    }
  })
})
