// The benchmark suite (`npm run bench`): builds the world it measures (an embedded PostgreSQL with
// seeded users, orders and a data set), starts data-api and its peers (raw node:http, bare Fastify +
// postgres.js, the lesson's FastAPI app) one at a time on the same database and core, loads them
// with autocannon from another process and core, checks the lesson's claims, and writes the results
// as JSON, a Markdown block in BENCHMARKS.md and SVG charts.
//   node bench/suite.ts [--quick] [--only TEXT] [--no-fastapi]
import { execFile } from 'node:child_process'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { parseArgs, promisify } from 'node:util'
import { pino } from 'pino'
import { loadConfig } from '../src/config.ts'
import { importDemoDataset } from '../src/routes/datasets/sample.ts'
import { ensureDatabase } from '../src/db/database.ts'
import { startEmbeddedPostgres } from '../src/db/embedded-postgres.ts'
import { seedUsersAndOrders } from '../src/routes/users/seed.ts'
import { openResources } from '../src/resources.ts'
import { hasTaskset, PROJECT_ROOT, ServerScope, spawnServer, type RunningServer } from '../tools/processes.ts'
import { ensureFastapiVenv, startFastapi } from './fastapi-peer.ts'
import { runLoad } from './load.ts'
import { renderCharts, renderMarkdown, updateBenchmarksFile } from './report.ts'
import { describeMachine, type BenchResults, type LessonClaim, type LoadRun, type LoadSummary, type ServerName, type TargetCheck, type ThroughputScenario } from './results.ts'
import { median, percentile } from './statistics.ts'

export interface BenchOptions {
  quick: boolean
  /** Only scenarios and claims whose name contains this text. */
  only?: string
  /** Where results/<timestamp>.json and charts/*.svg go (default: bench/). */
  outDir?: string
  /** The Markdown file to update (default: BENCHMARKS.md); null to skip. */
  benchmarksFile?: string | null
  /** Which servers to run (default: all). */
  servers?: readonly ServerName[]
  /** Overrides for tiny runs (the harness test). */
  durationSeconds?: number
  runs?: number
  users?: number
  log?: (line: string) => void
}

const SERVER_CPU = 0
const LOAD_CPU = 1
const ALL_SERVERS: readonly ServerName[] = ['data-api', 'raw node:http', 'bare Fastify + postgres.js', 'FastAPI (shared pool)', 'FastAPI (pool per request)']

interface ScenarioSpec { name: string, group: string, path: Partial<Record<ServerName, string>>, connections: number }

const SCENARIOS: ScenarioSpec[] = [
  { name: 'hello JSON', group: 'hello', connections: 50, path: { 'data-api': '/healthz', 'raw node:http': '/healthz', 'bare Fastify + postgres.js': '/healthz', 'FastAPI (shared pool)': '/healthz' } },
  { name: 'GET /users', group: 'database', connections: 50, path: { 'data-api': '/users?limit=10', 'bare Fastify + postgres.js': '/users?limit=10', 'FastAPI (shared pool)': '/users', 'FastAPI (pool per request)': '/users-pool-per-request' } },
  { name: 'GET /users/{id}', group: 'database', connections: 50, path: { 'data-api': '/users/42', 'FastAPI (shared pool)': '/users/42' } },
  { name: 'GET /dashboard', group: 'database', connections: 50, path: { 'data-api': '/dashboard?user_id=42', 'FastAPI (shared pool)': '/dashboard?user_id=42' } },
  { name: 'GET /datasets/{id}', group: 'data api', connections: 50, path: { 'data-api': '/datasets/1', 'FastAPI (shared pool)': '/datasets/1' } },
  { name: 'rows page', group: 'data api', connections: 50, path: { 'data-api': '/datasets/1/rows?limit=100' } },
]

async function describePinning (serverCpu: number, loadCpu: number): Promise<string> {
  return await hasTaskset()
    ? `server on CPU ${serverCpu}, load generator on CPU ${loadCpu} (taskset); PostgreSQL unpinned`
    : 'not pinned (taskset unavailable)'
}

const seconds = (ms: number): string => `${(ms / 1000).toFixed(2)} s`

function summarise (runs: LoadRun[]): LoadSummary {
  const byRps = [...runs].sort((a, b) => a.rps - b.rps)
  return { runs, median: byRps[Math.floor(byRps.length / 2)]!, rpsMin: byRps[0]!.rps, rpsMax: byRps.at(-1)!.rps }
}

async function timedFetch (url: string): Promise<{ ms: number, response: Response }> {
  const started = performance.now()
  const response = await fetch(url)
  await response.arrayBuffer()
  return { ms: performance.now() - started, response }
}

