// A MongoDB-wire server for tests and development: FerretDB v1 on its SQLite backend, built from
// source with Go into .cache/bin (once), started on a loopback port with its data in a directory
// of its own. SQLite keeps it independent of the PostgreSQL under test and needs no set-up.
//
//   test/global-setup.ts   startFerretDb() → { url, stop() }
//   npm run mongo          prints MONGODB_URL and serves until Ctrl-C (data under .data/ferretdb)
//
// Why not a plain `go install …/cmd/ferretdb@v1.24.2`: that binary panics at start ("Invalid
// build/version/version.txt"), because the module as published lacks the version file its release
// build generates. So we fetch the same module with `go mod download`, copy it, write that file and
// `go build` it; the result is the released v1.24.2 source, with its go.sum-pinned dependencies.
import { execFile, type ChildProcess } from 'node:child_process'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import readline from 'node:readline'
import { fileURLToPath } from 'node:url'
import { parseArgs, promisify } from 'node:util'
import { findFreePort } from '../src/lib/free-port.ts'
import { spawnOwned, stopProcess } from '../src/lib/child-process.ts'
import { PROJECT_ROOT } from './processes.ts'

const execFileAsync = promisify(execFile)

export const FERRETDB_VERSION = 'v1.24.2'
const FERRETDB_MODULE = 'github.com/FerretDB/FerretDB'
const BINARY = path.join(PROJECT_ROOT, '.cache', 'bin', `ferretdb-${FERRETDB_VERSION}`)
const START_TIMEOUT_MS = 15_000

export interface FerretDb {
  /** mongodb://127.0.0.1:PORT/ */
  readonly url: string
  readonly port: number
  readonly pid: number
  readonly dataDir: string
  /** Settles when the process exits, for whatever reason. */
  readonly exited: Promise<void>
  /** Stops the server (SIGTERM, SIGKILL if it lingers); removes the data directory if we made it. */
  stop: () => Promise<void>
}

export interface FerretDbOptions {
  /** Default: a free loopback port. Pass the port of a stopped instance to restart it. */
  port?: number
  /** Default: a new temporary directory, removed by stop(). A given directory is kept. */
  dataDir?: string
  /** Where progress lines ("building FerretDB…") go. */
  log?: (line: string) => void
}

/** Go is needed to build FerretDB and was not found: the tests that need FerretDB are skipped outside CI. */
export class MissingGoError extends Error {
  override name = 'MissingGoError'
}

/** Starts FerretDB and resolves once it accepts connections. */
export async function startFerretDb ({ port, dataDir, log = (line) => { console.error(line) } }: FerretDbOptions = {}): Promise<FerretDb> {
  const binary = await ensureFerretDbBinary(log)
  const ownsDataDir = dataDir === undefined
  const dir = dataDir ?? await fs.mkdtemp(path.join(os.tmpdir(), 'data-api-ferretdb-'))
  try {
    await fs.mkdir(dir, { recursive: true })
    const listenPort = port ?? await findFreePort()
    const child = spawnOwned(binary, [
      '--handler=sqlite',
      `--sqlite-url=file:${dir}/`,
      `--state-dir=${dir}`,
      `--listen-addr=127.0.0.1:${listenPort}`,
      // No fixed debug/metrics port (default 127.0.0.1:8088): two instances must never clash.
      '--debug-addr=-',
      '--telemetry=disable',
      // Info level for its "Listening on" line: proof that this process, not another, holds the port.
      '--log-level=info',
      '--log-format=json',
    ], { stdio: ['ignore', 'ignore', 'pipe'] })
    const exited = new Promise<void>((resolve) => child.once('exit', () => { resolve() }))

    await waitUntilListening(child, listenPort)
    return {
      url: `mongodb://127.0.0.1:${listenPort}/`,
      port: listenPort,
      pid: child.pid!,
      dataDir: dir,
      exited,
      stop: async () => {
        await stopProcess(child)
        if (ownsDataDir) await fs.rm(dir, { recursive: true, force: true })
      },
    }
  } catch (error) {
    if (ownsDataDir) await fs.rm(dir, { recursive: true, force: true })
    throw error
  }
}

/** The path of the FerretDB binary, built first if it is not in .cache/bin yet. */
export async function ensureFerretDbBinary (log: (line: string) => void): Promise<string> {
  if (await exists(BINARY)) return BINARY
  const go = await findGo()
  log(`building FerretDB ${FERRETDB_VERSION} (first run only)…`)
  const started = performance.now()
  // Our own settings only: a developer's GOFLAGS or go.work must not change what gets built.
  const env = { ...process.env, GOFLAGS: '', GOWORK: 'off' }
  const workDir = await fs.mkdtemp(path.join(os.tmpdir(), 'data-api-ferretdb-build-'))
  try {
    // Run from an empty directory: `go mod download` must not pick up some go.mod around it.
    const { stdout } = await run(go, ['mod', 'download', '-json', `${FERRETDB_MODULE}@${FERRETDB_VERSION}`], { env, cwd: workDir })
    const sourceDir = path.join(workDir, 'ferretdb')
    await fs.cp((JSON.parse(stdout) as { Dir: string }).Dir, sourceDir, { recursive: true })
    await makeWritable(sourceDir) // the module cache is read-only, and so is a copy of it
    await fs.writeFile(path.join(sourceDir, 'build', 'version', 'version.txt'), `${FERRETDB_VERSION}\n`)
    await fs.mkdir(path.dirname(BINARY), { recursive: true })
    // Built beside its final name and renamed: an interrupted build never leaves a broken binary.
    const partial = `${BINARY}.${process.pid}.partial`
    await run(go, ['build', '-o', partial, './cmd/ferretdb'], { env, cwd: sourceDir })
    await fs.rename(partial, BINARY)
  } finally {
    await fs.rm(workDir, { recursive: true, force: true })
  }
  log(`built ${path.relative(PROJECT_ROOT, BINARY)} in ${((performance.now() - started) / 1000).toFixed(1)} s`)
  return BINARY
}

