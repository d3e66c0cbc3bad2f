// A client that goes away takes its work with it: database queries are cancelled on the server,
// and queued pool tasks are dropped.
import assert from 'node:assert/strict'
import { after, describe, it } from 'node:test'
import { seedUsersAndOrders } from '../src/routes/users/seed.ts'
import { buildTestApp, listen } from './helpers/app.ts'
import { delay, getAndDisconnect } from './helpers/http.ts'

const { app, sql, compute } = await buildTestApp({ after }, { BLOCKING_THREADS: '1' })
await seedUsersAndOrders(sql, { users: 3, ordersPerUser: 2 })
const base = await listen(app)

async function sleepingQueries (): Promise<number> {
  const [row] = await sql`
    select count(*)::int as count from pg_stat_activity
    where datname = current_database() and state = 'active' and query like '%pg_sleep%' and pid <> pg_backend_pid()`
  return row?.count as number
}

describe('client disconnect', () => {
  for (const path of ['/slow?delay_ms=3000', '/fast?delay_ms=3000']) {
    it(`cancels the database queries of ${path}`, async () => {
      await getAndDisconnect(`${base}${path}`, 100)
      await delay(500)
      assert.equal(await sleepingQueries(), 0, 'no query of the abandoned request is still running')
    })
  }

  it('checks what it claims: a request that stays connected does keep its query running', async () => {
    const pending = fetch(`${base}/slow?delay_ms=1000`)
    await delay(300)
    assert.equal(await sleepingQueries(), 1)
    assert.equal((await pending).status, 200)
  })

  it('keeps a queued blocking task while its client waits (the premise of the next test)', async () => {
    const running = fetch(`${base}/sync?seconds=0.5`)
    await delay(100)
    const queued = fetch(`${base}/sync?seconds=0.1`)
    await delay(100)
    assert.equal(compute.stats().blocking.queued, 1)
    assert.equal((await running).status, 200)
    assert.equal((await queued).status, 200)
  })

  it('drops a queued blocking task when its client leaves', async () => {
    // The only blocking thread is busy for a second; the second request waits in the queue.
    const running = fetch(`${base}/sync?seconds=1`)
    await delay(100)
    await getAndDisconnect(`${base}/sync?seconds=1`, 100)
    await delay(50)
    assert.equal(compute.stats().blocking.queued, 0, 'the abandoned task left the queue')
    assert.equal((await running).status, 200)
  })
})
