// @ts-check
// `/ui/lab`: the lesson's claims, run from this browser against this server. Each panel quotes a
// claim, sends the real requests when asked (at once where the claim is about concurrency, with
// short waits so a run takes a second or two), draws them as a waterfall and says what was
// measured and whether the claim held, from the numbers of this run: no verdict is written ahead.
// Below them, the last `npm run bench` run's numbers as charts, when the server has one.
import { html, render } from 'lit-html'
import { ApiError, request } from './api.js'
import { barChart, timingTable, waterfall } from './lab-charts.js'
import { applyResourceTiming, formatMs, keepResourceTimings, measure, measureConcurrently, median, peakConcurrency, spanMs } from './lab-measure.js'
import { errorBox, isAbort, problemText } from './ui.js'

/** @typedef {import('./lab-measure.js').Measured} Measured */
/** @typedef {import('lit-html').TemplateResult} TemplateResult */

/**
 * What a run found: the requests, what was measured (term, value, and a hook for tests to find
 * a value by), and the verdict in words.
 * @typedef {object} Outcome
 * @property {Measured[]} rows
 * @property {string[]} partNames the Server-Timing names the waterfall colours
 * @property {string} caption
 * @property {Array<{ term: string, value: string, measure?: string }>} measured
 * @property {string[]} verdict  sentences
 */

/**
 * @typedef {object} Panel
 * @property {string} id
 * @property {string} title
 * @property {string} lesson        the lesson's words
 * @property {TemplateResult} about what this panel sends, and what the route does
 * @property {(signal: AbortSignal) => Promise<Outcome>} run
 */

/** @typedef {{ state: 'idle' } | { state: 'running' } | { state: 'done', outcome: Outcome } | { state: 'failed', error: unknown }} PanelState */

const isOk = (/** @type {Measured} */ m) => m.status >= 200 && m.status < 300
const serverMs = (/** @type {Measured} */ m) => m.responseStartMs - m.requestStartMs
const total = (/** @type {Measured} */ m) => m.endMs - m.startMs
const partsSum = (/** @type {Measured} */ m) => m.parts.reduce((sum, { durationMs }) => sum + durationMs, 0)
const partsMax = (/** @type {Measured} */ m) => Math.max(0, ...m.parts.map(({ durationMs }) => durationMs))
/** Whether the server's time is nearer the sum of the parts than their longest: they ran one after the other. */
const addsUp = (/** @type {Measured} */ m) => Math.abs(serverMs(m) - partsSum(m)) < Math.abs(serverMs(m) - partsMax(m))
const partsText = (/** @type {Measured} */ m, joiner = ' + ') => m.parts.map(({ name, durationMs }) => `${name} ${formatMs(durationMs)}`).join(joiner)
/** A failed request in a few words: its status and the problem's detail. */
function failureText (/** @type {Measured} */ m) {
  if (m.status === 0) return `no answer (${m.failure ?? 'failed'})`
  const body = /** @type {{ detail?: string, title?: string } | undefined} */ (typeof m.body === 'object' && m.body !== null ? m.body : undefined)
  return `HTTP ${m.status}${body?.detail === undefined ? '' : ` (${body.detail.replace(/\.$/, '')})`}`
}
/** "2 of 20 requests failed (HTTP 503: …)", or nothing. */
function failuresNote (/** @type {Measured[]} */ rows) {
  const failed = rows.filter((m) => !isOk(m))
  return failed.length === 0 ? [] : [`${failed.length} of ${rows.length} requests failed (${failureText(/** @type {Measured} */ (failed[0]))}), so the times above include failures.`]
}
/** The browser's own limit, which any claim about 10 concurrent requests meets first. */
function queueNote (/** @type {Measured[]} */ rows, /** @type {number} */ thresholdMs) {
  const queued = rows.filter((m) => m.requestStartMs - m.startMs > thresholdMs).length
  return queued === 0
    ? []
    : [`${queued} of these requests waited in the browser before they were sent (the thin start of their bars): a browser opens at most 6 connections to one HTTP/1.1 origin, so 10 requests sent at once go in two rounds whatever the server does. The comparison holds, since both sides meet the same limit.`]
}
const sleep = async (/** @type {number} */ ms, /** @type {AbortSignal} */ signal) => {
  await new Promise((resolve, reject) => {
    const timer = setTimeout(resolve, ms)
    signal.addEventListener('abort', () => { clearTimeout(timer); reject(new DOMException('The page was left.', 'AbortError')) }, { once: true })
  })
}

