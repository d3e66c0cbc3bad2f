// Runs the real CLI (`bin/data-api.js <command>`) as a child process, the way a user starts it,
// and collects its JSON log lines.
import { spawn, type ChildProcess } from 'node:child_process'
import readline from 'node:readline'
import { TEST_DEFAULTS } from './defaults.ts'

export interface CliProcess {
  child: ChildProcess
  /** Every log line so far (it keeps filling while the process runs). */
  logs: Array<Record<string, unknown>>
  /** Resolves with the exit code once the process has exited. */
  exited: Promise<number | null>
}

export interface ServeProcess extends CliProcess { url: string }

/**
 * Starts `data-api <command>` and resolves once it logs `readyMessage`; rejects if it exits first.
 * `processGroup`: in a process group of its own, as a shell puts `npm start` in a terminal, so
 * that a test can send a signal to the whole group the way Ctrl-C does.
 */
export async function startCli (command: string[], env: Record<string, string>, readyMessage: string, { timeoutMs = 30_000, processGroup = false } = {}): Promise<CliProcess & { ready: Record<string, unknown> }> {
  const child = spawn(process.execPath, ['bin/data-api.js', ...command], {
    env: { ...process.env, PORT: '0', LOG_LEVEL: 'info', ...TEST_DEFAULTS, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: processGroup,
  })
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => { resolve(code) }))
  const logs: Array<Record<string, unknown>> = []
  let stderr = ''
  child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString() })
  const ready = await new Promise<Record<string, unknown>>((resolve, reject) => {
    const timer = setTimeout(() => { reject(new Error(`data-api ${command.join(' ')} was not ready within ${timeoutMs} ms`)) }, timeoutMs)
    readline.createInterface({ input: child.stdout }).on('line', (line) => {
      const entry = JSON.parse(line) as Record<string, unknown>
      logs.push(entry)
      if (entry.msg === readyMessage) {
        clearTimeout(timer)
        resolve(entry)
      }
    })
    void exited.then((code) => {
      clearTimeout(timer)
      reject(new Error(`data-api ${command.join(' ')} exited with ${code} before it was ready: ${stderr}${logs.map((entry) => String(entry.msg)).join(' | ')}`))
    })
  })
  return { child, logs, exited, ready }
}

export async function startServe (env: Record<string, string>, options: { processGroup?: boolean } = {}): Promise<ServeProcess> {
  const { ready, ...serve } = await startCli(['serve'], env, 'data-api listening', options)
  return { ...serve, url: ready.url as string }
}

/** Runs `data-api serve` expecting it to fail; returns its exit code and output. */
export async function serveExpectingFailure (env: Record<string, string>): Promise<{ code: number | null, output: string }> {
  const child = spawn(process.execPath, ['bin/data-api.js', 'serve'], { env: { ...process.env, PORT: '0', ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
  let output = ''
  child.stdout.on('data', (chunk: Buffer) => { output += chunk.toString() })
  child.stderr.on('data', (chunk: Buffer) => { output += chunk.toString() })
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve))
  return { code, output }
}
