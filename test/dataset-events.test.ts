// GET /datasets/{id}/events (issue #20): a client follows a data set as server-sent events while
// the work is done by ANOTHER process. The app under test runs in this process without a job
// worker; a real `data-api serve` on the same database runs the import and write jobs, and its
// progress reaches this process's streams through PostgreSQL LISTEN/NOTIFY only. Then the stream's
// ends: the data set deleted, the client gone, the server closing, the cap; and the listener's
// connection killed in the middle of an import.
import assert from 'node:assert/strict'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { after, afterEach, describe, it } from 'node:test'
import { createApiKeysRepository } from '../src/auth/api-keys.ts'
import { buildTestApp, listen } from './helpers/app.ts'
import { json, until } from './helpers/http.ts'
import { startServe, type ServeProcess } from './helpers/process.ts'

const SYNC_MAX_BYTES = 20_000
const MAX_STREAMS = 6
const EVENT_TIMEOUT_MS = 60_000

const main = await buildTestApp({ after }, { DATASET_SYNC_MAX_BYTES: String(SYNC_MAX_BYTES), DATASET_EVENTS_MAX_STREAMS: String(MAX_STREAMS) })
const base = await listen(main.app)
const { key } = await createApiKeysRepository(main.sql).create('events')
const auth = { authorization: `Bearer ${key}` }

/** The other process: `data-api serve` on the same database, whose worker runs the jobs. */
let worker: ServeProcess | undefined
const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'data-api-events-'))
async function startWorker (): Promise<ServeProcess> {
  worker ??= await startServe({ DATABASE_URL: main.databaseUrl, DATA_DIR: dataDir, DATASET_SYNC_MAX_BYTES: String(SYNC_MAX_BYTES) })
  return worker
}
after(async () => {
  if (worker !== undefined && worker.child.exitCode === null) {
    worker.child.kill('SIGTERM')
    await worker.exited
  }
  await fs.rm(dataDir, { recursive: true, force: true })
})

function csvOf (rows: number, { from = 1, badAt }: { from?: number, badAt?: number } = {}): string {
  let text = 'id,name,score\n'
  for (let i = from; i < from + rows; i++) text += i === badAt ? `${i},bad,1,surplus\n` : `${i},name ${i % 97},${i % 1000}\n`
  return text
}

async function post (pathname: string, body: string): Promise<{ status: number, body: any }> {
  const response = await fetch(`${base}${pathname}`, { method: 'POST', headers: { ...auth, 'content-type': 'text/csv' }, body })
  return { status: response.status, body: await json(response) }
}

interface ServerSentEvent { event: string, id?: string, data: any }

/** The streams a case opened: closed after it, whatever it ended with. */
const following = new Set<() => void>()
afterEach(async () => {
  for (const close of following) close()
  following.clear()
  await until('every stream let go', async () => main.datasets.events.openStreams === 0, 10_000)
})

