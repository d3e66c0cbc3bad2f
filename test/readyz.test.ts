// /readyz follows the database: 503 problem while PostgreSQL is stopped, 200 again once it is back,
// without restarting the service. Uses a PostgreSQL server of its own so it can stop it.
import assert from 'node:assert/strict'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { after, describe, it } from 'node:test'
import { pino } from 'pino'
import { startEmbeddedPostgres } from '../src/db/embedded-postgres.ts'
import { createSql } from '../src/db/pool.ts'
import { buildTestApp } from './helpers/app.ts'

describe('/readyz', () => {
  it('turns 503 when the database stops and 200 when it is back', async () => {
    // Closed in reverse order (app, pool, server, directory), whatever was opened before a failure.
    const resources = new AsyncDisposableStack()
    after(async () => { await resources.disposeAsync() })
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'data-api-readyz-'))
    resources.defer(async () => { await fs.rm(dir, { recursive: true, force: true }) })
    await fs.chmod(dir, 0o755)
    const options = { clusterDir: path.join(dir, 'pg'), durable: false, log: pino({ level: 'silent' }) }
    let server = await startEmbeddedPostgres(options)
    resources.defer(async () => { await server.stop() })
    const sql = createSql(server.url, { max: 2 })
    resources.defer(async () => { await sql.end({ timeout: 1 }) })
    const { app } = await buildTestApp({ after: (close) => { resources.defer(close) } }, { READY_TIMEOUT_MS: '500' }, { sql, databaseUrl: server.url })

    const up = await app.inject({ url: '/readyz' })
    assert.equal(up.statusCode, 200)
    assert.equal(up.json().checks.database.status, 'up')

    await server.stop()
    const down = await app.inject({ url: '/readyz' })
    assert.equal(down.statusCode, 503)
    assert.match(String(down.headers['content-type']), /^application\/problem\+json/)
    assert.equal(down.headers['retry-after'], '1')
    assert.equal(down.json().type, '/problems/database-unavailable')
    assert.equal(down.json().checks.database.status, 'down')
    assert.equal((await app.inject({ url: '/healthz' })).statusCode, 200, 'liveness does not depend on the database')

    server = await startEmbeddedPostgres({ ...options, port: server.port })
    // The pool reconnects on its own, after a backoff of at most half a second.
    let back = await app.inject({ url: '/readyz' })
    for (let attempt = 0; attempt < 20 && back.statusCode !== 200; attempt++) {
      await new Promise((resolve) => setTimeout(resolve, 250))
      back = await app.inject({ url: '/readyz' })
    }
    assert.equal(back.statusCode, 200)
  })
})
