// Soak: a mixed workload at a fixed rate, well below capacity, for several minutes, against
// `data-api serve` on an embedded PostgreSQL of its own (temporary DATA_DIR, demo data); the
// server's memory and the latencies are reported per window, and a verdict is computed: flat
// memory (least-squares slope of RSS) and no growth in p99 (last window against the first).
//   node bench/soak.ts [--minutes 5] [--window-seconds 30] [--rate 100] [--warm-up-windows 1]
// Loopback only, bounded in time, rate and requests in flight. Writes bench/results/soak-<time>.json,
// bench/charts/soak.svg and the soak section of BENCHMARKS.md. Ctrl-C/SIGTERM stop the load, the
// server and its database, and remove the temporary directory.
import { spawn, type ChildProcess } from 'node:child_process'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import readline from 'node:readline'
import { parseArgs } from 'node:util'
import { PROJECT_ROOT, spawnServer, type SpawnedServer } from '../tools/processes.ts'
import { SOAK_MIX, type LoadWindow, type SoakLoadOptions } from './soak-load.ts'
import { computeVerdict, describeVerdict, progressLine, PROGRESS_HEADER, renderSoakChart, renderSoakMarkdown, reproduceCommand, updateSoakSection, type ServerSample, type SoakResults, type SoakWindow } from './soak-report.ts'
import { describeMachine } from './results.ts'
import { ensureDatabase } from '../src/db/database.ts'
import { runningEmbeddedUrl } from '../src/db/embedded-postgres.ts'
import { createSql } from '../src/db/pool.ts'
import { stopProcess } from '../src/lib/child-process.ts'

const { values } = parseArgs({
  options: {
    minutes: { type: 'string', default: '5' },
    'window-seconds': { type: 'string', default: '30' },
    rate: { type: 'string', default: '100' },
    'warm-up-windows': { type: 'string', default: '1' },
  },
})

function bounded (name: string, text: string, min: number, max: number): number {
  const value = Number(text)
  if (!Number.isFinite(value) || value < min || value > max) {
    console.error(`bench:soak: --${name} must be a number from ${min} to ${max} (got ${text})`)
    process.exit(2)
  }
  return value
}

const minutes = bounded('minutes', values.minutes, 0.1, 240)
const windowSeconds = bounded('window-seconds', values['window-seconds'], 2, 600)
const rate = bounded('rate', values.rate, 1, 2000)
const windowCount = Math.max(2, Math.round(minutes * 60 / windowSeconds))
const warmUpWindows = Math.floor(bounded('warm-up-windows', values['warm-up-windows'], 0, windowCount - 2))
const RSS_SAMPLE_MS = 1_000
const SCRAPE_MS = 5_000
// `[pid:isolate]  12345 ms: Mark-Compact 180.2 (300.1) -> 88.7 (140.2) MB, …` (--trace-gc; the time is since the isolate started).
const FULL_GC_LINE = /^\[\d+:(0x[\da-f]+)\]\s+([\d.]+) ms: Mark-Compact(?: \(reduce\))? ([\d.]+) \([\d.]+\) -> ([\d.]+) \([\d.]+\) MB/
const ANY_GC_LINE = /^\[\d+:(0x[\da-f]+)\]\s+[\d.]+ ms: /

/**
 * Full GCs of the main thread from a --trace-gc log: [ms since the process started, MB before, MB after].
 * The main isolate is the first to collect (worker threads start later, on demand); each isolate
 * counts its time from its own start, so only the main one's lines are kept.
 */
function parseFullGcs (log: string): Array<[number, number, number]> {
  let main: string | undefined
  const collections: Array<[number, number, number]> = []
  for (const line of log.split('\n')) {
    const isolate = ANY_GC_LINE.exec(line)?.[1]
    if (isolate === undefined) continue
    main ??= isolate
    const match = FULL_GC_LINE.exec(line)
    if (match !== null && match[1] === main) collections.push([Number(match[2]), Number(match[3]), Number(match[4])])
  }
  return collections
}

async function readRssMb (pid: number): Promise<number | null> {
  const status = await fs.readFile(`/proc/${pid}/status`, 'utf8').catch(() => '')
  const kb = /VmRSS:\s+(\d+)\s+kB/.exec(status)?.[1]
  return kb === undefined ? null : Number(kb) / 1024
}

/** Prometheus text → sum of the samples of each metric name (labels summed over). */
function parseMetrics (text: string): Map<string, number> {
  const metrics = new Map<string, number>()
  for (const line of text.split('\n')) {
    const match = /^([a-zA-Z_:][\w:]*)(?:\{[^}]*\})?\s+(\S+)/.exec(line)
    if (match === null) continue
    const value = Number(match[2])
    if (Number.isFinite(value)) metrics.set(match[1]!, (metrics.get(match[1]!) ?? 0) + value)
  }
  return metrics
}

