// The FastAPI peer of the benchmark: the lesson's app (bench/peers/fastapi/app.py) in a Python
// virtual environment of its own, served by uvicorn on a loopback port against data-api's database.
//
//   ensureFastapiVenv(cacheDir, log)                     → the venv's python (built once per requirements)
//   startFastapi({ python, databaseUrl, port?, cpu? })   → { url, pid, pinnedCpu, output(), stop() }
//
// uvicorn runs bench/peers/fastapi/app.py with one worker (uvloop and httptools, which
// uvicorn[standard] installs and uvicorn picks by itself), access log off.
import type { ChildProcess } from 'node:child_process'
import net from 'node:net'
import path from 'node:path'
import { setTimeout as delay } from 'node:timers/promises'
import { findFreePort } from '../src/lib/free-port.ts'
import { spawnOwned, stopProcess } from '../src/lib/child-process.ts'
import { ensureVenv } from '../tools/python-venv.ts'
import { hasTaskset, pinned, PROJECT_ROOT } from '../tools/processes.ts'

/** The peer's directory: app.py and requirements.txt; uvicorn runs with it as cwd. */
export const FASTAPI_PEER_DIR = path.join(PROJECT_ROOT, 'bench', 'peers', 'fastapi')
const REQUIREMENTS = path.join(FASTAPI_PEER_DIR, 'requirements.txt')
const VENV_NAME = 'fastapi-venv'
const START_TIMEOUT_MS = 30_000
const POLL_INTERVAL_MS = 100
const STDERR_KEPT_CHARS = 8_000

export interface FastapiPeerOptions {
  /** The venv's python, from ensureFastapiVenv(). */
  python: string
  /** postgres://… of the database data-api uses (migrated, seeded). */
  databaseUrl: string
  /** Default: a free loopback port. */
  port?: number
  /** Pin the server to this CPU core (taskset -c), when taskset exists. */
  cpu?: number
}

export interface FastapiPeer {
  /** http://127.0.0.1:PORT, no trailing slash. */
  readonly url: string
  readonly pid: number
  /** The core the server is pinned to; undefined when no `cpu` was asked for or taskset is missing. */
  readonly pinnedCpu: number | undefined
  /** The last 8,000 characters uvicorn wrote to stderr (warnings and errors, e.g. a 500's traceback). */
  readonly output: () => string
  /** SIGTERM, then SIGKILL after 5 s; resolves once the process has exited. Safe to call twice. */
  stop: () => Promise<void>
}

/** `<cacheDir>/fastapi-venv` with requirements.txt installed (built once); returns the venv's python. */
export async function ensureFastapiVenv (cacheDir: string, log: (line: string) => void): Promise<string> {
  return await ensureVenv({ venv: path.join(cacheDir, VENV_NAME), requirements: REQUIREMENTS, purpose: 'the FastAPI peer', log })
}

/** Starts uvicorn on app.py and resolves once GET /healthz answers 200. */
export async function startFastapi ({ python, databaseUrl, port, cpu }: FastapiPeerOptions): Promise<FastapiPeer> {
  if (cpu !== undefined && (!Number.isInteger(cpu) || cpu < 0)) throw new Error(`cpu must be a core number (got ${cpu})`)
  // A given port must be free now: uvicorn binds only after its start-up (the pool's connections),
  // and until then /healthz would be answered by whatever else holds the port.
  if (port !== undefined) await assertPortFree(port)
  const listenPort = port ?? await findFreePort()
  const uvicorn = [python, '-m', 'uvicorn', 'app:app', '--host', '127.0.0.1', '--port', String(listenPort),
    '--workers', '1', '--no-access-log', '--log-level', 'warning']
  const pinnedCpu = cpu !== undefined && await hasTaskset() ? cpu : undefined
  const [command, args] = await pinned(pinnedCpu, uvicorn[0]!, uvicorn.slice(1))
  const child = spawnOwned(command, args, {
    cwd: FASTAPI_PEER_DIR,
    // No __pycache__ next to app.py: the peer's directory is part of the repository.
    env: { ...process.env, DATABASE_URL: databaseUrl, PYTHONUNBUFFERED: '1', PYTHONDONTWRITEBYTECODE: '1' },
    stdio: ['ignore', 'ignore', 'pipe'],
  })

  let stderr = ''
  child.stderr!.setEncoding('utf8')
  // Read for as long as the process lives, so that a full pipe never blocks it.
  child.stderr!.on('data', (chunk: string) => { stderr = `${stderr}${chunk}`.slice(-STDERR_KEPT_CHARS) })
  const output = (): string => stderr

  const url = `http://127.0.0.1:${listenPort}`
  try {
    await waitUntilHealthy(child, url, output)
  } catch (error) {
    await stopProcess(child)
    throw error
  }
  return { url, pid: child.pid!, pinnedCpu, output, stop: async () => { await stopProcess(child) } }
}

/**
 * Polls /healthz until it answers 200 from uvicorn (its `server` header) while our process lives.
 * Rejects with uvicorn's stderr when the process exits or fails to spawn first, or after
 * START_TIMEOUT_MS.
 */
async function waitUntilHealthy (child: ChildProcess, url: string, output: () => string): Promise<void> {
  let failure: string | undefined
  child.once('error', (error) => { failure = `could not start uvicorn: ${error.message}` })
  child.once('exit', (code, signal) => { failure ??= `uvicorn exited during start-up (code ${code ?? signal})` })

  const deadline = performance.now() + START_TIMEOUT_MS
  while (true) {
    if (failure !== undefined) {
      await delay(50) // the last stderr chunk may still be on its way
      throw new Error(`${failure}:\n${output().trim()}`)
    }
    if (performance.now() > deadline) {
      throw new Error(`the FastAPI peer did not answer GET ${url}/healthz within ${START_TIMEOUT_MS / 1000} s:\n${output().trim()}`)
    }
    try {
      const response = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(1_000) })
      await response.body?.cancel()
      if (response.status === 200 && response.headers.get('server') === 'uvicorn' && failure === undefined) return
    } catch {
      // not listening yet
    }
    await delay(POLL_INTERVAL_MS)
  }
}


async function assertPortFree (port: number): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const server = net.createServer()
    server.once('error', (error: NodeJS.ErrnoException) => {
      reject(error.code === 'EADDRINUSE' ? new Error(`port ${port} of 127.0.0.1 is in use: the FastAPI peer cannot listen there`) : error)
    })
    server.listen(port, '127.0.0.1', () => { server.close(() => { resolve() }) })
  })
}
