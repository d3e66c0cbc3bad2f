// A Python server of a peer (uvicorn for FastAPI, Datasette) started from its virtual environment:
// pinned to a core when asked, its stderr kept (the tail) for error messages, ready once a probe
// URL answers as expected while the process lives; stopped by its pid's group.
import type { ChildProcess } from 'node:child_process'
import { setTimeout as delay } from 'node:timers/promises'
import { spawnOwned, stopProcess } from '../src/lib/child-process.ts'
import { hasTaskset, pinned } from '../tools/processes.ts'

const POLL_INTERVAL_MS = 100
const STDERR_KEPT_CHARS = 8_000

export interface PythonServer {
  /** http://127.0.0.1:PORT, no trailing slash. */
  readonly url: string
  readonly pid: number
  /** The core the server is pinned to; undefined when no `cpu` was asked for or taskset is missing. */
  readonly pinnedCpu: number | undefined
  /** The last 8,000 characters it wrote to stderr (warnings and errors, e.g. a 500's traceback). */
  readonly output: () => string
  /** SIGTERM, then SIGKILL after 5 s; resolves once the process has exited. Safe to call twice. */
  stop: () => Promise<void>
}

export interface PythonServerOptions {
  /** What it is, for error messages ("uvicorn", "datasette"). */
  name: string
  python: string
  /** Arguments after the venv's python; they make it listen on `port` of 127.0.0.1. */
  args: string[]
  port: number
  cwd: string
  env?: Record<string, string>
  cpu?: number
  /** Ready once GET `path` answers and `ready(response)` holds. */
  probe: { path: string, ready: (response: Response) => boolean }
  startTimeoutMs: number
}

export async function startPythonServer (options: PythonServerOptions): Promise<PythonServer> {
  const pinnedCpu = options.cpu !== undefined && await hasTaskset() ? options.cpu : undefined
  const [command, args] = await pinned(pinnedCpu, options.python, options.args)
  const child = spawnOwned(command, args, {
    cwd: options.cwd,
    // No __pycache__ beside the sources: a peer's directory is part of the repository.
    env: { ...process.env, ...options.env, PYTHONUNBUFFERED: '1', PYTHONDONTWRITEBYTECODE: '1' },
    stdio: ['ignore', 'ignore', 'pipe'],
  })
  let stderr = ''
  child.stderr!.setEncoding('utf8')
  // Read for as long as the process lives, so that a full pipe never blocks it.
  child.stderr!.on('data', (chunk: string) => { stderr = `${stderr}${chunk}`.slice(-STDERR_KEPT_CHARS) })
  const output = (): string => stderr
  const url = `http://127.0.0.1:${options.port}`
  try {
    await waitUntilReady(child, url, output, options)
  } catch (error) {
    await stopProcess(child)
    throw error
  }
  return { url, pid: child.pid!, pinnedCpu, output, stop: async () => { await stopProcess(child) } }
}

/** Rejects with the server's stderr when the process exits or fails to spawn first, or after startTimeoutMs. */
async function waitUntilReady (child: ChildProcess, url: string, output: () => string, { name, probe, startTimeoutMs }: PythonServerOptions): Promise<void> {
  let failure: string | undefined
  child.once('error', (error) => { failure = `could not start ${name}: ${error.message}` })
  child.once('exit', (code, signal) => { failure ??= `${name} exited during start-up (code ${code ?? signal})` })
  const deadline = performance.now() + startTimeoutMs
  while (true) {
    if (failure !== undefined) {
      await delay(50) // the last stderr chunk may still be on its way
      throw new Error(`${failure}:\n${output().trim()}`)
    }
    if (performance.now() > deadline) throw new Error(`${name} did not answer GET ${url}${probe.path} within ${startTimeoutMs / 1000} s:\n${output().trim()}`)
    try {
      const response = await fetch(`${url}${probe.path}`, { signal: AbortSignal.timeout(1_000) })
      await response.body?.cancel()
      if (probe.ready(response) && failure === undefined) return
    } catch {
      // not listening yet
    }
    await delay(POLL_INTERVAL_MS)
  }
}