/** Wall time of `count` concurrent GETs of one URL. */
async function concurrentTime (url: string, count: number): Promise<number> {
  const started = performance.now()
  await Promise.all(Array.from({ length: count }, async () => { await timedFetch(url) }))
  return performance.now() - started
}

export async function runBench (options: BenchOptions): Promise<BenchResults> {
  const log = options.log ?? ((line: string) => { console.log(line) })
  const started = new Date()
  const durationSeconds = options.durationSeconds ?? (options.quick ? 3 : 10)
  const warmupSeconds = options.quick ? 1 : 3
  const runs = options.runs ?? (options.quick ? 1 : 3)
  const wanted = new Set(options.servers ?? ALL_SERVERS)
  const matches = (name: string): boolean => options.only === undefined || name.toLowerCase().includes(options.only.toLowerCase())
  const outDir = options.outDir ?? path.join(PROJECT_ROOT, 'bench')
  const notes: string[] = []

  const work = await fs.mkdtemp(path.join(os.tmpdir(), 'data-api-bench-'))
  await fs.chmod(work, 0o755)
  const quiet = pino({ level: 'warn' })
  const postgres = await startEmbeddedPostgres({ clusterDir: path.join(work, 'pg'), log: quiet })
  const scope = new ServerScope()
  const cleanUp = async (): Promise<void> => {
    await scope.stopAll()
    await postgres.stop()
    await fs.rm(work, { recursive: true, force: true })
  }
  // Interrupted (Ctrl-C, SIGTERM): stop every server and the database before leaving.
  const interrupted = (signal: NodeJS.Signals): void => {
    log(`${signal}: stopping the servers and the database`)
    void cleanUp().finally(() => process.exit(130))
  }
  process.once('SIGINT', interrupted)
  process.once('SIGTERM', interrupted)
  try {
    const databaseUrl = await ensureDatabase(postgres.url, 'bench')
    const users = options.users ?? 10_000
    log(`seeding ${users} users × 10 orders and the demo data set…`)
    // The service's own resources (resources.ts) migrate the database; the world is seeded on them.
    const world = await openResources(loadConfig({ LOG_LEVEL: 'warn', DATABASE_URL: databaseUrl }), quiet, { worker: false, databaseOptions: { max: 2 } })
    let version: string
    try {
      await seedUsersAndOrders(world.sql, { users, ordersPerUser: 10 })
      await world.sql.begin(async (tx) => { await importDemoDataset(tx, world.datasets) })
      // Fresh rows trigger autovacuum and autoanalyze; done now, they do not run into a measurement.
      await world.sql`vacuum analyze`
      version = (await world.sql<[{ version: string }]>`select current_setting('server_version') as version`)[0].version
    } finally {
      await world.close()
    }

    const python = wanted.has('FastAPI (shared pool)') || wanted.has('FastAPI (pool per request)')
      ? await ensureFastapiVenv(path.join(PROJECT_ROOT, '.cache'), log)
      : undefined
    const servers: Partial<Record<ServerName, () => Promise<RunningServer>>> = {
      'data-api': async () => await spawnServer({
        command: process.execPath,
        args: ['bin/data-api.js', 'serve'],
        // Production settings: info logging (one line per request, to a file), the in-process worker;
        // but no rate limit on /compute, which one load generator must be able to saturate.
        env: { DATABASE_URL: databaseUrl, LOG_LEVEL: 'info', RATE_LIMIT_COMPUTE: '0' },
        cpu: SERVER_CPU,
        logFile: path.join(work, 'data-api.log'),
      }),
      'raw node:http': async () => await spawnServer({ command: process.execPath, args: ['bench/peers/raw-node.ts'], cpu: SERVER_CPU }),
      'bare Fastify + postgres.js': async () => await spawnServer({ command: process.execPath, args: ['bench/peers/bare-fastify.ts'], env: { DATABASE_URL: databaseUrl }, cpu: SERVER_CPU }),
      ...(python !== undefined && {
        'FastAPI (shared pool)': async () => await startFastapi({ python, databaseUrl, cpu: SERVER_CPU }),
        'FastAPI (pool per request)': async () => await startFastapi({ python, databaseUrl, cpu: SERVER_CPU }),
      }),
    }
    const withServer = async <T>(name: ServerName, action: (server: RunningServer) => Promise<T>): Promise<T> => await scope.run(servers[name]!, action)

    // Throughput: one server at a time, every scenario it serves.
    const throughput: ThroughputScenario[] = SCENARIOS.filter((scenario) => matches(scenario.name)).map((scenario) => ({
      name: scenario.name, group: scenario.group, path: scenario.path['data-api'] ?? '', connections: scenario.connections, durationSeconds, results: {},
    }))
    for (const name of ALL_SERVERS.filter((server) => wanted.has(server) && servers[server] !== undefined)) {
      const mine = SCENARIOS.filter((scenario) => matches(scenario.name) && scenario.path[name] !== undefined)
      if (mine.length === 0) continue
      await withServer(name, async (server) => {
        for (const scenario of mine) {
          // The lesson's pool per request opens ten connections per call: a few clients are plenty.
          const connections = name === 'FastAPI (pool per request)' ? 4 : scenario.connections
          const url = `${server.url}${scenario.path[name]!}`
          await runLoad({ url, connections, durationSeconds: warmupSeconds }, LOAD_CPU)
          const measured: LoadRun[] = []
          for (let run = 0; run < runs; run++) measured.push(await runLoad({ url, connections, durationSeconds }, LOAD_CPU))
          const summary = summarise(measured)
          throughput.find((entry) => entry.name === scenario.name)!.results[name] = summary
          log(`${scenario.name.padEnd(20)} ${name.padEnd(28)} ${summary.median.rps.toFixed(0).padStart(7)} req/s  p50 ${summary.median.p50} ms  p99 ${summary.median.p99} ms`)
        }
      })
    }

    // The lesson's claims.
    const lesson: LessonClaim[] = []
    const fanOut: Record<string, { total: number, floor: number, slowest: number }> = {}
    let healthUnderCompute: { p50: number, p99: number } | undefined
    const wait = options.quick ? 0.5 : 2
    const pause = options.quick ? 300 : 1000
    const step = options.quick ? 0.2 : 1
    const claimServers: ServerName[] = (['data-api', 'FastAPI (shared pool)'] as const).filter((name) => wanted.has(name) && servers[name] !== undefined)
    const measuredClaims: Partial<Record<ServerName, Record<string, string>>> = {}
    for (const name of claimServers) {
      const results: Record<string, string> = {}
      measuredClaims[name] = results
      await withServer(name, async ({ url }) => {
        if (matches('sync')) {
          // Warm-up: worker threads (and Python's pool threads) are started on first use.
          await concurrentTime(`${url}/sync?seconds=0.1`, 10)
          const sync = await concurrentTime(`${url}/sync?seconds=${wait}`, 10)
          const asyncTime = await concurrentTime(`${url}/async?seconds=${wait}`, 10)
          results.sync = `${seconds(sync)} vs ${seconds(asyncTime)}`
          if (name === 'FastAPI (shared pool)') results.blocking = seconds(await concurrentTime(`${url}/sync-in-async?seconds=${wait}`, 10))
        }
        if (matches('slow')) {
          const slow = median(await Promise.all([0, 1, 2].map(async () => (await timedFetch(`${url}/slow?user_id=42&delay_ms=${pause}`)).ms)))
          const fast = median(await Promise.all([0, 1, 2].map(async () => (await timedFetch(`${url}/fast?user_id=42&delay_ms=${pause}`)).ms)))
          results.slow = `${seconds(slow)} vs ${seconds(fast)}`
          const syncSlow = (await timedFetch(`${url}/sync-slow?n=10&seconds=${step}`)).ms
          const asyncFast = (await timedFetch(`${url}/async-fast?n=10&seconds=${step}`)).ms
          results.sleeps = `${seconds(syncSlow)} vs ${seconds(asyncFast)}`
        }
        if (name === 'data-api' && matches('fan-out')) {
          // Each route request is paired with a /healthz one: its latency is the HTTP + JSON floor,
          // so that what is left is the cost of the fan-out itself.
          for (const target of ['/datasets/1', '/dashboard?user_id=42', '/fast?user_id=42&delay_ms=50']) {
            const totals: number[] = []
            const floors: number[] = []
            const slowest: number[] = []
            for (let index = 0; index < 110; index++) {
              const { ms, response } = await timedFetch(`${url}${target}`)
              const floor = (await timedFetch(`${url}/healthz`)).ms
              const parts = (response.headers.get('server-timing') ?? '').split(',').map((entry) => Number(/dur=([\d.]+)/.exec(entry)?.[1] ?? 0))
              if (index < 10) continue // warm-up
              totals.push(ms)
              floors.push(floor)
              slowest.push(Math.max(...parts))
            }
            fanOut[target] = { total: median(totals), floor: median(floors), slowest: median(slowest) }
          }
        }
        if (matches('compute')) {
          // Saturate /compute from the load generator while sampling /healthz from here.
          const load = runLoad({ url: `${url}/compute?n=3000000`, connections: 8, durationSeconds: options.quick ? 3 : 8 }, LOAD_CPU)
          await new Promise((resolve) => setTimeout(resolve, 500))
          const samples: number[] = []
          const until = performance.now() + (options.quick ? 2000 : 6000)
          while (performance.now() < until) samples.push((await timedFetch(`${url}/healthz`)).ms)
          await load
          const health = { p50: percentile(samples, 0.5), p99: percentile(samples, 0.99) }
          results.compute = `p50 ${health.p50.toFixed(1)} ms, p99 ${health.p99.toFixed(1)} ms`
          if (name === 'data-api') healthUnderCompute = health
        }
      })
    }
    const ours = measuredClaims['data-api'] ?? {}
    const theirs = measuredClaims['FastAPI (shared pool)'] ?? {}
    const scaleNote = options.quick ? ' (quick run: shorter waits, same ratios)' : ''
    if (ours.sync !== undefined) {
      lesson.push({
        claim: `10 concurrent /sync vs /async (${wait} s each)${scaleNote}`,
        lessonSays: `${10 * wait} s vs ${wait} s`,
        dataApi: ours.sync,
        fastapi: theirs.sync === undefined ? '—' : `${theirs.sync}; blocking call inside async def: ${theirs.blocking}`,
        verdict: `A def route runs in a thread pool, so /sync is not ${10 * wait} s in FastAPI either; only a blocking call inside async def serialises (≈ ${10 * wait} s). data-api runs /sync in worker threads.`,
      })
    }
    if (ours.slow !== undefined) {
      lesson.push({ claim: `/slow vs /fast (${pause} ms per fetch)`, lessonSays: `${2 * pause / 1000} s vs ${pause / 1000} s`, dataApi: ours.slow, fastapi: theirs.slow ?? '—', verdict: 'True: sequential awaits add up, gathered ones take the longest.' })
      lesson.push({ claim: `/sync-slow vs /async-fast (10 × ${step} s)`, lessonSays: `${10 * step} s vs ${step} s`, dataApi: ours.sleeps!, fastapi: theirs.sleeps ?? '—', verdict: 'True: sleeps in sequence add up, concurrent timers overlap.' })
    }
    if (fanOut['/datasets/1'] !== undefined) {
      const { total, floor, slowest } = fanOut['/datasets/1']
      lesson.push({ claim: '/datasets/{id} takes about its slowest branch', lessonSays: '≈ 0.5 s (branches of 0.5, 0.3, 0.4 s)', dataApi: `p50 ${total.toFixed(2)} ms = HTTP floor ${floor.toFixed(2)} ms + slowest branch ${slowest.toFixed(2)} ms + ${(total - floor - slowest).toFixed(2)} ms`, fastapi: '—', verdict: 'True: the three reads overlap; what is left is HTTP and JSON.' })
    }
    if (ours.compute !== undefined) {
      lesson.push({ claim: '/healthz while /compute is saturated', lessonSays: 'CPU work in a def route keeps the server responsive', dataApi: ours.compute, fastapi: theirs.compute ?? '—', verdict: 'data-api computes in worker threads, so the event loop answers at once; in Python the GIL makes the thread pool compete with the event loop.' })
    }

    // Targets.
    const targets: TargetCheck[] = []
    const rps = (scenario: string, server: ServerName): number | undefined => throughput.find((entry) => entry.name === scenario)?.results[server]?.median.rps
    const ratioTarget = (target: string, scenario: string, server: ServerName, peer: ServerName, minimum: number): void => {
      const a = rps(scenario, server)
      const b = rps(scenario, peer)
      if (a === undefined || b === undefined) return
      targets.push({ target, measured: `${a.toFixed(0)} vs ${b.toFixed(0)} req/s`, ratio: a / b, met: a / b >= minimum })
    }
    ratioTarget('hello JSON ≥ 0.95 × raw node:http', 'hello JSON', 'data-api', 'raw node:http', 0.95)
    ratioTarget('hello JSON ≥ 2 × FastAPI', 'hello JSON', 'data-api', 'FastAPI (shared pool)', 2)
    ratioTarget('GET /users ≥ 3 × FastAPI (shared pool)', 'GET /users', 'data-api', 'FastAPI (shared pool)', 3)
    ratioTarget('GET /users ≥ 0.9 × bare Fastify + postgres.js', 'GET /users', 'data-api', 'bare Fastify + postgres.js', 0.9)
    const perRequest = rps('GET /users', 'FastAPI (pool per request)')
    const shared = rps('GET /users', 'FastAPI (shared pool)')
    if (perRequest !== undefined && shared !== undefined) {
      targets.push({ target: 'the lesson\'s pool per request (measured, no target)', measured: `${perRequest.toFixed(1)} vs ${shared.toFixed(0)} req/s with a shared pool`, ratio: perRequest / shared, met: true })
    }
    for (const [target, { total, floor, slowest }] of Object.entries(fanOut)) {
      targets.push({
        target: `GET ${target}: p50 ≤ slowest branch + 1 ms (over the HTTP floor, /healthz's p50)`,
        measured: `${total.toFixed(2)} ms − floor ${floor.toFixed(2)} ms = ${(total - floor).toFixed(2)} ms vs slowest branch ${slowest.toFixed(2)} ms`,
        ratio: null,
        met: total - floor <= slowest + 1,
      })
    }
    if (healthUnderCompute !== undefined) {
      targets.push({ target: '/healthz p99 ≤ 5 ms while /compute is saturated', measured: `p99 ${healthUnderCompute.p99.toFixed(1)} ms`, ratio: null, met: healthUnderCompute.p99 <= 5 })
    }
    notes.push('Each server runs alone, on the same core, against the same PostgreSQL (which is not pinned and shares the machine).')
    notes.push(`Throughput: autocannon, ${runs} run(s) of ${durationSeconds} s after ${warmupSeconds} s of warm-up; the median run and the spread of req/s are reported.`)

    const results: BenchResults = {
      startedAt: started.toISOString(),
      finishedAt: new Date().toISOString(),
      quick: options.quick,
      durationSeconds,
      machine: {
        ...describeMachine(version),
        python: python === undefined ? null : (await promisify(execFile)(python, ['--version'])).stdout.trim(),
        pinned: await describePinning(SERVER_CPU, LOAD_CPU),
      },
      throughput,
      lesson,
      targets,
      notes,
    }
    await writeResults(results, outDir, options.benchmarksFile === undefined ? path.join(PROJECT_ROOT, 'BENCHMARKS.md') : options.benchmarksFile, log)
    return results
  } finally {
    process.removeListener('SIGINT', interrupted)
    process.removeListener('SIGTERM', interrupted)
    await cleanUp()
  }
}

