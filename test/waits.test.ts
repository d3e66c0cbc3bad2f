// /sync, /async, /sync-slow, /async-fast and /compute: shapes, bounds, and the claims that matter —
// awaited waits overlap, and blocking or CPU work never stalls the event loop.
import assert from 'node:assert/strict'
import { after, describe, it } from 'node:test'
import { buildTestApp, listen } from './helpers/app.ts'
import { delay, json, timed } from './helpers/http.ts'

const { app } = await buildTestApp({ after }, { COMPUTE_THREADS: '2', COMPUTE_QUEUE_MAX: '2' })
const base = await listen(app)

async function getJson (path: string): Promise<{ status: number, body: any, headers: Headers }> {
  const response = await fetch(`${base}${path}`)
  return { status: response.status, body: await json(response), headers: response.headers }
}

describe('GET /sync and GET /async', () => {
  it('answer {"message":"Done"}', async () => {
    for (const path of ['/sync?seconds=0.05', '/async?seconds=0.05']) {
      const { status, body } = await getJson(path)
      assert.equal(status, 200)
      assert.deepEqual(body, { message: 'Done' })
    }
  })

  for (const path of ['/sync?seconds=11', '/async?seconds=-1', '/async?seconds=soon']) {
    it(`refuses ${path}`, async () => {
      const { status, body } = await getJson(path)
      assert.equal(status, 400)
      assert.equal(body.errors[0].pointer, '/seconds')
    })
  }

  it('serves 10 concurrent /async (2 s each) at once, not in turn', async () => {
    const { value: responses, ms } = await timed(async () => await Promise.all(Array.from({ length: 10 }, async () => await fetch(`${base}/async`))))
    assert.ok(responses.every((response) => response.status === 200))
    assert.ok(ms >= 2000, `each waited its 2 s (${ms.toFixed(0)} ms)`)
    assert.ok(ms < 0.75 * 2 * 2000, `10 concurrent /async took ${ms.toFixed(0)} ms: less than 0.75 × two of them in turn`)
  })

  it('keeps /healthz answering while 4 /sync and 4 /compute run', async (t) => {
    const work = [
      ...Array.from({ length: 4 }, async () => await fetch(`${base}/sync?seconds=2`)),
      ...Array.from({ length: 4 }, async () => await fetch(`${base}/compute?n=50000000`)),
    ]
    let workDone = false
    const all = Promise.all(work).finally(() => { workDone = true })
    await delay(150)
    const samples: number[] = []
    for (let i = 0; i < 5; i++) {
      const { value: response, ms } = await timed(async () => await fetch(`${base}/healthz`))
      assert.equal(response.status, 200)
      samples.push(ms)
      await delay(20)
    }
    assert.equal(workDone, false, 'the samples were taken while the blocking work was still running')
    const responses = await all
    assert.ok(responses.every((response) => response.status === 200), 'the work itself succeeded')
    // How fast is a measurement (the bench's /healthz-under-/compute claim), not a fact of every machine.
    t.diagnostic(`/healthz while the work ran: ${samples.map((s) => s.toFixed(1)).join(', ')} ms`)
  })
})

describe('GET /sync-slow and GET /async-fast', () => {
  it('return ["done", …] n times; the timers overlap, the blocking sleeps do not', async () => {
    const slow = await timed(async () => await getJson('/sync-slow?n=4&seconds=0.2'))
    const fast = await timed(async () => await getJson('/async-fast?n=4&seconds=0.2'))
    assert.deepEqual(slow.value.body, ['done', 'done', 'done', 'done'])
    assert.deepEqual(fast.value.body, ['done', 'done', 'done', 'done'])
    assert.ok(slow.ms >= 800, `/sync-slow runs its sleeps in turn (${slow.ms.toFixed(0)} ms)`)
    assert.ok(fast.ms < 0.75 * slow.ms, `/async-fast ${fast.ms.toFixed(0)} ms < 0.75 × /sync-slow ${slow.ms.toFixed(0)} ms`)
  })

  it('uses the lesson\'s ten by default and bounds n', async () => {
    assert.equal((await getJson('/async-fast?seconds=0')).body.length, 10)
    assert.equal((await getJson('/async-fast?n=21')).status, 400)
    assert.equal((await getJson('/sync-slow?n=0')).status, 400)
  })
})

describe('GET /compute', () => {
  it('counts primes below n in the worker pool', async () => {
    const { status, body } = await getJson('/compute?n=100')
    assert.equal(status, 200)
    assert.equal(body.n, 100)
    assert.equal(body.result, 25)
    assert.equal(typeof body.duration_ms, 'number')
    assert.equal((await getJson('/compute?n=1000000')).body.result, 78_498)
  })

  it('refuses n out of range', async () => {
    assert.equal((await getJson('/compute?n=1')).status, 400)
    assert.equal((await getJson('/compute?n=50000001')).status, 400)
  })

  it('answers 503 with Retry-After when the queue is full', async () => {
    // 2 threads + 2 queue places: of 8 heavy requests at once, some must be turned away.
    const results = await Promise.all(Array.from({ length: 8 }, async () => await getJson('/compute?n=50000000')))
    const refused = results.filter((result) => result.status === 503)
    assert.ok(refused.length >= 1, `statuses: ${results.map((result) => result.status).join(',')}`)
    assert.ok(results.some((result) => result.status === 200))
    for (const result of refused) {
      assert.equal(result.headers.get('retry-after'), '1')
      assert.equal(result.body.type, '/problems/service-unavailable')
    }
  })
})