const WAIT_SECONDS = 0.5
const syncVsAsync = /** @type {Panel} */ ({
  id: 'lab-sync-async',
  title: '10 concurrent /sync vs 10 concurrent /async',
  lesson: '“Synchronous: 10 requests = 20 seconds (blocks)” — “Asynchronous: 10 concurrent requests = ~2 seconds (non-blocking)”: /sync calls time.sleep(2), /async awaits asyncio.sleep(2).',
  about: html`Sends 10 <code>GET /sync?seconds=${WAIT_SECONDS}</code> at once (a blocking sleep, which this service runs in a pool of worker threads, as FastAPI runs a <code>def</code> route in its thread pool), then 10 <code>GET /async?seconds=${WAIT_SECONDS}</code> at once (an awaited timer).`,
  run: async (signal) => {
    const sync = await measureConcurrently(10, `/sync?seconds=${WAIT_SECONDS}`, '/sync', signal)
    const awaited = await measureConcurrently(10, `/async?seconds=${WAIT_SECONDS}`, '/async', signal)
    const rows = [...sync, ...awaited]
    const waitMs = WAIT_SECONDS * 1000
    const syncMs = spanMs(sync)
    const asyncMs = spanMs(awaited)
    const lessonSyncMs = 10 * waitMs
    const peak = peakConcurrency(sync)
    const verdict = []
    const syncServerMs = median(sync.filter(isOk).map(serverMs))
    if (syncMs >= 0.8 * lessonSyncMs) {
      verdict.push(`10 × /sync took ${formatMs(syncMs)}, near the ${formatMs(lessonSyncMs)} the lesson says (10 × ${WAIT_SECONDS} s): the blocking sleeps ran one after another (at most ${peak} at the server at once).`)
    } else {
      verdict.push(`10 × /sync took ${formatMs(syncMs)} and 10 × /async ${formatMs(asyncMs)}, not the ${formatMs(lessonSyncMs)} the lesson says for /sync (10 × ${WAIT_SECONDS} s): the blocking sleeps ran side by side in worker threads (up to ${peak} at the server at once), as FastAPI runs a def route in its thread pool. Only a blocking call inside an async function would take the lesson's time.`)
      if (syncMs > 1.5 * asyncMs) {
        verdict.push(syncServerMs > 1.5 * waitMs
          ? `/sync was slower than /async here because each sleep of ${formatMs(waitMs)} took ${formatMs(syncServerMs)} at the server (median): the pool's threads start on first use and leave after 30 s idle, which this burst paid. Run again to see warm threads.`
          : `/sync was ${(syncMs / asyncMs).toFixed(1)} × slower than /async, though each sleep took ${formatMs(syncServerMs)} at the server (median): they waited for a free thread.`)
      }
    }
    verdict.push(asyncMs <= 2.5 * waitMs
      ? `10 × /async took ${formatMs(asyncMs)} for waits of ${formatMs(waitMs)}: as the lesson says, awaited timers hold nothing and overlap.`
      : `10 × /async took ${formatMs(asyncMs)} for waits of ${formatMs(waitMs)}: more than two rounds of waits, so something other than the timers held them up (a busy machine?).`)
    return {
      rows,
      partNames: [],
      caption: `Waterfall of 10 concurrent /sync and then 10 concurrent /async requests, ${WAIT_SECONDS} s each`,
      measured: [
        { term: '10 × /sync, first start to last end', value: formatMs(syncMs), measure: 'sync-total' },
        { term: '10 × /async, first start to last end', value: formatMs(asyncMs), measure: 'async-total' },
        { term: 'the lesson says', value: `${formatMs(lessonSyncMs)} vs ${formatMs(waitMs)}` },
        { term: '/sync at the server at once, at most', value: String(peak) },
      ],
      verdict: [...verdict, ...queueNote(rows, waitMs / 4), 'These routes send no Server-Timing: each bar is its whole request.', ...failuresNote(rows)],
    }
  },
})

