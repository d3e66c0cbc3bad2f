// The shape of one benchmark run, shared by the harness (which measures) and the report writer
// (which renders Markdown and SVG), so that the JSON kept in bench/results/ can be re-rendered
// later without running anything again.
import os from 'node:os'

export type ServerName = 'data-api' | 'raw node:http' | 'bare Fastify + postgres.js' | 'FastAPI (shared pool)' | 'FastAPI (pool per request)'

/** One load-generator run; latencies in ms. */
export interface LoadRun {
  rps: number, p50: number, p90: number, p99: number, errors: number, non2xx: number
  /** Responses by status code. */
  statuses?: Record<string, number>
}

export interface LoadSummary { runs: LoadRun[], median: LoadRun, rpsMin: number, rpsMax: number }

export interface ThroughputScenario {
  /** e.g. 'hello JSON', 'GET /users', 'GET /users/{id}', 'GET /dashboard', 'GET /datasets/{id}', 'rows page' */
  name: string
  /** chart group: 'hello' | 'database' | 'data api' */
  group: string
  /** e.g. '/users?limit=10' */
  path: string
  connections: number
  durationSeconds: number
  results: Partial<Record<ServerName, LoadSummary>>
}

export interface LessonClaim {
  /** e.g. '10 concurrent /sync vs /async' */
  claim: string
  /** e.g. '20 s vs 2 s' */
  lessonSays: string
  /** measured, e.g. '2.03 s vs 2.01 s' */
  dataApi: string
  /** measured, or '—' */
  fastapi: string
  /** one-line truth */
  verdict: string
}

export interface TargetCheck { target: string, measured: string, ratio: number | null, met: boolean }

export interface BenchResults {
  startedAt: string
  finishedAt: string
  quick: boolean
  durationSeconds: number
  machine: Machine & {
    python: string | null
    /** e.g. 'server on CPU 0, load generator on CPU 1 (taskset)' or 'not pinned (taskset unavailable)' */
    pinned: string
  }
  throughput: ThroughputScenario[]
  lesson: LessonClaim[]
  targets: TargetCheck[]
  notes: string[]
}

/** The machine a run measured, as every report states it. */
export interface Machine { cpus: number, cpuModel: string, memoryGiB: number, os: string, node: string, postgres: string }

export function describeMachine (postgres: string): Machine {
  const cpus = os.cpus()
  return {
    cpus: cpus.length,
    cpuModel: cpus[0]?.model ?? 'unknown',
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    os: `${os.type()} ${os.release()}`,
    node: process.version,
    postgres,
  }
}
