// The event-loop watchdog: a blocked loop is logged with the requests that were in flight.
import assert from 'node:assert/strict'
import { Writable } from 'node:stream'
import { after, describe, it } from 'node:test'
import { pino } from 'pino'
import { createLoopWatchdog } from '../src/lib/loop-watchdog.ts'
import { buildTestApp, listen } from './helpers/app.ts'

function block (ms: number): void {
  const until = performance.now() + ms
  while (performance.now() < until) { /* hold the event loop, on purpose */ }
}

const tick = async (ms = 120): Promise<void> => { await new Promise((resolve) => setTimeout(resolve, ms)) }

describe('event-loop watchdog', () => {
  it('names the requests in flight, and one that blocked and finished before the timer fired', async () => {
    const warnings: Array<{ blocked_ms: number, requests: unknown[] }> = []
    const watchdog = createLoopWatchdog({ thresholdMs: 150, log: { warn: (entry: never) => { warnings.push(entry) } } as never })
    watchdog.start()
    after(() => { watchdog.stop() })
    const waiting = { request_id: 'r1', method: 'GET', route: '/waiting' }
    const stillOpen = watchdog.track(waiting)
    await tick()
    const culprit = { request_id: 'r2', method: 'GET', route: '/culprit' }
    const done = watchdog.track(culprit)
    block(300)
    done()
    await tick()
    // A busy machine may stall this process elsewhere too: look for the warning of our block.
    const ours = warnings.find((warning) => warning.requests.includes(culprit))
    assert.ok(ours !== undefined, JSON.stringify(warnings))
    assert.ok(ours.blocked_ms >= 200, `blocked ${ours.blocked_ms} ms`)
    assert.deepEqual(ours.requests, [waiting, culprit])
    const seen = warnings.length
    stillOpen()
    await tick()
    block(300)
    await tick()
    const later = warnings.slice(seen)
    assert.ok(later.length > 0, 'the second block is reported too')
    assert.ok(later.every((warning) => warning.requests.length === 0), 'ended requests are not suspects of a later block')
  })

  it('is wired into the app: a blocking handler is named by route and request id', async () => {
    const lines: Array<Record<string, unknown>> = []
    const sink = new Writable({ write (chunk: Buffer, _encoding, callback) { lines.push(JSON.parse(chunk.toString()) as Record<string, unknown>); callback() } })
    const { app } = await buildTestApp({ after }, { EVENT_LOOP_BLOCK_WARN_MS: '150' }, { ready: false, logger: pino({ level: 'warn' }, sink) })
    app.get('/test/blocking/:n', async () => { block(300); return { ok: true } })
    const base = await listen(app)
    const response = await fetch(`${base}/test/blocking/1`, { headers: { 'x-request-id': 'the-culprit' } })
    assert.equal(response.status, 200)
    await tick(200)
    // Other stalls of a busy machine may be logged too (with other requests, or none): find ours.
    const warning = lines.find((line) => line.msg === 'event loop blocked; these requests were in flight' && JSON.stringify(line.requests).includes('the-culprit'))
    assert.ok(warning !== undefined, JSON.stringify(lines))
    assert.deepEqual(warning.requests, [{ request_id: 'the-culprit', method: 'GET', route: '/test/blocking/:n' }])
  })
})
