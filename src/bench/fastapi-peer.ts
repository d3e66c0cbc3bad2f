// The FastAPI peer of the benchmark: the lesson's app (bench/peers/fastapi/app.py) in a Python
// virtual environment of its own, served by uvicorn on a loopback port against data-api's database.
//
//   ensureFastapiVenv(cacheDir, log)                     → the venv's python (built once per requirements)
//   startFastapi({ python, databaseUrl, port?, cpu? })   → { url, pid, pinnedCpu, output(), stop() }
//
// The venv is rebuilt only when requirements.txt or the base python3 changes (a stamp file in it
// holds both). uvicorn runs bench/peers/fastapi/app.py with one worker (uvloop and httptools, which
// uvicorn[standard] installs and uvicorn picks by itself), access log off.
import { execFile, spawn, type ChildProcess } from 'node:child_process'
import { createHash } from 'node:crypto'
import fs from 'node:fs/promises'
import net from 'node:net'
import path from 'node:path'
import { setTimeout as delay } from 'node:timers/promises'
import { promisify } from 'node:util'
import { findFreePort } from '../db/embedded-postgres.ts'
import { stopProcess } from '../lib/child-process.ts'
import { hasTaskset, pinned, PROJECT_ROOT } from './servers.ts'

const execFileAsync = promisify(execFile)

/** The peer's directory: app.py and requirements.txt; uvicorn runs with it as cwd. */
export const FASTAPI_PEER_DIR = path.join(PROJECT_ROOT, 'bench', 'peers', 'fastapi')
const REQUIREMENTS = path.join(FASTAPI_PEER_DIR, 'requirements.txt')
const VENV_NAME = 'fastapi-venv'
const STAMP_FILE = '.data-api-requirements'
const BASE_PYTHON = 'python3'
const INSTALL_TIMEOUT_MS = 15 * 60_000
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

/**
 * Makes `<cacheDir>/fastapi-venv` with `python3 -m venv` and installs requirements.txt into it,
 * unless it is already there for the same requirements and python3. Returns the venv's python.
 */
export async function ensureFastapiVenv (cacheDir: string, log: (line: string) => void): Promise<string> {
  const venv = path.join(path.resolve(cacheDir), VENV_NAME)
  const requirements = await fs.readFile(REQUIREMENTS)
  const stamp = `${createHash('sha256').update(requirements).digest('hex')} ${await basePythonVersion()}\n`
  if (!await isBuilt(venv, stamp)) await buildVenv(venv, stamp, log)
  return venvPython(venv)
}

function venvPython (venv: string): string {
  return path.join(venv, 'bin', 'python')
}

async function isBuilt (venv: string, stamp: string): Promise<boolean> {
  return await readText(path.join(venv, STAMP_FILE)) === stamp && await exists(venvPython(venv))
}

/**
 * Builds the venv beside its final name and renames it into place, stamp included: an interrupted
 * build never leaves a half-made venv, and two builds at once (test files run in parallel) never
 * mix their files; the second to finish keeps the first one's. A renamed venv works as long as it
 * is used as `python -m …`, which is all we do (only the shebangs of its bin/ scripts keep the
 * build's path).
 */
async function buildVenv (venv: string, stamp: string, log: (line: string) => void): Promise<void> {
  log(`building the FastAPI peer's virtual environment in ${venv} (pip install, needs PyPI; first run only)…`)
  const started = performance.now()
  const partial = `${venv}.${process.pid}.partial`
  await fs.mkdir(path.dirname(venv), { recursive: true })
  await fs.rm(partial, { recursive: true, force: true })
  try {
    await run(BASE_PYTHON, ['-m', 'venv', partial], 'python3 -m venv',
      ' (on Debian and Ubuntu, `python3 -m venv` needs the python3-venv package)')
    await run(venvPython(partial), ['-m', 'pip', 'install', '--quiet', '--disable-pip-version-check', '-r', REQUIREMENTS], 'pip install',
      ` (it installs ${path.relative(PROJECT_ROOT, REQUIREMENTS)} from PyPI: is the network reachable?)`)
    await fs.writeFile(path.join(partial, STAMP_FILE), stamp)
    if (!await isBuilt(venv, stamp)) {
      await fs.rm(venv, { recursive: true, force: true })
      try {
        await fs.rename(partial, venv)
      } catch (error) {
        // Another build renamed its venv into place in between: use that one.
        if (!await isBuilt(venv, stamp)) throw error
      }
    }
  } finally {
    await fs.rm(partial, { recursive: true, force: true })
  }
  log(`built ${venv} in ${((performance.now() - started) / 1000).toFixed(1)} s`)
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
  const child = spawn(command, args, {
    cwd: FASTAPI_PEER_DIR,
    // No __pycache__ next to app.py: the peer's directory is part of the repository.
    env: { ...process.env, DATABASE_URL: databaseUrl, PYTHONUNBUFFERED: '1', PYTHONDONTWRITEBYTECODE: '1' },
    stdio: ['ignore', 'ignore', 'pipe'],
  })
  // If this process dies without calling stop(), do not leave the server running.
  const killOnExit = (): void => { child.kill('SIGKILL') }
  process.once('exit', killOnExit)
  child.once('exit', () => { process.removeListener('exit', killOnExit) })

  let stderr = ''
  child.stderr.setEncoding('utf8')
  // Read for as long as the process lives, so that a full pipe never blocks it.
  child.stderr.on('data', (chunk: string) => { stderr = `${stderr}${chunk}`.slice(-STDERR_KEPT_CHARS) })
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


/** "Python 3.11.7 /usr/bin/python3.11": a new python3 (version or install) means a new venv. */
async function basePythonVersion (): Promise<string> {
  try {
    const { stdout } = await execFileAsync(BASE_PYTHON, ['-c', 'import platform, sys; print("Python", platform.python_version(), sys.executable)'])
    return stdout.trim()
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new Error(`the FastAPI peer needs Python 3 (${BASE_PYTHON}), which was not found on PATH. Install Python 3.9 or later with its venv module.`, { cause: error })
    }
    throw new Error(`\`${BASE_PYTHON}\` does not run: ${stderrOf(error)}`, { cause: error })
  }
}

async function run (command: string, args: string[], what: string, hint: string): Promise<void> {
  try {
    await execFileAsync(command, args, {
      cwd: FASTAPI_PEER_DIR,
      env: { ...process.env, PIP_DISABLE_PIP_VERSION_CHECK: '1' },
      timeout: INSTALL_TIMEOUT_MS,
      maxBuffer: 64 * 1024 * 1024,
    })
  } catch (error) {
    throw new Error(`\`${what}\` failed while building the FastAPI peer's virtual environment${hint}:\n${stderrOf(error)}`, { cause: error })
  }
}

function stderrOf (error: unknown): string {
  const stderr = ((error as { stderr?: string }).stderr ?? '').trim()
  return (stderr === '' ? (error as Error).message : stderr).slice(-STDERR_KEPT_CHARS)
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

async function readText (file: string): Promise<string | undefined> {
  return await fs.readFile(file, 'utf8').catch(() => undefined)
}

async function exists (file: string): Promise<boolean> {
  return await fs.access(file).then(() => true, () => false)
}