const DELAY_MS = 500
const slowVsFast = /** @type {Panel} */ ({
  id: 'lab-slow-fast',
  title: '/slow vs /fast',
  lesson: '“Sequential (slow): 2 seconds total” — user = await fetch_user(), then orders = await fetch_orders(), 1 s each; “Concurrent (fast): 1 second total” with asyncio.gather(fetch_user(), fetch_orders()).',
  about: html`Sends <code>GET /slow?delay_ms=${DELAY_MS}</code> and <code>GET /fast?delay_ms=${DELAY_MS}</code> at once: both read user 1 and their orders from PostgreSQL, each read after ${DELAY_MS} ms of <code>pg_sleep</code>; <code>/slow</code> one after the other on one connection, <code>/fast</code> at once on two. Their <code>Server-Timing</code> gives each read's time.`,
  run: async (signal) => {
    const rows = await Promise.all([measure(`/slow?delay_ms=${DELAY_MS}`, '/slow', signal), measure(`/fast?delay_ms=${DELAY_MS}`, '/fast', signal)])
    await applyResourceTiming(rows)
    const [slow, fast] = /** @type {[Measured, Measured]} */ (rows)
    slow.partsAtOnce = false
    fast.partsAtOnce = true
    const measured = [
      { term: '/slow total', value: formatMs(total(slow)), measure: 'slow-total' },
      { term: '/fast total', value: formatMs(total(fast)), measure: 'fast-total' },
      { term: '/slow parts', value: slow.parts.length === 0 ? '—' : partsText(slow) },
      { term: '/fast parts', value: fast.parts.length === 0 ? '—' : partsText(fast, ', ') },
      { term: 'the lesson says', value: `${formatMs(2 * DELAY_MS)} vs ${formatMs(DELAY_MS)}` },
    ]
    /** @type {string[]} */
    const verdict = []
    if (!isOk(slow) || !isOk(fast)) {
      verdict.push(`No comparison: ${[slow, fast].filter((m) => !isOk(m)).map((m) => `${m.label} answered ${failureText(m)}`).join('; ')}.`)
    } else {
      const ratio = total(slow) / total(fast)
      const slowShape = addsUp(slow) ? `took the sum of its parts (${partsText(slow)} = ${formatMs(partsSum(slow))})` : `took about its longest part (${formatMs(partsMax(slow))}), not their sum (${formatMs(partsSum(slow))})`
      const fastShape = addsUp(fast) ? `took the sum of its parts (${formatMs(partsSum(fast))})` : `took about its longest part (${formatMs(partsMax(fast))}), not their sum (${formatMs(partsSum(fast))})`
      const holds = addsUp(slow) && !addsUp(fast) && total(fast) < total(slow)
      verdict.push(`${holds ? 'As the lesson says: ' : 'Not as the lesson says: '}/slow ${slowShape}; /fast ${fastShape}.`)
      verdict.push(total(fast) < total(slow)
        ? `/fast answered in ${formatMs(total(fast))}, ${ratio.toFixed(1)} × quicker than /slow's ${formatMs(total(slow))}.`
        : `/fast (${formatMs(total(fast))}) was not quicker than /slow (${formatMs(total(slow))}).`)
    }
    return { rows, partNames: ['user', 'orders'], caption: `Waterfall of /slow and /fast with ${DELAY_MS} ms per read, split into their Server-Timing parts`, measured, verdict }
  },
})

const SLEEP_SECONDS = 0.1
const sleepsInSequence = /** @type {Panel} */ ({
  id: 'lab-sleeps',
  title: '/sync-slow vs /async-fast',
  lesson: '“Sync: 10 seconds for 10 requests” — /sync-slow does time.sleep(1) ten times; “Async: ~1 second for 10 concurrent requests” — /async-fast gathers ten asyncio.sleep(1).',
  about: html`Sends <code>GET /sync-slow?n=10&amp;seconds=${SLEEP_SECONDS}</code> (ten blocking sleeps in turn, in the worker pool) and <code>GET /async-fast?n=10&amp;seconds=${SLEEP_SECONDS}</code> (ten timers at once) together.`,
  run: async (signal) => {
    const rows = await Promise.all([
      measure(`/sync-slow?n=10&seconds=${SLEEP_SECONDS}`, '/sync-slow', signal),
      measure(`/async-fast?n=10&seconds=${SLEEP_SECONDS}`, '/async-fast', signal),
    ])
    await applyResourceTiming(rows)
    const [inTurn, atOnce] = /** @type {[Measured, Measured]} */ (rows)
    const stepMs = SLEEP_SECONDS * 1000
    const verdict = []
    if (!isOk(inTurn) || !isOk(atOnce)) {
      verdict.push(`No comparison: ${rows.filter((m) => !isOk(m)).map((m) => `${m.label} answered ${failureText(m)}`).join('; ')}.`)
    } else {
      const added = total(inTurn) >= 0.75 * 10 * stepMs
      const overlapped = total(atOnce) <= 0.5 * 10 * stepMs
      verdict.push(added
        ? `/sync-slow took ${formatMs(total(inTurn))}: its ten sleeps of ${formatMs(stepMs)} added up (${formatMs(10 * stepMs)}), as the lesson says.`
        : `/sync-slow took ${formatMs(total(inTurn))}, less than its ten sleeps of ${formatMs(stepMs)} added up (${formatMs(10 * stepMs)}): not as the lesson says.`)
      verdict.push(overlapped
        ? `/async-fast took ${formatMs(total(atOnce))}: its ten timers overlapped (one is ${formatMs(stepMs)}), as the lesson says — ${(total(inTurn) / total(atOnce)).toFixed(1)} × quicker.`
        : `/async-fast took ${formatMs(total(atOnce))}: its timers did not overlap as the lesson says (one is ${formatMs(stepMs)}).`)
    }
    return {
      rows,
      partNames: [],
      caption: `Waterfall of /sync-slow and /async-fast, 10 waits of ${SLEEP_SECONDS} s each`,
      measured: [
        { term: '/sync-slow total', value: formatMs(total(inTurn)), measure: 'sync-slow-total' },
        { term: '/async-fast total', value: formatMs(total(atOnce)), measure: 'async-fast-total' },
        { term: 'the lesson says (for 10 × this wait)', value: `${formatMs(10 * stepMs)} vs ${formatMs(stepMs)}` },
      ],
      verdict: [...verdict, 'These routes send no Server-Timing: each bar is its whole request.'],
    }
  },
})

