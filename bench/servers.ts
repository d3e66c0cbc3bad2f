// The processes a benchmark measures and runs: each server on a port of its own, pinned to a core
// with taskset when there is one, ready once GET /healthz answers; and the load generator.
import { execFile } from 'node:child_process'
import { openSync } from 'node:fs'
import path from 'node:path'
import { promisify } from 'node:util'
import { findFreePort } from '../src/lib/free-port.ts'
import { spawnOwned, stopProcess } from '../src/lib/child-process.ts'
import type { LoadOptions } from './load.ts'
import type { LoadRun } from './results.ts'

export const PROJECT_ROOT = path.resolve(import.meta.dirname, '..')

export interface RunningServer { url: string, pid: number, stop: () => Promise<void> }

export interface SpawnedServer extends RunningServer {
  /** Settles when the process exits, whoever stopped it: how, and the tail of its stderr. */
  exited: Promise<{ code: number | null, signal: NodeJS.Signals | null, stderr: string }>
}

let tasksetAvailable: boolean | undefined

export async function hasTaskset (): Promise<boolean> {
  tasksetAvailable ??= await promisify(execFile)('taskset', ['-c', '0', 'true']).then(() => true, () => false)
  return tasksetAvailable
}

/** `command args…`, prefixed with `taskset -c cpu` when a core is asked for and taskset works. */
export async function pinned (cpu: number | undefined, command: string, args: string[]): Promise<[string, string[]]> {
  return cpu !== undefined && await hasTaskset() ? ['taskset', ['-c', String(cpu), command, ...args]] : [command, args]
}

export async function describePinning (serverCpu: number, loadCpu: number): Promise<string> {
  return await hasTaskset()
    ? `server on CPU ${serverCpu}, load generator on CPU ${loadCpu} (taskset); PostgreSQL unpinned`
    : 'not pinned (taskset unavailable)'
}

/** Spawns a server process and waits until its /healthz answers 200. */
export async function spawnServer (options: { command: string, args: string[], env?: Record<string, string>, cwd?: string, cpu?: number, logFile?: string, port?: number }): Promise<SpawnedServer> {
  const port = options.port ?? await findFreePort()
  const [command, args] = await pinned(options.cpu, options.command, options.args)
  const output = options.logFile === undefined ? 'ignore' : openSync(options.logFile, 'a')
  const child = spawnOwned(command, args, {
    cwd: options.cwd ?? PROJECT_ROOT,
    env: { ...process.env, ...options.env, PORT: String(port) },
    stdio: ['ignore', output, 'pipe'],
  })
  let stderr = ''
  child.stderr!.on('data', (chunk: Buffer) => { stderr = (stderr + chunk.toString()).slice(-4000) })
  const exited = new Promise<{ code: number | null, signal: NodeJS.Signals | null, stderr: string }>((resolve) => {
    child.once('close', (code, signal) => { resolve({ code, signal, stderr }) })
  })
  const url = `http://127.0.0.1:${port}`
  const deadline = Date.now() + 60_000
  for (;;) {
    const answered = await fetch(`${url}/healthz`).then((response) => response.ok, () => false)
    if (answered) break
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill('SIGKILL')
      throw new Error(`${options.command} ${options.args.join(' ')} did not start: ${stderr}`)
    }
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  return { url, pid: child.pid!, stop: async () => { await stopProcess(child) }, exited }
}


/** One autocannon run in a child process on `cpu`. */
export async function runLoad (options: LoadOptions, cpu: number | undefined): Promise<LoadRun> {
  const [command, args] = await pinned(cpu, process.execPath, [path.join(PROJECT_ROOT, 'bench/load.ts'), JSON.stringify(options)])
  const { stdout } = await promisify(execFile)(command, args, { maxBuffer: 1024 * 1024 })
  return JSON.parse(stdout.trim().split('\n').at(-1)!) as LoadRun
}
