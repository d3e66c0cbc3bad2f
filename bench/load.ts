// The load generator, run as a process of its own (pinned to its own core when possible) so that
// it never competes with the server inside one event loop: autocannon against one URL, the result
// printed as one JSON line.
//   node bench/load.ts '{"url":"http://127.0.0.1:8000/healthz","connections":50,"durationSeconds":10}'
import autocannon from 'autocannon'
import type { LoadRun } from './results.ts'

export interface LoadOptions { url: string, connections: number, durationSeconds: number }

export async function measureLoad ({ url, connections, durationSeconds }: LoadOptions): Promise<LoadRun> {
  const result = await autocannon({ url, connections, duration: durationSeconds, pipelining: 1, timeout: 30 })
  return {
    rps: result.requests.average,
    p50: result.latency.p50,
    p90: result.latency.p90,
    p99: result.latency.p99,
    errors: result.errors + result.timeouts,
    non2xx: result.non2xx,
    statuses: Object.fromEntries(Object.entries(result.statusCodeStats ?? {}).map(([status, stats]) => [status, stats.count ?? 0])),
  }
}

if (import.meta.main) {
  const options = JSON.parse(process.argv[2] ?? '{}') as LoadOptions
  console.log(JSON.stringify(await measureLoad(options)))
}