const MISSING_USER = 2_000_000_000
const dashboard = /** @type {Panel} */ ({
  id: 'lab-dashboard',
  title: '/dashboard with a part that fails',
  lesson: '“Multiple concurrent operations with asyncio.gather()”: user, orders, stats = await asyncio.gather(fetch_user(), fetch_orders(), fetch_stats()). The lesson does not say what happens when one fails: asyncio.gather raises the first exception.',
  about: html`Sends <code>GET /dashboard?user_id=1</code> and <code>GET /dashboard?user_id=${MISSING_USER}</code> (a user that does not exist) at once. The three parts run at once, each with a deadline (<code>DASHBOARD_PART_TIMEOUT_MS</code>). The user is required: when it fails, the answer fails and the other parts are cancelled. Orders and stats are optional: when one fails, the answer is still 200 with that part <code>null</code> and <code>errors</code> saying why. A client cannot make orders or stats fail on purpose — they fail when the database does (an error, a stalled query past the deadline; the tests rename and lock the table) — and the API keeps no switch for it: a query parameter that makes a production route fail would be fault injection open to any client, so this panel shows the failure a client can cause, and any real one that happens.`,
  run: async (signal) => {
    const rows = await Promise.all([measure('/dashboard?user_id=1', 'user 1', signal), measure(`/dashboard?user_id=${MISSING_USER}`, 'missing user', signal)])
    await applyResourceTiming(rows)
    for (const m of rows) m.partsAtOnce = true
    /** @type {string[]} */
    const verdict = []
    for (const m of rows) {
      const body = /** @type {{ errors?: Array<{ part: string, reason: string }> }} */ (typeof m.body === 'object' && m.body !== null ? m.body : {})
      if (isOk(m) && (body.errors ?? []).length > 0) {
        verdict.push(`${m.url}: ${body.errors?.map(({ part, reason }) => `${part} failed (${reason})`).join(', ')}; the answer is still 200 with ${body.errors?.length === 1 ? 'that part' : 'those parts'} null: a failed optional part is reported, not fatal.`)
      } else if (isOk(m)) {
        verdict.push(m.parts.length > 1 && !addsUp(m)
          ? `${m.url}: all three parts answered (${partsText(m, ', ')}); the server took ${formatMs(serverMs(m))}, less than their sum (${formatMs(partsSum(m))}): they ran at once.`
          : `${m.url}: all three parts answered (${m.parts.length === 0 ? 'no Server-Timing' : partsText(m, ', ')}) in ${formatMs(serverMs(m))} at the server: too quick to tell their overlap from the rest of the request.`)
      } else if (m.status === 404) {
        verdict.push(`${m.url}: the required part failed, so the whole answer did: ${failureText(m)}, as asyncio.gather raises the first failure. ` +
          (m.parts.length === 0 ? 'The failed answer carried no Server-Timing.' : `The other parts were cancelled or had already finished (Server-Timing ${partsText(m, ', ')}).`))
      } else {
        verdict.push(`${m.url}: ${failureText(m)}.`)
      }
    }
    return {
      rows,
      partNames: ['user', 'orders', 'stats'],
      caption: 'Waterfall of /dashboard for user 1 and for a missing user, split into the user, orders and stats parts',
      measured: rows.map((m) => ({ term: m.label, value: `${isOk(m) ? `HTTP ${m.status}` : failureText(m)} in ${formatMs(total(m))}`, measure: m === rows[0] ? 'dashboard-found' : 'dashboard-missing' })),
      verdict,
    }
  },
})

