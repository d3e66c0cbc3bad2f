// The FastAPI peer of the benchmark: the lesson's app (bench/peers/fastapi/app.py) in a Python
// virtual environment of its own, served by uvicorn on a loopback port against data-api's database.
//
//   ensureFastapiVenv(cacheDir, log)                     → the venv's python (built once per requirements)
//   startFastapi({ python, databaseUrl, port?, cpu? })   → { url, pid, pinnedCpu, output(), stop() }
//
// uvicorn runs bench/peers/fastapi/app.py with one worker (uvloop and httptools, which
// uvicorn[standard] installs and uvicorn picks by itself), access log off.
import net from 'node:net'
import path from 'node:path'
import { findFreePort } from '../src/lib/free-port.ts'
import { ensureVenv } from '../tools/python-venv.ts'
import { PROJECT_ROOT } from '../tools/processes.ts'
import { startPythonServer, type PythonServer } from './python-server.ts'

/** The peer's directory: app.py and requirements.txt; uvicorn runs with it as cwd. */
export const FASTAPI_PEER_DIR = path.join(PROJECT_ROOT, 'bench', 'peers', 'fastapi')
const REQUIREMENTS = path.join(FASTAPI_PEER_DIR, 'requirements.txt')
const VENV_NAME = 'fastapi-venv'
const START_TIMEOUT_MS = 30_000

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

export type FastapiPeer = PythonServer

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
  return await startPythonServer({
    name: 'uvicorn',
    python,
    args: ['-m', 'uvicorn', 'app:app', '--host', '127.0.0.1', '--port', String(listenPort), '--workers', '1', '--no-access-log', '--log-level', 'warning'],
    port: listenPort,
    cwd: FASTAPI_PEER_DIR,
    env: { DATABASE_URL: databaseUrl },
    cpu,
    // uvicorn's own answer (its `server` header), not another server's on the same port.
    probe: { path: '/healthz', ready: (response) => response.status === 200 && response.headers.get('server') === 'uvicorn' },
    startTimeoutMs: START_TIMEOUT_MS,
  })
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
