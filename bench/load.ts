// The load generator, run as a process of its own (pinned to its own core when possible) so that
// it never competes with the server inside one event loop: autocannon against one URL, the result
// printed as one JSON line. runLoad() starts that process and reads the line.
//   node bench/load.ts '{"url":"http://127.0.0.1:8000/healthz","connections":50,"durationSeconds":10}'
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import autocannon from 'autocannon'
import { pinned } from '../tools/processes.ts'
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

/** One autocannon run in a child process on `cpu`. */
export async function runLoad (options: LoadOptions, cpu: number | undefined): Promise<LoadRun> {
  const [command, args] = await pinned(cpu, process.execPath, [import.meta.filename, JSON.stringify(options)])
  const { stdout } = await promisify(execFile)(command, args, { maxBuffer: 1024 * 1024 })
  return JSON.parse(stdout.trim().split('\n').at(-1)!) as LoadRun
}

/** A warm-up run of `warmupSeconds`, then the measured one; every answer must be a 2xx. */
export async function runWarmLoad (options: LoadOptions, warmupSeconds: number, cpu: number | undefined): Promise<LoadRun> {
  await runLoad({ ...options, durationSeconds: warmupSeconds }, cpu)
  const run = await runLoad(options, cpu)
  if (run.errors + run.non2xx > 0) throw new Error(`${options.url}: ${run.errors} errors, ${run.non2xx} non-2xx answers under load (${JSON.stringify(run.statuses)})`)
  return run
}

if (import.meta.main) {
  const options = JSON.parse(process.argv[2] ?? '{}') as LoadOptions
  console.log(JSON.stringify(await measureLoad(options)))
}