const multiple = /** @type {Panel} */ ({
  id: 'lab-multiple',
  title: '/multiple with an upstream that fails, and partial=true',
  lesson: '“Multiple concurrent requests”: responses = await asyncio.gather(client.get(api1), client.get(api2), client.get(api3)) — the time of the slowest. If one raises, gather raises it and the lesson returns nothing.',
  about: html`Sends <code>GET /multiple</code> and <code>GET /multiple?partial=true</code> at once. The server calls its first three upstreams (<code>UPSTREAM_URLS</code>, or the sample ones under <code>/_sample/</code>, which answer after 100, 200 and 300 ms) concurrently, each with a deadline. One failing aborts the others and the answer is its 502/504 problem; with <code>partial=true</code> it is 200 with <code>null</code> for each failed body and <code>errors</code>. The sample upstreams never fail, and <code>/multiple</code> passes nothing of the request to an upstream (the service calls only the URLs it was configured with), so a client cannot make one fail: start the server with an <code>UPSTREAM_URLS</code> entry that fails (a port nobody listens on) to see that case here.`,
  run: async (signal) => {
    const rows = await Promise.all([measure('/multiple', '/multiple', signal), measure('/multiple?partial=true', 'partial=true', signal)])
    await applyResourceTiming(rows)
    const [whole, partial] = /** @type {[Measured, Measured]} */ (rows)
    for (const m of rows) m.partsAtOnce = true
    /** @type {string[]} */
    const verdict = []
    if (whole.status === 503 && partial.status === 503) {
      verdict.push(`No upstream to call: ${failureText(whole)}`)
    } else {
      if (isOk(whole)) {
        verdict.push(whole.parts.length > 1 && !addsUp(whole)
          ? `Every upstream answered: /multiple took ${formatMs(serverMs(whole))} at the server, about its slowest upstream (${formatMs(partsMax(whole))}), not their sum (${formatMs(partsSum(whole))}).`
          : `Every upstream answered: /multiple took ${formatMs(serverMs(whole))} at the server (${partsText(whole) || 'no Server-Timing'}).`)
      } else {
        const problem = /** @type {{ upstream?: string, reason?: string }} */ (typeof whole.body === 'object' && whole.body !== null ? whole.body : {})
        verdict.push(`${problem.upstream ?? 'An upstream'} failed (${problem.reason ?? 'failed'}), so /multiple failed as a whole: ${failureText(whole)}; the other calls were aborted (Server-Timing ${partsText(whole, ', ') || 'none'}).`)
      }
      const body = /** @type {{ results?: unknown[], errors?: Array<{ upstream: string, status: number, reason: string }> }} */ (typeof partial.body === 'object' && partial.body !== null ? partial.body : {})
      if (!isOk(partial)) verdict.push(`partial=true: ${failureText(partial)}.`)
      else if ((body.errors ?? []).length === 0) verdict.push(`partial=true: 200 with all ${body.results?.length ?? 0} bodies and no errors: nothing failed this time.`)
      else verdict.push(`partial=true: 200 with ${(body.results ?? []).filter((result) => result !== null).length} of ${body.results?.length ?? 0} bodies; ${body.errors?.map(({ upstream, status, reason }) => `${upstream} failed (${status} ${reason})`).join(', ')}.`)
    }
    return {
      rows,
      partNames: ['upstream-1', 'upstream-2', 'upstream-3'],
      caption: 'Waterfall of /multiple and /multiple?partial=true, split into one part per upstream',
      measured: rows.map((m) => ({ term: m.label, value: `${isOk(m) ? `HTTP ${m.status}` : failureText(m)} in ${formatMs(total(m))}` })),
      verdict,
    }
  },
})

