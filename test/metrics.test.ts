// GET /metrics through the built app: Prometheus text with request durations by route pattern and
// the state of the pools, the job queue and the data sets, read at scrape time.
import assert from 'node:assert/strict'
import { after, describe, it } from 'node:test'
import { seedUsersAndOrders } from '../src/routes/users/seed.ts'
import { buildTestApp, listen } from './helpers/app.ts'

const { app, sql } = await buildTestApp({ after })
await seedUsersAndOrders(sql, { users: 3, ordersPerUser: 1 })
const base = await listen(app)

describe('GET /metrics', () => {
  it('counts requests by route pattern and status, not by URL', async () => {
    for (const id of [1, 2, 3, 999]) await (await fetch(`${base}/users/${id}`)).arrayBuffer()
    await (await fetch(`${base}/no/such/thing`)).arrayBuffer()
    const response = await fetch(`${base}/metrics`)
    assert.equal(response.status, 200)
    assert.match(response.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/)
    const text = await response.text()
    assert.match(text, /^http_request_duration_seconds_count\{method="GET",route="\/users\/:user_id",status_code="200"\} 3$/m)
    assert.match(text, /^http_request_duration_seconds_count\{method="GET",route="\/users\/:user_id",status_code="404"\} 1$/m)
    assert.match(text, /^http_request_duration_seconds_count\{method="GET",route="unmatched",status_code="404"\} 1$/m)
    assert.doesNotMatch(text, /route="\/users\/1"/)
  })

  it('reports the process, the pools, the job queue and the data sets', async () => {
    await (await fetch(`${base}/compute?n=1000`)).arrayBuffer()
    const text = await (await fetch(`${base}/metrics`)).text()
    for (const line of [
      /^nodejs_eventloop_lag_p99_seconds \d/m,
      /^nodejs_heap_size_used_bytes \d/m,
      /^process_resident_memory_bytes \d/m,
      /^data_api_pool_threads\{pool="cpu",measure="completed"\} 1$/m,
      /^data_api_pool_threads\{pool="blocking",measure="queued"\} 0$/m,
      /^data_api_jobs\{state="queued"\} \d+$/m,
      /^data_api_database_connections\{state="active"\} [1-9]\d*$/m,
    ]) assert.match(text, line)
    await sql`insert into datasets (name, status, source) values ('x', 'failed', 'upload')`
    assert.match(await (await fetch(`${base}/metrics`)).text(), /^data_api_datasets\{status="failed",measure="datasets"\} 1$/m)
  })
})
