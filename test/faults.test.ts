// Fault injection against the real service process (`data-api serve`): its PostgreSQL stopped while
// requests are in flight, then restarted; and a flood of clients beyond what it can serve.
import assert from 'node:assert/strict'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { after, describe, it } from 'node:test'
import { runLoad } from '../bench/load.ts'
import { percentile } from '../bench/statistics.ts'
import { createSql } from '../src/db/pool.ts'
import { spawnServer } from '../tools/processes.ts'
import { createTestDatabase } from './helpers/database.ts'
import { delay } from './helpers/http.ts'
import { startOwnPostgres } from './helpers/own-postgres.ts'
import { startServe, type ServeProcess } from './helpers/process.ts'

interface Answer { status: number, type?: string, retryAfter: string | null, ms: number }

async function get (url: string): Promise<Answer> {
  const started = performance.now()
  const response = await fetch(url)
  const body = await response.text()
  const type = response.headers.get('content-type')?.startsWith('application/problem+json') === true ? (JSON.parse(body) as { type: string }).type : undefined
  return { status: response.status, type, retryAfter: response.headers.get('retry-after'), ms: performance.now() - started }
}

async function stopServe (serve: ServeProcess): Promise<number | null> {
  serve.child.kill('SIGTERM')
  return await serve.exited
}

describe('PostgreSQL stopped while requests are in flight', async () => {
  // Closed in reverse order after the file, whatever was started before a failure.
  const resources = new AsyncDisposableStack()
  after(async () => { await resources.disposeAsync() })
  const postgres = await startOwnPostgres(resources, 'data-api-faults-')
  const { databaseUrl } = postgres
  const serve = await startServe({ DATABASE_URL: databaseUrl, DATA_DIR: postgres.dir, SHUTDOWN_GRACE_MS: '2000' })
  resources.defer(async () => { if (serve.child.exitCode === null) await stopServe(serve) })
  const sql = createSql(databaseUrl, { max: 1 })
  await sql`insert into users (id, name, email) values (1, 'Ada', 'ada@example.com') on conflict do nothing`
  await sql.end()

  // Every answer below comes while PostgreSQL is still stopped (it is restarted only after them):
  // a request that waited for the database would hang the test into its timeout.
  it('answers 503 problems while PostgreSQL is down, never hangs, and recovers when it is back', { timeout: 90_000 }, async (t) => {
    assert.equal((await get(`${serve.url}/users/1`)).status, 200)
    // Three requests holding a query for 3 s each when the server goes down.
    const inFlight = Array.from({ length: 3 }, async () => await get(`${serve.url}/slow?delay_ms=3000`))
    await delay(500)
    await postgres.stop()

    const duringOutage: Answer[] = []
    for (let i = 0; i < 8; i++) {
      duringOutage.push(await get(`${serve.url}/users/1`))
      await delay(50)
    }
    for (const answer of await Promise.all(inFlight)) {
      assert.equal(answer.status, 503)
      assert.equal(answer.type, '/problems/database-unavailable')
    }
    for (const answer of duringOutage) {
      assert.equal(answer.status, 503)
      assert.equal(answer.type, '/problems/database-unavailable')
      assert.equal(answer.retryAfter, '1')
    }
    t.diagnostic(`requests during the outage answered in ${duringOutage.map((a) => a.ms.toFixed(0)).join(', ')} ms`)
    assert.equal((await get(`${serve.url}/healthz`)).status, 200, 'liveness does not depend on the database')
    assert.equal((await get(`${serve.url}/readyz`)).status, 503)

    // Back on the same port: the same process serves again, its pool reconnecting by itself.
    await postgres.restart()
    const restartedAt = performance.now()
    let answer = await get(`${serve.url}/users/1`)
    while (answer.status !== 200 && performance.now() - restartedAt < 15_000) {
      await delay(100)
      answer = await get(`${serve.url}/users/1`)
    }
    assert.equal(answer.status, 200, `serving again ${(performance.now() - restartedAt).toFixed(0)} ms after the restart`)
    assert.equal((await get(`${serve.url}/readyz`)).status, 200)
    assert.equal(serve.child.exitCode, null, 'the service process never exited')
    assert.equal(await stopServe(serve), 0)
  })
})

describe('a flood beyond capacity', async () => {
  const resources = new AsyncDisposableStack()
  after(async () => { await resources.disposeAsync() })
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'data-api-flood-'))
  resources.defer(async () => { await fs.rm(dir, { recursive: true, force: true }) })
  const database = await createTestDatabase({ after })
  await database.sql`insert into users (id, name, email) values (1, 'Ada', 'ada@example.com')`
  // Logging at warn: one line per request would cost the flood (and this test) more than the requests.
  const server = await spawnServer({ command: process.execPath, args: ['bin/data-api.js', 'serve'], env: { DATABASE_URL: database.url, DATA_DIR: dir, LOG_LEVEL: 'warn', CONCURRENCY_LIMIT: '32', COMPUTE_THREADS: '1' } })
  resources.defer(async () => { await server.stop() })
  const base = server.url

  it('sheds with 503 and 429 while /healthz keeps answering', async (t) => {
    let floodsEnded = false
    const floods = Promise.all([
      runLoad({ url: `${base}/dashboard?user_id=1`, connections: 128, durationSeconds: 6 }, undefined),
      // Small tasks: the flood is of requests past the rate limit, not of CPU work.
      runLoad({ url: `${base}/compute?n=10000`, connections: 10, durationSeconds: 6 }, undefined),
    ]).finally(() => { floodsEnded = true })
    await delay(1000) // the load generators start and ramp up
    const health: number[] = []
    for (let i = 0; i < 10; i++) {
      const answer = await get(`${base}/healthz`)
      assert.equal(answer.status, 200)
      assert.equal(floodsEnded, false, '/healthz answered during the flood, not after it')
      health.push(answer.ms)
      await delay(80)
    }
    const [dashboard, compute] = await floods
    assert.ok((dashboard.statuses?.['503'] ?? 0) > 0, `the dashboard flood got 503s: ${JSON.stringify(dashboard)}`)
    assert.ok((compute.statuses?.['429'] ?? 0) > 0, `the compute flood got 429s: ${JSON.stringify(compute)}`)
    assert.ok((dashboard.statuses?.['200'] ?? 0) > 0, 'and kept serving what it could')
    // Its latency under the flood is a measurement, not a fact of every machine (bench/, BENCHMARKS.md).
    t.diagnostic(`/healthz during the flood: p90 ${percentile(health, 0.9).toFixed(1)} ms, max ${Math.max(...health).toFixed(1)} ms`)
  })
})