interface Scrape { at: number, heapUsedMb: number | null, heapTotalMb: number | null, externalMb: number | null, lagP99Ms: number | null, activeHandles: number | null, pgConnections: number | null }

async function scrape (base: string): Promise<Omit<Scrape, 'at'> | undefined> {
  const response = await fetch(`${base}/metrics`, { signal: AbortSignal.timeout(4_000) }).catch(() => undefined)
  if (response?.ok !== true) return undefined
  const metrics = parseMetrics(await response.text())
  const get = (name: string, scale = 1): number | null => { const value = metrics.get(name); return value === undefined ? null : value * scale }
  return {
    heapUsedMb: get('nodejs_heap_size_used_bytes', 1 / 1_048_576),
    heapTotalMb: get('nodejs_heap_size_total_bytes', 1 / 1_048_576),
    externalMb: get('nodejs_external_memory_bytes', 1 / 1_048_576),
    lagP99Ms: get('nodejs_eventloop_lag_p99_seconds', 1000),
    activeHandles: get('nodejs_active_handles_total'),
    pgConnections: get('data_api_database_connections'),
  }
}

const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'data-api-soak-'))
await fs.chmod(dir, 0o755) // the embedded PostgreSQL may run as another user and must reach its cluster
let serve: SpawnedServer | undefined
let load: ChildProcess | undefined
const timers: NodeJS.Timeout[] = []
let stopping = false
const cleanUp = async (): Promise<void> => {
  stopping = true
  for (const timer of timers.splice(0)) clearInterval(timer)
  if (load !== undefined) await stopProcess(load)
  await serve?.stop() // the server stops its embedded PostgreSQL on the way out
  serve = undefined
  await fs.rm(dir, { recursive: true, force: true })
}
const interrupted = (signal: NodeJS.Signals): void => {
  console.log(`${signal}: stopping the load, the server and its database`)
  void cleanUp().finally(() => process.exit(130))
}
process.once('SIGINT', interrupted)
process.once('SIGTERM', interrupted)

