// Runs the real CLI (`bin/data-api.js serve`) as a child process, the way a user starts it.
import { spawn, type ChildProcess } from 'node:child_process'
import readline from 'node:readline'

export interface ServeProcess {
  child: ChildProcess
  url: string
  logs: Array<Record<string, unknown>>
  /** Resolves with the exit code once the process has exited. */
  exited: Promise<number | null>
}

export async function startServe (env: Record<string, string>, { timeoutMs = 30_000 } = {}): Promise<ServeProcess> {
  const child = spawn(process.execPath, ['bin/data-api.js', 'serve'], {
    env: { ...process.env, PORT: '0', LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => { resolve(code) }))
  const logs: Array<Record<string, unknown>> = []
  let stderr = ''
  child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString() })
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => { reject(new Error(`serve did not start within ${timeoutMs} ms`)) }, timeoutMs)
    readline.createInterface({ input: child.stdout }).on('line', (line) => {
      const entry = JSON.parse(line) as Record<string, unknown>
      logs.push(entry)
      if (entry.msg === 'data-api listening') {
        clearTimeout(timer)
        resolve(entry.url as string)
      }
    })
    void exited.then((code) => {
      clearTimeout(timer)
      reject(new Error(`serve exited with ${code} before listening: ${stderr}${logs.map((entry) => String(entry.msg)).join(' | ')}`))
    })
  })
  return { child, url, logs, exited }
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