/** A client of a data set's event stream, parsing the events as a browser's EventSource would. */
async function follow (id: number, headers: Record<string, string> = {}): Promise<{ events: ServerSentEvent[], next: (match: (event: ServerSentEvent) => boolean) => Promise<ServerSentEvent>, ended: Promise<void>, close: () => void }> {
  const controller = new AbortController()
  const response = await fetch(`${base}/datasets/${id}/events`, { headers, signal: controller.signal })
  if (response.status !== 200) assert.fail(`${response.status}: ${await response.text()}`)
  assert.match(response.headers.get('content-type') ?? '', /^text\/event-stream/)
  assert.equal(response.headers.get('cache-control'), 'no-store')
  const events: ServerSentEvent[] = []
  const waiters = new Set<() => void>()
  const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader()
  const ended = (async () => {
    let buffer = ''
    try {
      for (;;) {
        const { value, done } = await reader.read()
        if (done) return
        buffer += value
        for (let end = buffer.indexOf('\n\n'); end !== -1; end = buffer.indexOf('\n\n')) {
          const block = buffer.slice(0, end)
          buffer = buffer.slice(end + 2)
          const fields: Record<string, string> = {}
          for (const line of block.split('\n')) {
            if (line.startsWith(':')) continue // a comment: the heartbeat
            const colon = line.indexOf(':')
            fields[line.slice(0, colon)] = (fields[line.slice(0, colon)] === undefined ? '' : `${fields[line.slice(0, colon)]}\n`) + line.slice(colon + 1).replace(/^ /, '')
          }
          if (fields.data === undefined) continue // `retry:` alone dispatches no event
          events.push({ event: fields.event ?? 'message', id: fields.id, data: JSON.parse(fields.data) })
          for (const wake of waiters) wake()
        }
      }
    } catch (error) {
      if ((error as Error).name !== 'AbortError') throw error
    } finally {
      for (const wake of waiters) wake()
    }
  })()
  let seen = 0
  const next = async (match: (event: ServerSentEvent) => boolean): Promise<ServerSentEvent> => {
    const deadline = Date.now() + EVENT_TIMEOUT_MS
    let finished = false
    void ended.finally(() => { finished = true })
    for (;;) {
      const found = events.slice(seen).findIndex(match)
      if (found !== -1) {
        seen += found + 1
        return events[seen - 1]!
      }
      seen = events.length
      if (finished) throw new Error(`the stream ended; events: ${events.map((e) => e.event).join(', ')}`)
      if (Date.now() > deadline) throw new Error(`no such event within ${EVENT_TIMEOUT_MS} ms; events: ${events.map((e) => e.event).join(', ')}`)
      await new Promise<void>((resolve) => {
        const wake = (): void => { waiters.delete(wake); clearTimeout(timer); resolve() }
        const timer = setTimeout(wake, 1_000)
        waiters.add(wake)
      })
    }
  }
  const close = (): void => { controller.abort() }
  following.add(close)
  return { events, next, ended, close }
}