async function writeResults (results: BenchResults, outDir: string, benchmarksFile: string | null, log: (line: string) => void): Promise<void> {
  const stamp = results.startedAt.replaceAll(':', '-').replace(/\.\d+Z$/, 'Z')
  await fs.mkdir(path.join(outDir, 'results'), { recursive: true })
  await fs.mkdir(path.join(outDir, 'charts'), { recursive: true })
  const json = path.join(outDir, 'results', `${stamp}.json`)
  await fs.writeFile(json, JSON.stringify(results, null, 2) + '\n')
  for (const { name, svg } of await renderCharts(results)) await fs.writeFile(path.join(outDir, 'charts', name), svg)
  log(`results: ${json}; charts: ${path.join(outDir, 'charts')}`)
  if (benchmarksFile !== null) {
    const existing = await fs.readFile(benchmarksFile, 'utf8').catch(() => '')
    await fs.writeFile(benchmarksFile, updateBenchmarksFile(existing, renderMarkdown(results)))
    log(`updated ${benchmarksFile}`)
  }
}

const USAGE = `Usage: npm run bench -- [--quick] [--only TEXT] [--no-fastapi]

Measures data-api against raw node:http, bare Fastify + postgres.js and the lesson's FastAPI app,
checks the lesson's claims; writes bench/results/*.json, bench/charts/*.svg and BENCHMARKS.md.

  --quick        short runs (under 5 minutes on 2 cores)
  --only TEXT    only the scenarios and claims whose name contains TEXT
  --no-fastapi   leave out the FastAPI peer (no Python virtual environment needed)
  -h, --help     this text`

if (import.meta.main) {
  let values
  try {
    ({ values } = parseArgs({
      allowNegative: true,
      options: {
        quick: { type: 'boolean', default: false },
        only: { type: 'string' },
        fastapi: { type: 'boolean', default: true },
        help: { type: 'boolean', short: 'h', default: false },
      },
    }))
  } catch (error) {
    console.error(`bench: ${(error as Error).message}\n\n${USAGE}`)
    process.exit(2)
  }
  if (values.help) {
    console.log(USAGE)
  } else {
    const servers = values.fastapi ? undefined : (['data-api', 'raw node:http', 'bare Fastify + postgres.js'] as const)
    await runBench({ quick: values.quick, only: values.only, servers })
  }
}
