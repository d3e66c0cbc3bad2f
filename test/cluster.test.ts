// `data-api serve --processes N` (node:cluster) as a user runs it: requests over fresh connections are
// spread over the workers (the log line of each request names the process that answered it), a
// SIGKILLed worker is replaced while the service keeps answering, SIGTERM stops every worker and
// the embedded PostgreSQL; no worker outlives a SIGKILLed primary; workers that keep dying make the
// primary give up; and a server too small for N workers' pools is refused at start.
import assert from 'node:assert/strict'
import fs from 'node:fs/promises'
import http from 'node:http'
import os from 'node:os'
import path from 'node:path'
import { after, describe, it } from 'node:test'
import { createSql } from '../src/db/pool.ts'
import { createTestDatabase, testServerUrl } from './helpers/database.ts'
import { delay } from './helpers/http.ts'
import { startCli, type CliProcess } from './helpers/process.ts'

const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'data-api-cluster-'))
await fs.chmod(dataDir, 0o755) // the embedded server may run as another user
// For the tests on a DATABASE_URL server (the embedded one has its own test).
const database = await createTestDatabase({ after }, { max: 1 })
const running = new Set<CliProcess>()
after(async () => {
  // After a failed test: SIGTERM, so that an embedded PostgreSQL is stopped too; SIGKILL if that hangs.
  await Promise.all([...running].map(async (server) => {
    server.child.kill('SIGTERM')
    const timer = setTimeout(() => { server.child.kill('SIGKILL') }, 30_000)
    await server.exited
    clearTimeout(timer)
  }))
  await fs.rm(dataDir, { recursive: true, force: true })
})

interface Cluster extends CliProcess { url: string, workerPids: number[] }

async function startCluster (workers: number, env: Record<string, string>): Promise<Cluster> {
  const server = await startCli(['serve', '--processes', String(workers)], { SHUTDOWN_GRACE_MS: '5000', ...env }, 'data-api listening')
  running.add(server)
  assert.equal(server.ready.workers, workers)
  assert.equal(server.ready.pid, server.child.pid, 'the primary says when all workers listen')
  assert.equal((server.ready.worker_pids as number[]).length, workers)
  return { ...server, url: server.ready.url as string, workerPids: server.ready.worker_pids as number[] }
}

/** Resolves with the first log line that `matches`, waiting for it to be written. */
async function logLine (server: CliProcess, matches: (entry: Record<string, unknown>) => boolean, timeoutMs = 30_000): Promise<Record<string, unknown>> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const found = server.logs.find(matches)
    if (found !== undefined) return found
    if (Date.now() > deadline) throw new Error(`no such log line within ${timeoutMs} ms; last lines: ${server.logs.slice(-5).map((entry) => String(entry.msg)).join(' | ')}`)
    await delay(25)
  }
}

/** The primary's last line: the process has exited, but its output may still be on the way. */
async function lastLine (server: CliProcess): Promise<void> {
  await logLine(server, (entry) => entry.msg === 'shut down cleanly' && entry.pid === server.child.pid)
}

let requestCount = 0

/**
 * GET over a connection of its own (no keep-alive, which would pin the client to one worker). The
 * timeout is for a connection the primary handed to a worker at the moment it was killed: node's
 * cluster never hears back about it, and the client would wait forever.
 */
async function getOnFreshConnection (url: string): Promise<{ status: number, requestId: string }> {
  const requestId = `cluster-test-${++requestCount}`
  return await new Promise((resolve, reject) => {
    const request = http.get(url, { agent: false, headers: { 'x-request-id': requestId } }, (response) => {
      response.resume()
      response.once('end', () => { resolve({ status: response.statusCode!, requestId }) })
      response.once('error', reject)
    }).once('error', reject)
    request.setTimeout(5_000, () => { request.destroy(new Error('no answer within 5 s')) })
  })
}

interface Outcome { answered: string[], failed: Error[] }

/** Sends `count` requests (or, with `until`, as many as it takes), `concurrency` at a time. */
async function sendRequests (url: string, { count = Infinity, concurrency = 4, until }: { count?: number, concurrency?: number, until?: () => boolean }): Promise<Outcome> {
  const outcome: Outcome = { answered: [], failed: [] }
  let sent = 0
  const more = (): boolean => sent < count && (until === undefined || !until())
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (more()) {
      sent++
      try {
        const { status, requestId } = await getOnFreshConnection(url)
        assert.equal(status, 200)
        outcome.answered.push(requestId)
      } catch (error) {
        if (error instanceof assert.AssertionError) throw error
        outcome.failed.push(error as Error)
      }
    }
  }))
  return outcome
}

/** The pid of the process that logged the request, by its request id. */
async function answeredBy (server: CliProcess, requestIds: string[]): Promise<number[]> {
  return await Promise.all(requestIds.map(async (id) => (await logLine(server, (entry) => entry.request_id === id && entry.msg === 'request')).pid as number))
}

/** Whether `pid` still runs: a zombie does not (a worker orphaned by its primary is reaped by whoever adopts it, if ever). */
async function isAlive (pid: number): Promise<boolean> {
  const stat = await fs.readFile(`/proc/${pid}/stat`, 'utf8').catch(() => undefined)
  return stat !== undefined && stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z'
}

async function waitUntilGone (pids: number[], timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  for (const pid of pids) {
    while (await isAlive(pid)) {
      if (Date.now() > deadline) assert.fail(`process ${pid} is still running`)
      await delay(25)
    }
  }
}