describe('GET /datasets/{id}/events', () => {
  it('follows an import that another process runs: its state, rows so far, then ready', async () => {
    // Stored now by this process (no worker here); imported once the other process starts.
    const rows = 400_000
    const queued = await post('/datasets?name=followed', csvOf(rows))
    assert.equal(queued.status, 202, JSON.stringify(queued.body))
    const id = queued.body.dataset.id as number
    const stream = await follow(id)
    const first = await stream.next(() => true)
    assert.equal(first.event, 'state')
    assert.equal(first.id, '1')
    assert.deepEqual([first.data.dataset.id, first.data.dataset.status, first.data.dataset.rows], [id, 'importing', 0])
    await startWorker()
    const progress = await stream.next((event) => event.event === 'progress')
    assert.ok(progress.data.dataset.rows > 0 && progress.data.dataset.rows < rows, `rows so far: ${progress.data.dataset.rows}`)
    const ready = await stream.next((event) => event.event === 'status')
    assert.equal(ready.data.dataset.status, 'ready')
    assert.equal(ready.data.dataset.rows, rows)
    const reported = stream.events.filter((event) => event.event === 'progress').map((event) => event.data.dataset.rows)
    assert.deepEqual(reported, [...reported].sort((a, b) => a - b), 'rows so far only grow')
    assert.deepEqual(stream.events.map((event) => Number(event.id)), stream.events.map((_, at) => at + 1), 'ids in sequence')
    stream.close()
    await stream.ended
  })

  it('follows a write job: queued or running, rows read so far, done with its counts', async () => {
    await startWorker()
    const created = await post('/datasets?name=appended', csvOf(10))
    assert.equal(created.status, 201)
    const id = created.body.dataset.id as number
    const stream = await follow(id)
    assert.equal((await stream.next(() => true)).data.write, null)
    const appended = await post(`/datasets/${id}/rows`, csvOf(160_000, { from: 11 }))
    assert.equal(appended.status, 202, JSON.stringify(appended.body))
    const done = await stream.next((event) => event.event === 'write' && event.data.write.status === 'done')
    assert.equal(done.data.write.id, appended.body.write.id)
    assert.equal(done.data.write.inserted, 160_000)
    assert.equal(done.data.dataset.rows, 160_010)
    const before = stream.events.slice(1, -1)
    assert.ok(before.some((event) => (event.event === 'write' && ['queued', 'running'].includes(event.data.write.status)) || event.event === 'progress'), `what came before: ${before.map((e) => e.event).join(', ')}`)
    for (const event of before.filter((e) => e.event === 'progress')) assert.ok(event.data.write.rows_read > 0)
    // A write during its request is a write too; rows deleted are a new version of the data set: `change`.
    const sync = await post(`/datasets/${id}/rows`, 'id,name,score\n0,zero,0\n')
    assert.equal(sync.status, 200)
    const written = await stream.next((event) => event.event === 'write')
    assert.deepEqual([written.data.write.id, written.data.write.status, written.data.dataset.rows], [sync.body.write.id, 'done', 160_011])
    const removed = await fetch(`${base}/datasets/${id}/rows?id__lt=11`, { method: 'DELETE', headers: auth })
    assert.deepEqual(await removed.json(), { deleted: 11 })
    const change = await stream.next((event) => event.event === 'change')
    assert.equal(change.data.dataset.rows, 160_000)
    stream.close()
  })

  it('tells of a failed import with its line, and of the data set deleted, then ends', async () => {
    await startWorker()
    const queued = await post('/datasets?name=failing', csvOf(30_000, { badAt: 20_000 }))
    assert.equal(queued.status, 202)
    const id = queued.body.dataset.id as number
    const stream = await follow(id)
    // Failed before the stream opened (its first state) or after (a `status` event).
    const failed = await stream.next((event) => event.data.dataset.status === 'failed')
    assert.ok(failed.event === 'state' || failed.event === 'status', failed.event)
    assert.equal(failed.data.dataset.error.line, 20_001)
    const deleted = await fetch(`${base}/datasets/${id}`, { method: 'DELETE', headers: auth })
    assert.equal(deleted.status, 204)
    const gone = await stream.next((event) => event.event === 'deleted')
    assert.deepEqual(gone.data, { dataset: { id }, write: null })
    await stream.ended // the server ended it: afterEach sees it let go
  })

  it('answers 404 for a missing data set, 503 past the cap, takes any Last-Event-ID, and lets go of a client that leaves', async () => {
    const missing = await fetch(`${base}/datasets/987654/events`)
    assert.equal(missing.status, 404)
    assert.match(missing.headers.get('content-type') ?? '', /application\/problem\+json/)
    assert.equal((await fetch(`${base}/datasets/0/events`)).status, 400)
    const created = await post('/datasets?name=capped', csvOf(3))
    const id = created.body.dataset.id as number
    const streams = []
    for (let i = 0; i < MAX_STREAMS; i++) streams.push(await follow(id, { 'last-event-id': ['', '7', 'garbage\u00ff', 'x'.repeat(1000)][i % 4]! }))
    assert.equal(main.datasets.events.openStreams, MAX_STREAMS)
    const refused = await fetch(`${base}/datasets/${id}/events`)
    assert.equal(refused.status, 503)
    assert.ok(Number(refused.headers.get('retry-after')) > 0)
    for (const stream of streams) assert.equal((await stream.next(() => true)).event, 'state')
    for (const stream of streams) stream.close()
    await until('every stream let go', async () => main.datasets.events.openStreams === 0, 10_000)
    const again = await follow(id)
    assert.equal((await again.next(() => true)).event, 'state')
    again.close()
  })

  it('ends open streams when the server closes, so that it closes', async () => {
    const other = await buildTestApp({ after }, {}, { sql: main.sql, databaseUrl: main.databaseUrl })
    const otherBase = await listen(other.app)
    const created = await post('/datasets?name=closing', csvOf(3))
    const response = await fetch(`${otherBase}/datasets/${created.body.dataset.id}/events`)
    assert.equal(response.status, 200)
    const body = response.body!.getReader()
    await body.read() // the first bytes: the stream is open
    await other.app.close()
    for (;;) if ((await body.read()).done) break
    assert.equal(other.datasets.events.openStreams, 0)
  })

  it('reaches the final state though the listener\'s connection was killed in the middle of an import', async () => {
    await startWorker()
    const queued = await post('/datasets?name=relisten', csvOf(300_000))
    assert.equal(queued.status, 202)
    const id = queued.body.dataset.id as number
    const stream = await follow(id)
    await stream.next(() => true)
    const killed = await main.sql`select pg_terminate_backend(pid) from pg_stat_activity where application_name = 'data-api listener' and datname = current_database()`
    assert.ok(killed.length >= 1)
    const ready = await stream.next((event) => event.data.dataset.status === 'ready')
    assert.equal(ready.data.dataset.rows, 300_000)
    stream.close()
  })
})
