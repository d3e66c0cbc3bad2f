// Process helpers of the development tools, the bench and the tests: the project's root, pinning
// a command to a core with taskset (when there is one), and starting a server process that is
// ready once its GET /healthz answers 200.
import { execFile } from 'node:child_process'
import { openSync } from 'node:fs'
import path from 'node:path'
import { promisify } from 'node:util'
import { spawnOwned, stopProcess } from '../src/lib/child-process.ts'
import { findFreePort } from '../src/lib/free-port.ts'

export const PROJECT_ROOT = path.resolve(import.meta.dirname, '..')

export interface RunningServer { url: string, pid: number, stop: () => Promise<void> }

export interface SpawnedServer extends RunningServer {
  /** Settles when the process exits, whoever stopped it: how, and the tail of its stderr. */
  exited: Promise<{ code: number | null, signal: NodeJS.Signals | null, stderr: string }>
}

/**
 * Servers run one after another: `run` starts one, hands it to `action` and stops it after;
 * `stopAll` stops those still running (a run cut short by an error or a signal).
 */
export class ServerScope {
  readonly #running = new Set<RunningServer>()

  async run<T> (start: () => Promise<RunningServer>, action: (server: RunningServer) => Promise<T>): Promise<T> {
    const server = await start()
    this.#running.add(server)
    try {
      return await action(server)
    } finally {
      this.#running.delete(server)
      await server.stop()
    }
  }

  async stopAll (): Promise<void> {
    const left = [...this.#running]
    this.#running.clear()
    for (const server of left) await server.stop()
  }
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

/** Spawns a server process on a free loopback port (PORT) and waits until its /healthz answers 200. */
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