const COMPUTE_N = 30_000_000
// More than the CPU pool's threads on a server of up to 3 cores (one per core by default), so some wait in its queue.
const COMPUTE_AT_ONCE = 4
const healthUnderCompute = /** @type {Panel} */ ({
  id: 'lab-compute',
  title: '/healthz polled while /compute saturates the CPU pool',
  lesson: '“Use Sync For: CPU-bound operations (heavy computations)”: def compute(): return heavy_calculation() — a def route runs in a thread pool, so the server stays responsive.',
  about: html`Asks <code>GET /healthz</code> three times, then sends ${COMPUTE_AT_ONCE} <code>GET /compute?n=${COMPUTE_N.toLocaleString('en')}</code> at once (counting primes: CPU work on the CPU pool, one thread per core by default, so on a server of up to 3 cores some wait in its queue) and asks <code>/healthz</code> every 200 ms until they are done. <code>/compute</code> is rate-limited per client (<code>RATE_LIMIT_COMPUTE</code>): a run uses ${COMPUTE_AT_ONCE} of it.`,
  run: async (signal) => {
    /** @type {Measured[]} */
    const before = []
    for (let index = 0; index < 3; index++) {
      before.push(await measure('/healthz', '/healthz before', signal))
      await sleep(50, signal)
    }
    let isComputing = true
    const computing = Promise.all(Array.from({ length: COMPUTE_AT_ONCE }, async (_, index) => await measure(`/compute?n=${COMPUTE_N}`, `/compute #${index + 1}`, signal)))
      .finally(() => { isComputing = false })
    // Awaited below; when the page is left first, the loop's abort is the error that counts.
    computing.catch(() => {})
    /** @type {Measured[]} */
    const during = []
    while (isComputing) {
      during.push(await measure('/healthz', '/healthz during', signal))
      await sleep(200, signal)
    }
    const computes = await computing
    const rows = [...before, ...computes, ...during]
    await applyResourceTiming(rows)
    const answered = computes.filter(isOk)
    const computeMs = median(answered.map(serverMs))
    const beforeMs = median(before.map(total))
    const duringMs = during.map(total)
    const slowestMs = Math.max(0, ...duringMs)
    /** @type {string[]} */
    const verdict = []
    if (answered.length === 0) {
      verdict.push(`No /compute ran: ${failureText(/** @type {Measured} */ (computes[0]))}.`)
    } else if (slowestMs < 0.25 * computeMs) {
      verdict.push(`The server stayed responsive: while the CPU pool computed (a /compute took ${formatMs(computeMs)} at the median), /healthz answered in ${formatMs(median(duringMs))} at the median and ${formatMs(slowestMs)} at worst, against ${formatMs(beforeMs)} before. The counting runs in worker threads, never on the event loop.`)
    } else {
      verdict.push(`/healthz was held up: its slowest answer took ${formatMs(slowestMs)} while a /compute took ${formatMs(computeMs)} (median ${formatMs(median(duringMs))}, against ${formatMs(beforeMs)} before): the CPU work competed with the event loop.`)
    }
    verdict.push('In FastAPI the thread pool and the event loop share Python\'s GIL: the bench below measures both.', ...failuresNote(computes))
    return {
      rows,
      partNames: [],
      caption: `Waterfall of /healthz before and during ${COMPUTE_AT_ONCE} /compute requests`,
      measured: [
        { term: '/healthz before (median)', value: formatMs(beforeMs) },
        { term: '/healthz during (median, slowest)', value: `${formatMs(median(duringMs))}, ${formatMs(slowestMs)}`, measure: 'healthz-during' },
        { term: '/healthz answers during the computing', value: String(during.length) },
        { term: '/compute at the server (median)', value: formatMs(computeMs), measure: 'compute' },
      ],
      verdict,
    }
  },
})

const PANELS = [syncVsAsync, slowVsFast, sleepsInSequence, dashboard, multiple, healthUnderCompute]

/**
 * What the page reads of a bench run (bench/results.ts `BenchResults`: that module is Node's,
 * outside this browser project, so the fields used are repeated here).
 * @typedef {{ rps: number }} LoadRun
 * @typedef {{ name: string, results: Partial<Record<string, { median: LoadRun }>> }} ThroughputScenario
 * @typedef {{ claim: string, lessonSays: string, dataApi: string, fastapi: string, verdict: string }} LessonClaim
 * @typedef {{ startedAt: string, quick: boolean, machine: { cpus: number, cpuModel: string, node: string, postgres: string, pinned: string }, throughput: ThroughputScenario[], lesson: LessonClaim[] }} BenchResults
 */
/** @typedef {{ state: 'loading' } | { state: 'absent', detail: string } | { state: 'failed', error: unknown } | { state: 'loaded', results: BenchResults }} BenchState */

/** @type {import('./ui.js').Page} */
export async function labPage (root, { signal }) {
  keepResourceTimings()
  /** @type {Map<string, PanelState>} */
  const states = new Map(PANELS.map((panel) => [panel.id, { state: 'idle' }]))
  /** @type {BenchState} */
  let bench = { state: 'loading' }
  const chartWidth = () => {
    const page = root.clientWidth || 800
    // Beside the verdict on a wide screen (app.css: .lab-result), alone on a narrow one.
    return Math.round(Math.min(960, Math.max(300, (page >= 900 ? page * 0.6 : page) - 24)))
  }
  const draw = () => { render(template(states, bench, chartWidth(), runPanel), root) }

  const runPanel = async (/** @type {Panel} */ panel) => {
    if (states.get(panel.id)?.state === 'running') return
    states.set(panel.id, { state: 'running' })
    draw()
    try {
      states.set(panel.id, { state: 'done', outcome: await panel.run(signal) })
    } catch (error) {
      if (signal.aborted || isAbort(error)) return
      states.set(panel.id, { state: 'failed', error })
    }
    if (!signal.aborted) draw()
  }

  let resizeTimer = 0
  const onResize = () => { clearTimeout(resizeTimer); resizeTimer = setTimeout(draw, 150) }
  addEventListener('resize', onResize)
  signal.addEventListener('abort', () => { removeEventListener('resize', onResize); clearTimeout(resizeTimer) }, { once: true })

  draw()
  try {
    bench = { state: 'loaded', results: /** @type {{ body: BenchResults }} */ (await request('/ui/bench/latest.json', { signal })).body }
  } catch (error) {
    if (signal.aborted) return
    bench = error instanceof ApiError && error.status === 404 ? { state: 'absent', detail: problemText(error) } : { state: 'failed', error }
  }
  draw()
}

