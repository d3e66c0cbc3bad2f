// The soak scenario's load generator, run as a process of its own like load.ts: an open-loop mix of
// routes at a fixed rate, well below capacity (a soak measures stability, not throughput). Every
// 1/rate seconds one request leaves whether or not earlier ones have answered, so a slower server
// shows as higher latency rather than as fewer requests. Each window it prints one JSON line of
// per-route latencies and statuses; the parent adds the server's memory.
//   node bench/soak-load.ts '{"url":"http://127.0.0.1:8000","rate":100,"windowSeconds":30,"windows":10,…}'
import { setTimeout as sleep } from 'node:timers/promises'
import { Pool } from 'undici'
import { generator } from '../src/lib/sample-data.ts'
import { percentile } from './statistics.ts'

export interface SoakLoadOptions {
  /** The server's origin; must be loopback. */
  url: string
  /** Requests per second, all routes together. */
  rate: number
  windowSeconds: number
  windows: number
  /** Seeded users to pick ids from (inclusive). */
  userIds: [number, number]
  datasetId: number
  /** Makes the registered emails unique across runs on one database. */
  runId: string
  seed?: number
}

/** One route of the mix: its share of the requests and how to build one. */
export interface SoakRoute {
  name: string
  weight: number
  method: 'GET' | 'POST'
  /** An example path, for the report. */
  example: string
  /** Latency by design (an upstream's delay, CPU work) rather than the server's own: left out of `core`. */
  inherentLatency?: boolean
  path: (pick: Picker) => string
}

interface Picker { random: () => number, int: (min: number, max: number) => number, options: SoakLoadOptions, sequence: number }

const STATIONS = ['Oslo Blindern', 'Bergen Florida', 'Tromsø', 'Bodø']

/** The mix: cheap reads most, then fan-out, upstream, a write, and now and then CPU work. Weights are per cent. */
export const SOAK_MIX: readonly SoakRoute[] = [
  { name: 'GET /healthz', weight: 18, method: 'GET', example: '/healthz', path: () => '/healthz' },
  { name: 'GET /users/{id}', weight: 18, method: 'GET', example: '/users/42', path: ({ int, options }) => `/users/${int(...options.userIds)}` },
  { name: 'GET /products', weight: 10, method: 'GET', example: '/products?limit=10&after=17', path: ({ int }) => `/products?limit=10&after=${int(1, 150)}` },
  { name: 'GET /dashboard', weight: 10, method: 'GET', example: '/dashboard?user_id=42', path: ({ int, options }) => `/dashboard?user_id=${int(...options.userIds)}` },
  { name: 'GET /datasets/{id}', weight: 8, method: 'GET', example: '/datasets/1', path: ({ options }) => `/datasets/${options.datasetId}` },
  {
    name: 'GET /datasets/{id}/rows',
    weight: 12,
    method: 'GET',
    example: '/datasets/1/rows?limit=50&temperature_c__gt=5&sort=-observed_on',
    path: ({ int, random, options }) => random() < 0.5
      ? `/datasets/${options.datasetId}/rows?limit=50&temperature_c__gt=${int(-10, 15)}&sort=-observed_on`
      : `/datasets/${options.datasetId}/rows?limit=50&station=${encodeURIComponent(STATIONS[int(0, STATIONS.length - 1)]!)}&sort=temperature_c`,
  },
  { name: 'GET /external', weight: 10, method: 'GET', example: '/external (sample upstream, 100 ms)', inherentLatency: true, path: () => '/external' },
  { name: 'POST /register', weight: 12, method: 'POST', example: '/register?email=soak-…@example.com', path: ({ options, sequence }) => `/register?email=soak-${options.runId}-${sequence}@example.com` },
  { name: 'GET /compute', weight: 2, method: 'GET', example: '/compute?n=200000', inherentLatency: true, path: () => '/compute?n=200000' },
]

/** Statistics of one route (or of all) over one window; latencies in ms. */
export interface RouteWindow {
  requests: number
  /** null when nothing answered in the window. */
  p50: number | null
  p99: number | null
  max: number | null
  /** 429 and 503: refused by rate limiting or overload protection, counted apart from errors. */
  throttled: number
  /** Any other non-2xx status. */
  non2xx: number
  /** No response: connection errors and timeouts. */
  failures: number
}

export interface LoadWindow {
  index: number
  /** Seconds since the first request, at the window's end. */
  endSeconds: number
  seconds: number
  overall: RouteWindow
  /** The routes without inherent latency: what the server itself adds, not hidden behind /external's 100 ms. */
  core: RouteWindow
  routes: Record<string, RouteWindow>
  /** Requests not sent because MAX_IN_FLIGHT were already waiting (the server fell far behind). */
  skipped: number
  /** Most requests in flight at once. */
  maxInFlight: number
  /** Sends that left more than 20 ms after their time (the generator itself was starved of CPU). */
  lateSends: number
  /** A sample of failure reasons, for the report. */
  failureReasons: string[]
}

const MAX_IN_FLIGHT = 256
const REQUEST_TIMEOUT_MS = 10_000

