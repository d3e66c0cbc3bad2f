// The service as a user runs it: `data-api serve` with the embedded PostgreSQL in a fresh DATA_DIR.
// Start, demo data, graceful shutdown with a request in flight, data kept across restarts, one
// server per data directory, and recovery after the process was SIGKILLed.
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { after, describe, it } from 'node:test'
import { promisify } from 'node:util'
import { createSql } from '../src/db/pool.ts'
import { delay, json } from './helpers/http.ts'
import { serveExpectingFailure, startServe, type ServeProcess } from './helpers/process.ts'

const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'data-api-serve-'))
await fs.chmod(dataDir, 0o755)
const env = { DATA_DIR: dataDir, SHUTDOWN_GRACE_MS: '5000' }
const running = new Set<ServeProcess>()
after(async () => {
  for (const server of running) server.child.kill('SIGKILL')
  // A SIGKILLed serve leaves its postgres behind; a last clean start and stop reclaims it.
  if (running.size > 0) await stop(await start())
  await fs.rm(dataDir, { recursive: true, force: true })
})

async function start ({ processGroup = false, extraEnv = {} }: { processGroup?: boolean, extraEnv?: Record<string, string> } = {}): Promise<ServeProcess> {
  const server = await startServe({ ...env, ...extraEnv }, { processGroup })
  running.add(server)
  return server
}

async function stop (server: ServeProcess, signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> {
  server.child.kill(signal)
  const code = await server.exited
  running.delete(server)
  return code
}

async function postmasterPid (): Promise<number> {
  return Number((await fs.readFile(path.join(dataDir, 'pg', 'postmaster.pid'), 'utf8')).split('\n')[0])
}

function isAlive (pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

/** A connection to the embedded server behind a running serve (port from postmaster.pid). */
async function connectToEmbedded (): Promise<ReturnType<typeof createSql>> {
  const lines = (await fs.readFile(path.join(dataDir, 'pg', 'postmaster.pid'), 'utf8')).split('\n')
  const password = (await fs.readFile(path.join(dataDir, 'pg', 'data-api.password'), 'utf8')).trim()
  return createSql(`postgres://postgres:${encodeURIComponent(password)}@127.0.0.1:${lines[3]}/data_api`, { max: 1 })
}

describe('data-api serve', () => {
  it('starts on the embedded database with demo data, and stops gracefully with a request in flight', async () => {
    const server = await start()
    assert.equal((await fetch(`${server.url}/healthz`)).status, 200)
    assert.equal((await json(await fetch(`${server.url}/users/1`))).user_id, 1, 'demo users are there')
    assert.equal((await json(await fetch(`${server.url}/products`))).length, 10, 'demo products are there')
    assert.equal((await json(await fetch(`${server.url}/datasets/1`))).dataset.rows, 2000, 'the demo data set is there')
    assert.equal((await fetch(`${server.url}/readyz`)).status, 200)

    const sql = await connectToEmbedded()
    const [{ id }] = await sql<[{ id: number }]>`insert into users (name, email) values ('Kept', 'kept@example.com') returning id`
    await sql.end()

    const postgresPid = await postmasterPid()
    const inFlight = fetch(`${server.url}/async?seconds=1`)
    await delay(200)
    server.child.kill('SIGTERM')
    const response = await inFlight
    assert.equal(response.status, 200, 'the in-flight request finished')
    assert.deepEqual(await response.json(), { message: 'Done' })
    assert.equal(await server.exited, 0)
    running.delete(server)
    assert.equal(isAlive(postgresPid), false, 'no postgres process of ours is left')
    await assert.rejects(fetch(`${server.url}/healthz`), 'no longer listening')

    const again = await start()
    const kept = await json(await fetch(`${again.url}/users/${id}`))
    assert.equal(kept.name, 'Kept', 'data survives a restart')
    assert.equal(await stop(again), 0)
  })

  it('finishes in-flight work on a terminal\'s Ctrl-C (SIGINT to the whole process group), then stops PostgreSQL', async () => {
    const server = await start({ processGroup: true })
    const postgresPid = await postmasterPid()
    // /slow holds a database connection for both its fetches: PostgreSQL must outlive the signal.
    const inFlight = fetch(`${server.url}/slow?delay_ms=1000`)
    await delay(300)
    process.kill(-server.child.pid!, 'SIGINT')
    const response = await inFlight
    assert.equal(response.status, 200, 'the in-flight request got its answer')
    assert.equal((await json(response)).user.user_id, 1)
    assert.equal(await server.exited, 0)
    running.delete(server)
    assert.equal(isAlive(postgresPid), false, 'no postgres process of ours is left')
    assert.deepEqual(server.logs.filter((entry) => Number(entry.level) >= 50).map((entry) => entry.msg), [], 'no error-level line')
    assert.ok(server.logs.some((entry) => entry.msg === 'shut down cleanly'))
  })

  it('answers its first requests after "listening" without shedding one: start-up is not overload', async () => {
    // With the production threshold of event-loop shedding (the tests' default turns it off).
    const server = await start({ extraEnv: { OVERLOAD_EVENT_LOOP_DELAY_MS: '100' } })
    const answers = await Promise.all(Array.from({ length: 100 }, async (_, index) => (await fetch(`${server.url}/users/${1 + index % 5}`)).status))
    assert.deepEqual([...new Set(answers)], [200])
    assert.deepEqual(server.logs.filter((entry) => entry.msg === 'event loop blocked; these requests were in flight'), [], 'no blocked-loop warning at start')
    assert.equal(await stop(server), 0)
  })

  it('refuses a second server on the same data directory with a clear message', async () => {
    const first = await start()
    const second = await serveExpectingFailure(env)
    assert.equal(second.code, 1)
    assert.match(second.output, /in use by another data-api process \(pid \d+/)
    assert.equal((await fetch(`${first.url}/readyz`)).status, 200, 'the first one is unharmed')
    assert.equal(await stop(first), 0)
  })

  it('lets `data-api keys create` use the embedded database of a running server', async () => {
    const server = await start()
    const { stdout } = await promisify(execFile)(process.execPath, ['bin/data-api.js', 'keys', 'create', '--name', 'beside serve'], { env: { ...process.env, ...env, LOG_LEVEL: 'warn' } })
    const key = stdout.trimEnd().split('\n').at(-1)!
    const response = await fetch(`${server.url}/datasets`, { method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'text/csv' }, body: 'a\n1\n' })
    assert.equal(response.status, 201)
    assert.equal((await fetch(`${server.url}/readyz`)).status, 200, 'the server is unharmed')
    assert.equal(await stop(server), 0)
  })

  it('recovers the cluster after the previous server was SIGKILLed', async () => {
    const killed = await start()
    const orphan = await postmasterPid()
    assert.equal(await stop(killed, 'SIGKILL'), null)
    assert.equal(isAlive(orphan), true, 'SIGKILL leaves postgres running (the case to handle)')

    const next = await start()
    assert.equal(isAlive(orphan), false, 'the orphan was shut down')
    assert.ok(next.logs.some((entry) => String(entry.msg).includes('left running by a data-api process that no longer exists')))
    assert.equal((await fetch(`${next.url}/users/1`)).status, 200)
    assert.equal(await stop(next), 0)
  })
})