/**
 * @param {Map<string, PanelState>} states
 * @param {BenchState} bench
 * @param {number} width
 * @param {(panel: Panel) => Promise<void>} runPanel
 */
function template (states, bench, width, runPanel) {
  return html`
    <h1>Lesson lab</h1>
    <p class="lead">Each panel runs one claim of the FastAPI async lesson against this server, from your browser, and draws the requests as a waterfall: one bar per request on a shared time axis, split into the parts the route reports in its <code>Server-Timing</code> header. The verdicts are computed from what this run measured.</p>
    <div class="lab-panels">
      ${PANELS.map((panel) => panelTemplate(panel, states.get(panel.id) ?? { state: 'idle' }, width, runPanel))}
    </div>
    ${benchTemplate(bench, width)}`
}

/**
 * @param {Panel} panel @param {PanelState} state @param {number} width
 * @param {(panel: Panel) => Promise<void>} runPanel
 */
function panelTemplate (panel, state, width, runPanel) {
  const isRunning = state.state === 'running'
  const onRun = () => { void runPanel(panel) }
  return html`<section class="lab-panel" id=${panel.id} aria-labelledby=${`${panel.id}-title`} aria-busy=${isRunning ? 'true' : 'false'}>
    <h2 id=${`${panel.id}-title`}>${panel.title}</h2>
    <blockquote class="lab-claim"><p>${panel.lesson}</p></blockquote>
    <p class="lab-about">${panel.about}</p>
    <div class="row">
      <button type="button" class="primary" aria-disabled=${isRunning ? 'true' : 'false'} aria-describedby=${`${panel.id}-status`} @click=${onRun}>${state.state === 'idle' ? 'Run' : 'Run again'}</button>
      <span id=${`${panel.id}-status`} class="muted" role="status">${
        state.state === 'running' ? 'Running…'
        : state.state === 'done' ? `Done: ${state.outcome.rows.length} requests.`
        : state.state === 'failed' ? 'The run failed.'
        : 'Not run yet.'}</span>
    </div>
    ${state.state === 'failed' ? errorBox(state.error) : ''}
    ${state.state === 'done' ? resultTemplate(panel, state.outcome, width) : ''}
  </section>`
}

/** @param {Panel} panel @param {Outcome} outcome @param {number} width */
function resultTemplate (panel, outcome, width) {
  return html`<div class="lab-result">
    <div class="lab-drawing">
      ${waterfall({ rows: outcome.rows, partNames: outcome.partNames, width, caption: outcome.caption })}
      ${timingTable(outcome.rows)}
    </div>
    <div class="lab-verdict">
      <h3 id=${`${panel.id}-measured`}>Measured</h3>
      <dl class="lab-measured" aria-labelledby=${`${panel.id}-measured`}>
        ${outcome.measured.map(({ term, value, measure }) => html`<div><dt>${term}</dt><dd data-measure=${measure ?? ''}>${value}</dd></div>`)}
      </dl>
      <h3>Verdict</h3>
      ${outcome.verdict.map((sentence) => html`<p>${sentence}</p>`)}
    </div>
  </div>`
}

/**
 * The numbers of a claim's text, as the bench writes them ('2.03 s vs 1.02 s', 'p50 0.3 ms, p99
 * 4.6 ms', '…; blocking call inside async def: 20.04 s'), named after the claim's two routes
 * for a pair.
 * @param {string} text @param {[string, string] | undefined} names
 * @returns {Array<{ label: string, ms: number }>}
 */
export function readClaimNumbers (text, names) {
  const toMs = (/** @type {string} */ value, /** @type {string} */ unit) => Number(value) * (unit === 's' ? 1000 : 1)
  /** @type {Array<{ label: string, ms: number }>} */
  const numbers = []
  let rest = text
  const pair = /(\d+(?:\.\d+)?)\s*(ms|s)\s+vs\s+(\d+(?:\.\d+)?)\s*(ms|s)\b/.exec(text)
  if (pair !== null && names !== undefined) {
    numbers.push({ label: names[0], ms: toMs(pair[1] ?? '', pair[2] ?? '') }, { label: names[1], ms: toMs(pair[3] ?? '', pair[4] ?? '') })
    rest = text.replace(pair[0], '')
  }
  for (const match of rest.matchAll(/([A-Za-z][\w ]*?):?\s+(\d+(?:\.\d+)?)\s*(ms|s)\b/g)) {
    numbers.push({ label: (match[1] ?? '').trim(), ms: toMs(match[2] ?? '', match[3] ?? '') })
  }
  return numbers
}