interface Outcome { latencyMs: number, status: number | undefined }

function summarise (outcomes: readonly Outcome[]): RouteWindow {
  const latencies = outcomes.filter((o) => o.status !== undefined).map((o) => o.latencyMs)
  const count = (test: (status: number) => boolean): number => outcomes.filter((o) => o.status !== undefined && test(o.status)).length
  return {
    requests: outcomes.length,
    p50: latencies.length === 0 ? null : percentile(latencies, 0.5),
    p99: latencies.length === 0 ? null : percentile(latencies, 0.99),
    max: latencies.length === 0 ? null : latencies.reduce((a, b) => Math.max(a, b)),
    throttled: count((s) => s === 429 || s === 503),
    non2xx: count((s) => (s < 200 || s >= 300) && s !== 429 && s !== 503),
    failures: outcomes.filter((o) => o.status === undefined).length,
  }
}

export async function runSoakLoad (options: SoakLoadOptions, emit: (line: LoadWindow) => void, onStart: () => void = () => {}): Promise<void> {
  const { hostname } = new URL(options.url)
  if (!['127.0.0.1', 'localhost', '[::1]'].includes(hostname)) throw new Error(`the soak load stays on loopback; refusing ${options.url}`)
  const pool = new Pool(options.url, { connections: 64, headersTimeout: REQUEST_TIMEOUT_MS, bodyTimeout: REQUEST_TIMEOUT_MS })
  const random = generator(options.seed ?? 0x50a4)
  const picker: Picker = { random, int: (min, max) => min + Math.floor(random() * (max - min + 1)), options, sequence: 0 }
  const totalWeight = SOAK_MIX.reduce((sum, route) => sum + route.weight, 0)
  const choose = (): SoakRoute => {
    let ticket = random() * totalWeight
    for (const route of SOAK_MIX) if ((ticket -= route.weight) < 0) return route
    return SOAK_MIX.at(-1)!
  }

  let outcomes = new Map<string, Outcome[]>(SOAK_MIX.map((route) => [route.name, []]))
  let skipped = 0
  let lateSends = 0
  let inFlight = 0
  let maxInFlight = 0
  let failureReasons: string[] = []
  const pending = new Set<Promise<void>>()

  const send = (route: SoakRoute): void => {
    if (inFlight >= MAX_IN_FLIGHT) { skipped++; return }
    const path = route.path({ ...picker, sequence: picker.sequence++ })
    inFlight++
    maxInFlight = Math.max(maxInFlight, inFlight)
    const started = performance.now()
    const done = pool.request({ method: route.method, path, signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) })
      .then(async (response) => {
        await response.body.arrayBuffer()
        return response.statusCode
      }, (error: unknown) => {
        if (failureReasons.length < 5) failureReasons.push(`${route.name}: ${(error as Error).message}`)
        return undefined
      })
      .then((status) => {
        inFlight--
        outcomes.get(route.name)!.push({ latencyMs: performance.now() - started, status })
      })
    pending.add(done)
    void done.finally(() => pending.delete(done))
  }

  let windowStarted = performance.now()
  const t0 = windowStarted
  onStart()
  const closeWindow = (index: number): void => {
    const now = performance.now()
    const routes: Record<string, RouteWindow> = {}
    for (const [name, list] of outcomes) routes[name] = summarise(list)
    emit({
      index,
      endSeconds: (now - t0) / 1000,
      seconds: (now - windowStarted) / 1000,
      overall: summarise([...outcomes.values()].flat()),
      core: summarise(SOAK_MIX.filter((route) => route.inherentLatency !== true).flatMap((route) => outcomes.get(route.name)!)),
      routes,
      skipped,
      maxInFlight,
      lateSends,
      failureReasons,
    })
    outcomes = new Map(SOAK_MIX.map((route) => [route.name, []]))
    skipped = 0
    lateSends = 0
    maxInFlight = inFlight
    failureReasons = []
    windowStarted = now
  }

  const intervalMs = 1000 / options.rate
  const windowMs = options.windowSeconds * 1000
  let sent = 0
  for (let window = 0; window < options.windows; window++) {
    const windowEnd = t0 + (window + 1) * windowMs
    for (;;) {
      const due = t0 + sent * intervalMs
      if (due >= windowEnd) break
      const wait = due - performance.now()
      if (wait > 0) await sleep(wait)
      if (performance.now() - due > 20) lateSends++
      send(choose())
      sent++
    }
    const wait = windowEnd - performance.now()
    if (wait > 0) await sleep(wait)
    // The last window waits for its stragglers, so every request sent is counted.
    if (window === options.windows - 1) await Promise.all(pending)
    closeWindow(window)
  }
  await pool.close()
}

if (import.meta.main) {
  const options = JSON.parse(process.argv[2] ?? '{}') as SoakLoadOptions
  // A first line marks the first request, so the parent can put its memory samples on the same clock.
  await runSoakLoad(options, (line) => { console.log(JSON.stringify(line)) }, () => { console.log('{"started":true}') })
}