async function findGo (): Promise<string> {
  for (const candidate of ['go', '/usr/local/go/bin/go', path.join(os.homedir(), 'go', 'bin', 'go'), '/usr/lib/go/bin/go']) {
    try {
      await execFileAsync(candidate, ['version'])
      return candidate
    } catch {
      // not this one
    }
  }
  throw new MissingGoError('FerretDB (the MongoDB-wire server the tests use) is built from source and needs Go 1.24 or later, ' +
    'which was not found on PATH or in /usr/local/go/bin. Install Go (https://go.dev/dl/), ' +
    'or point the tests at a MongoDB server of your own: MONGODB_URL=mongodb://… npm test')
}

async function run (command: string, args: string[], options: { env: NodeJS.ProcessEnv, cwd: string }): Promise<{ stdout: string }> {
  try {
    return await execFileAsync(command, args, { ...options, maxBuffer: 64 * 1024 * 1024 })
  } catch (error) {
    const stderr = ((error as { stderr?: string }).stderr ?? '').trim()
    throw new Error(`\`go ${args.join(' ')}\` failed while building FerretDB ${FERRETDB_VERSION}:\n${stderr}`, { cause: error })
  }
}

async function makeWritable (dir: string): Promise<void> {
  await fs.chmod(dir, 0o755)
  for (const entry of await fs.readdir(dir, { recursive: true, withFileTypes: true })) {
    await fs.chmod(path.join(entry.parentPath, entry.name), entry.isDirectory() ? 0o755 : 0o644)
  }
}

/** Resolves once FerretDB says it listens; rejects with its own output if it exits or times out first. */
async function waitUntilListening (child: ChildProcess, port: number): Promise<void> {
  let output = ''
  const listening = new Promise<void>((resolve, reject) => {
    readline.createInterface({ input: child.stderr! }).on('line', (line) => {
      if (line.includes('"msg":"Listening on TCP')) resolve()
      // Warnings and errors explain a failed start; the info lines only drown them.
      if (!/"level":"(INFO|DEBUG)"/.test(line)) output = `${output}${line}\n`.slice(-4000)
    })
    child.once('exit', (code, signal) => {
      reject(new Error(`FerretDB exited during start-up (code ${code ?? signal}, port ${port}):\n${output.trim()}`))
    })
  })
  let timer: NodeJS.Timeout | undefined
  const timedOut = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => { reject(new Error(`FerretDB did not listen on 127.0.0.1:${port} within ${START_TIMEOUT_MS} ms:\n${output.trim()}`)) }, START_TIMEOUT_MS)
  })
  try {
    await Promise.race([listening, timedOut])
  } catch (error) {
    await stopProcess(child)
    throw error
  } finally {
    clearTimeout(timer)
  }
}


async function exists (file: string): Promise<boolean> {
  return await fs.access(file).then(() => true, () => false)
}

/** `npm run mongo [-- --port 27017 --data-dir .data/ferretdb]`: a server for development. */
async function main (): Promise<void> {
  const { values } = parseArgs({
    options: {
      'port': { type: 'string', default: '27017' },
      'data-dir': { type: 'string', default: path.join('.data', 'ferretdb') },
    },
  })
  const port = Number(values.port)
  if (!Number.isInteger(port) || port < 1 || port > 65_535) throw new Error(`--port must be a TCP port number (got ${values.port})`)
  const server = await startFerretDb({ port, dataDir: path.resolve(values['data-dir']) })
  console.log(`FerretDB ${FERRETDB_VERSION} (SQLite, data in ${values['data-dir']}) is listening. Use it with:`)
  console.log(`MONGODB_URL=${server.url}`)
  console.log('Ctrl-C stops it.')
  let stopping = false
  const stop = (): void => {
    stopping = true
    server.stop().then(() => { process.exit(0) }, (error: unknown) => {
      console.error(error)
      process.exit(1)
    })
  }
  process.once('SIGINT', stop)
  process.once('SIGTERM', stop)
  await server.exited
  if (!stopping) {
    console.error('ferretdb: the server exited unexpectedly')
    process.exit(1)
  }
}

if (process.argv[1] !== undefined && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().catch((error: unknown) => {
    console.error(`ferretdb: ${error instanceof Error ? error.message : String(error)}`)
    process.exit(1)
  })
}