/** @param {BenchState} bench @param {number} width */
function benchTemplate (bench, width) {
  const heading = html`<h2 id="lab-bench">The last benchmark run</h2>`
  if (bench.state === 'loading') return html`<section aria-labelledby="lab-bench">${heading}<p class="muted">Loading…</p></section>`
  if (bench.state === 'failed') return html`<section aria-labelledby="lab-bench">${heading}${errorBox(bench.error)}</section>`
  if (bench.state === 'absent') {
    return html`<section aria-labelledby="lab-bench">${heading}
      <p>This server has no benchmark results. Run <code>npm run bench</code> (or <code>npm run bench -- --quick</code>, under 2 minutes) in its checkout: it measures the lesson's claims under load, against the lesson's own FastAPI app too, and writes <code>bench/results/</code>, which this page then charts.</p>
    </section>`
  }
  const { results } = bench
  const chartsWidth = Math.min(width, 440)
  const claims = results.lesson.map((claim, index) => {
    const names = /** @type {[string, string] | undefined} */ (/(\/[\w{}/-]+) vs (\/[\w{}/-]+)/.exec(claim.claim)?.slice(1, 3))
    /** @type {import('./lab-charts.js').BarRow[]} */
    const rows = []
    for (const [series, who, text] of /** @type {const} */ ([['lesson', 'lesson', claim.lessonSays], ['ours', 'data-api', claim.dataApi], ['theirs', 'FastAPI', claim.fastapi]])) {
      for (const { label, ms } of readClaimNumbers(text, names)) rows.push({ label: `${who}: ${label}`, value: ms, series })
    }
    const isSeconds = Math.max(...rows.map(({ value }) => value)) >= 1000
    const chart = rows.length === 0
      ? ''
      : barChart({ id: `lab-claim-${index}`, title: claim.claim, rows: rows.map((row) => ({ ...row, value: isSeconds ? row.value / 1000 : row.value })), unit: isSeconds ? 's' : 'ms', axisTitle: isSeconds ? 'seconds' : 'milliseconds', width: chartsWidth })
    return html`<article class="lab-bench-claim">
      <h3>${claim.claim}</h3>
      ${chart}
      <dl class="lab-measured">
        <div><dt>the lesson says</dt><dd>${claim.lessonSays}</dd></div>
        <div><dt>data-api</dt><dd>${claim.dataApi}</dd></div>
        <div><dt>FastAPI</dt><dd>${claim.fastapi}</dd></div>
      </dl>
      <p>${claim.verdict}</p>
    </article>`
  })
  /** @type {import('./lab-charts.js').BarRow[]} */
  const throughput = results.throughput.flatMap((scenario) => [
    ...(scenario.results['data-api'] === undefined ? [] : [{ label: `${scenario.name}: data-api`, value: scenario.results['data-api'].median.rps, series: /** @type {const} */ ('ours') }]),
    ...(scenario.results['FastAPI (shared pool)'] === undefined ? [] : [{ label: `${scenario.name}: FastAPI`, value: scenario.results['FastAPI (shared pool)'].median.rps, series: /** @type {const} */ ('theirs') }]),
  ])
  return html`<section aria-labelledby="lab-bench">${heading}
    <p>Run of ${new Date(results.startedAt).toLocaleString('en-GB', { dateStyle: 'medium', timeStyle: 'short' })}${results.quick ? ' (quick)' : ''} on ${results.machine.cpus} × ${results.machine.cpuModel}, Node ${results.machine.node}, PostgreSQL ${results.machine.postgres}; ${results.machine.pinned}. Longer waits and real load: the lesson's own numbers, where the panels above use short ones.</p>
    <ul class="lab-legend">
      <li><span class="lab-swatch lab-series-lesson" aria-hidden="true"></span>the lesson says</li>
      <li><span class="lab-swatch lab-series-ours" aria-hidden="true"></span>data-api, measured</li>
      <li><span class="lab-swatch lab-series-theirs" aria-hidden="true"></span>the lesson's FastAPI app, measured</li>
    </ul>
    <div class="lab-bench-claims">
      ${claims}
      ${throughput.length === 0 ? '' : html`<article class="lab-bench-claim">
        <h3>Throughput (median run)</h3>
        ${barChart({ id: 'lab-throughput', title: 'Requests per second, median run', rows: throughput, unit: 'req/s', axisTitle: 'requests per second', width: chartsWidth })}
      </article>`}
    </div>
  </section>`
}