try {
  const startedAt = new Date()
  const logFile = path.join(dir, 'serve.log')
  console.log(`starting data-api serve on an embedded PostgreSQL in ${dir} (demo data)…`)
  const spawnedAt = performance.now()
  serve = await spawnServer({
    command: process.execPath,
    // --trace-gc: one line per collection on stdout (the log file), for the live heap after each full GC.
    args: ['--trace-gc', 'bin/data-api.js', 'serve'],
    env: {
      DATA_DIR: dir,
      SEED_DEMO: 'true',
      LOG_LEVEL: 'warn',
      HOST: '127.0.0.1',
      SHUTDOWN_GRACE_MS: '3000',
      // Empty means unset: no DATABASE_URL, MongoDB, SMTP or outside upstream from the environment or .env.
      DATABASE_URL: '',
      MONGODB_URL: '',
      SMTP_URL: '',
      UPSTREAM_URLS: '',
      SAMPLE_UPSTREAMS: 'true',
      // One client sends every request: per-client rate limits would refuse most of its writes.
      // Load shedding stays on; its 503s are counted apart from errors.
      RATE_LIMIT_WRITES: '0',
      RATE_LIMIT_COMPUTE: '0',
    },
    logFile,
  })
  const { url: base, pid } = serve
  // A server that dies mid-run ends the run at once (no minutes of ECONNREFUSED), and says how it died.
  let serverExit = null as SoakResults['serverExit'] // (set in a callback: no narrowing to null)
  void serve.exited.then(({ code, signal, stderr }) => {
    if (stopping) return
    serverExit = { atSeconds: Math.round(elapsed() * 10) / 10, code, signal, stderr: stderr.slice(-2000) }
    console.log(`the server exited during the run, at ${serverExit.atSeconds} s (code ${code}, signal ${signal}); stopping the load. Its stderr:\n${stderr.slice(-2000) || '(empty)'}`)
    load?.kill('SIGTERM')
  })
  const cmdline = (await fs.readFile(`/proc/${pid}/cmdline`, 'utf8')).split('\0').join(' ')
  if (!cmdline.includes('data-api.js')) throw new Error(`pid ${pid} is not the data-api server: ${cmdline}`)

  // The demo data: the seeded users' ids and the demo data set, read from the server's own database.
  const serverUrl = await runningEmbeddedUrl(path.join(dir, 'pg'))
  if (serverUrl === undefined) throw new Error('the embedded PostgreSQL of the server was not found')
  const sql = createSql(await ensureDatabase(serverUrl, 'data_api'), { max: 1 })
  const [users] = await sql<[{ min: number | null, max: number | null }]>`select min(id)::int as min, max(id)::int as max from users`
  const [dataset] = await sql<[{ id: number } | undefined]>`select id::int from datasets where name = 'weather' and status = 'ready' order by id limit 1`
  const [{ version }] = await sql<[{ version: string }]>`select current_setting('server_version') as version`
  await sql.end()
  if (users.min === null || users.max === null || dataset === undefined) throw new Error('the demo data (users, the weather data set) is missing: is SEED_DEMO on?')

  const loadOptions: SoakLoadOptions = {
    url: base,
    rate,
    windowSeconds,
    windows: windowCount,
    userIds: [users.min, users.max],
    datasetId: dataset.id,
    runId: startedAt.getTime().toString(36),
  }
  console.log(`server pid ${pid} at ${base}; ${windowCount} windows of ${windowSeconds} s at ${rate} req/s (first ${warmUpWindows} warm-up), users ${users.min}–${users.max}, data set ${dataset.id}`)
  console.log(`mix: ${SOAK_MIX.map((route) => `${route.name} ${route.weight}%`).join(', ')}`)

  // Samplers, on the load generator's clock once it has started.
  let loadStart: number | undefined
  const rssSamples: Array<[number, number]> = []
  const scrapes: Scrape[] = []
  const elapsed = (): number => (performance.now() - (loadStart ?? performance.now())) / 1000
  timers.push(setInterval(() => {
    if (loadStart === undefined) return
    const at = elapsed()
    void readRssMb(pid).then((rss) => { if (rss !== null) rssSamples.push([at, rss]) })
  }, RSS_SAMPLE_MS))
  timers.push(setInterval(() => {
    if (loadStart === undefined) return
    const at = elapsed()
    void scrape(base).then((sample) => { if (sample !== undefined) scrapes.push({ at, ...sample }) })
  }, SCRAPE_MS))

  const windows: SoakWindow[] = []
  let previousEnd = 0
  const onWindow = async (line: LoadWindow): Promise<void> => {
    // The window's own scrape, at its end, so the last one is never older than the window.
    const last = await scrape(base)
    if (last !== undefined) scrapes.push({ at: elapsed(), ...last })
    const now = elapsed()
    const rss = rssSamples.filter(([at]) => at > previousEnd && at <= now).map(([, value]) => value)
    const windowScrapes = scrapes.filter(({ at }) => at > previousEnd && at <= now)
    const latest = windowScrapes.at(-1)
    const lags = windowScrapes.map((s) => s.lagP99Ms).filter((value) => value !== null)
    const server: ServerSample = {
      rssMb: rss.length === 0 ? await readRssMb(pid) : rss.reduce((a, b) => a + b, 0) / rss.length,
      rssMaxMb: rss.length === 0 ? null : Math.max(...rss),
      heapUsedMb: latest?.heapUsedMb ?? null,
      heapTotalMb: latest?.heapTotalMb ?? null,
      externalMb: latest?.externalMb ?? null,
      eventLoopLagP99Ms: lags.length === 0 ? null : Math.max(...lags),
      activeHandles: latest?.activeHandles ?? null,
      pgConnections: latest?.pgConnections ?? null,
    }
    previousEnd = now
    const window: SoakWindow = {
      index: line.index,
      warmUp: line.index < warmUpWindows,
      endSeconds: line.endSeconds,
      seconds: line.seconds,
      rps: line.overall.requests / line.seconds,
      overall: line.overall,
      core: line.core,
      routes: line.routes,
      skipped: line.skipped,
      lateSends: line.lateSends,
      maxInFlight: line.maxInFlight,
      server,
    }
    windows.push(window)
    console.log(progressLine(window))
    for (const reason of line.failureReasons) console.log(`    failure: ${reason}`)
  }

  console.log(PROGRESS_HEADER)
  load = spawn(process.execPath, [path.join(PROJECT_ROOT, 'bench/soak-load.ts'), JSON.stringify(loadOptions)], { stdio: ['ignore', 'pipe', 'pipe'] })
  let loadErrors = ''
  load.stderr!.on('data', (chunk: Buffer) => { loadErrors = (loadErrors + chunk.toString()).slice(-4000) })
  const exited = new Promise<number | null>((resolve) => load!.once('exit', (code) => { resolve(code) }))
  let handling = Promise.resolve()
  for await (const text of readline.createInterface({ input: load.stdout! })) {
    const message = JSON.parse(text) as LoadWindow | { started: true }
    if ('started' in message) { loadStart = performance.now(); continue }
    handling = handling.then(async () => { await onWindow(message) })
  }
  await handling
  const code = await exited
  load = undefined
  if (code !== 0 && serverExit === null) throw new Error(`the load generator failed (exit ${code}): ${loadErrors}`)
  for (const timer of timers.splice(0)) clearInterval(timer)

  const logText = await fs.readFile(logFile, 'utf8').catch(() => '')
  // pino's lines are JSON; the rest is --trace-gc.
  const logLines = logText.split('\n').filter((line) => line.startsWith('{'))
  const fullGcs = parseFullGcs(logText).map(([ms, before, after]): [number, number, number] =>
    [Math.round((spawnedAt + ms - (loadStart ?? spawnedAt)) / 100) / 10, before, after])
  const verdict = computeVerdict(windows, fullGcs, serverExit !== null)
  const finishedAt = new Date()
  const notes: string[] = []
  const late = windows.reduce((sum, w) => sum + w.lateSends, 0)
  const stamp = startedAt.toISOString().replaceAll(':', '-').replace(/\.\d+Z$/, 'Z')
  const resultsDir = path.join(PROJECT_ROOT, 'bench/results')
  await fs.mkdir(resultsDir, { recursive: true })
  // The server's own log (warnings and --trace-gc), kept beside the JSON (*.log is not committed).
  const keptLog = path.join(resultsDir, `soak-${stamp}-serve.log`)
  await fs.copyFile(logFile, keptLog)
  if (serverExit !== null) notes.push(`The server exited during the run at ${serverExit.atSeconds} s (exit code ${serverExit.code}, signal ${serverExit.signal}); its stderr: ${serverExit.stderr.trim() === '' ? '(empty)' : serverExit.stderr.trim().slice(-500)}`)
  if (late > 0) notes.push(`${late} request(s) left the load generator more than 20 ms late (it was short of CPU): the rate dipped briefly.`)
  const results: SoakResults = {
    startedAt: startedAt.toISOString(),
    finishedAt: finishedAt.toISOString(),
    options: { minutes, windowSeconds, rate, warmUpWindows },
    machine: describeMachine(version),
    mix: SOAK_MIX.map(({ name, weight, example, inherentLatency }) => ({ name, weight, example, core: inherentLatency !== true })),
    windows,
    rssSamples: rssSamples.map(([at, value]) => [Math.round(at * 10) / 10, Math.round(value * 10) / 10]),
    fullGcs,
    serverExit,
    verdict,
    serverLog: { lines: logLines.length, first: logLines.slice(0, 3) },
    notes,
  }
  console.log(`\nverdict: ${describeVerdict(verdict)}`)

  const chartsDir = path.join(PROJECT_ROOT, 'bench/charts')
  await fs.mkdir(chartsDir, { recursive: true })
  const json = path.join(resultsDir, `soak-${stamp}.json`)
  await fs.writeFile(json, JSON.stringify(results, null, 2) + '\n')
  await fs.writeFile(path.join(chartsDir, 'soak.svg'), await renderSoakChart(results))
  const benchmarks = path.join(PROJECT_ROOT, 'BENCHMARKS.md')
  const intro = 'A mixed workload at a fixed rate, well below capacity, against `data-api serve` on an embedded ' +
    'PostgreSQL of its own (a temporary `DATA_DIR` with the demo data; `LOG_LEVEL=warn`, the in-process job ' +
    'worker writing each welcome email as an .eml file), loopback only. The load is open loop (a request leaves ' +
    'every 1/rate s whether or not the earlier ones have answered) from a process of its own. Every window: ' +
    'latency per route, the server\'s RSS (`/proc/<pid>/status`, every second) and, from `GET /metrics`, V8 heap, ' +
    'event-loop delay and PostgreSQL connections; the server runs with `--trace-gc`, which gives the live heap ' +
    '(heap used after each full GC of the main thread), the direct sign of a leak. The verdict is computed after the warm-up window: least-squares ' +
    'slope of RSS, and p99 of the last window against the first, of all routes and of the core routes (all but ' +
    '`/external`, whose sample upstream answers after 100 ms, and `/compute`: their latency is by design and would ' +
    `hide what the server itself adds). Chart: [bench/charts/soak.svg](bench/charts/soak.svg). Default run: \`${reproduceCommand({ minutes: 5, windowSeconds: 30, rate: 100, warmUpWindows: 1 })}\`.`
  const existing = await fs.readFile(benchmarks, 'utf8').catch(() => '')
  await fs.writeFile(benchmarks, updateSoakSection(existing, renderSoakMarkdown(results), intro))
  console.log(`results: ${json}; server log: ${keptLog}; chart: ${path.join(chartsDir, 'soak.svg')}; updated ${benchmarks}`)
} finally {
  process.removeListener('SIGINT', interrupted)
  process.removeListener('SIGTERM', interrupted)
  await cleanUp()
}