describe('data-api serve --processes', () => {
  it('spreads requests over the workers, replaces a killed one, and stops everything on SIGTERM', { timeout: 120_000 }, async () => {
    const server = await startCluster(2, { DATA_DIR: dataDir, SEED_DEMO: 'false' })
    const postgresPid = Number((await fs.readFile(path.join(dataDir, 'pg', 'postmaster.pid'), 'utf8')).split('\n')[0])
    const [first, second] = server.workerPids
    assert.equal(new Set([first, second, server.child.pid]).size, 3, 'two workers besides the primary')

    const spread = await sendRequests(`${server.url}/healthz`, { count: 200 })
    assert.deepEqual(spread.failed, [])
    const pids = await answeredBy(server, spread.answered)
    assert.deepEqual(new Set(pids), new Set([first, second]), 'both workers answered, the primary none')

    // Requests keep coming while a worker is killed and replaced: only ones in flight on the killed
    // worker may fail (at most one per concurrent client), and only at the connection level.
    let replacementListening = false
    const during = sendRequests(`${server.url}/healthz`, { concurrency: 4, until: () => replacementListening })
    await delay(300)
    process.kill(first!, 'SIGKILL')
    const { replacement_pid: replacement, signal } = await logLine(server, (entry) => entry.msg === 'worker exited unexpectedly; started a replacement' && entry.worker_pid === first)
    assert.equal(signal, 'SIGKILL')
    await logLine(server, (entry) => entry.msg === 'replacement worker listening' && entry.worker_pid === replacement)
    replacementListening = true
    const { answered, failed } = await during
    assert.ok(failed.length <= 4, `at most the requests in flight on the killed worker failed: ${failed.map(String).join(', ')}`)
    assert.ok(answered.length > 0, 'the service kept answering')

    const afterwards = await sendRequests(`${server.url}/healthz`, { count: 100 })
    assert.deepEqual(afterwards.failed, [])
    assert.deepEqual(new Set(await answeredBy(server, afterwards.answered)), new Set([second, replacement]), 'the replacement serves requests')

    server.child.kill('SIGTERM')
    assert.equal(await server.exited, 0)
    running.delete(server)
    await lastLine(server)
    for (const pid of [first!, second!, replacement as number, postgresPid]) assert.equal(await isAlive(pid), false, `process ${pid} is gone`)
    assert.equal(server.logs.filter((entry) => entry.msg === 'worker stopped').length, 2)
  })

  describe('on a DATABASE_URL server', () => {
    it('leaves no worker running when the primary is SIGKILLed', { timeout: 120_000 }, async () => {
      const server = await startCluster(2, { DATABASE_URL: database.url })
      server.child.kill('SIGKILL')
      await server.exited
      running.delete(server)
      await waitUntilGone(server.workerPids)
    })

    it('gives up with exit 1 when workers keep dying young', { timeout: 120_000 }, async () => {
      const name = new URL(database.url).pathname.slice(1)
      const admin = createSql(testServerUrl(), { max: 1 })
      const server = await startCluster(2, { DATABASE_URL: database.url })
      // The database stops taking connections: the running workers live on, replacements cannot start.
      await admin.unsafe(`alter database ${name} allow_connections false`)
      try {
        const [doomed, survivor] = server.workerPids
        process.kill(doomed!, 'SIGKILL')
        assert.equal(await server.exited, 1)
        running.delete(server)
        await lastLine(server)
        assert.ok(server.logs.some((entry) => String(entry.msg).startsWith('workers keep dying within')), 'the primary says why it gave up')
        const replacements = server.logs.filter((entry) => entry.msg === 'worker exited unexpectedly; started a replacement')
        assert.ok(replacements.length >= 4, `replaced ${replacements.length} times before giving up`)
        for (const pid of [survivor!, ...replacements.map((entry) => entry.replacement_pid as number)]) assert.equal(await isAlive(pid), false, `process ${pid} is gone`)
      } finally {
        await admin.unsafe(`alter database ${name} allow_connections true`)
        await admin.end()
      }
    })
  })

  it('refuses to start when the workers\' pools do not fit into max_connections', { timeout: 60_000 }, async () => {
    const refused = await startCli(['serve', '--processes', '2'], { DATABASE_URL: testServerUrl(), DATABASE_POOL_MAX: '100' }, 'data-api listening')
      .then(() => assert.fail('started'), (error: Error) => error.message)
    assert.match(refused, /exited with 1 before it was ready/)
    assert.match(refused, /--processes 2 needs up to 213 PostgreSQL connections .* but the server allows \d+ \(max_connections\)/)
  })

  it('counts the SQL queries\' reader pool of each worker in the budget', { timeout: 60_000 }, async () => {
    const refused = await startCli(['serve', '--processes', '2'], { DATABASE_URL: testServerUrl(), DATABASE_POOL_MAX: '100', SQL_QUERIES: 'true', SQL_QUERIES_POOL_MAX: '3' }, 'data-api listening')
      .then(() => assert.fail('started'), (error: Error) => error.message)
    assert.match(refused, /--processes 2 needs up to 219 PostgreSQL connections \(2 × \(DATABASE_POOL_MAX 100 \+ 4 for the job queue and the change listener \+ SQL_QUERIES_POOL_MAX 3\)/)
  })
})
