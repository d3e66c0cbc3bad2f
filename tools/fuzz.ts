// `npm run fuzz`: schemathesis against the running service, generated from its own /openapi.json.
// It builds schemathesis's virtual environment (.cache/fuzz-venv, pinned in fuzz/requirements.txt),
// starts `data-api serve` on an embedded PostgreSQL in a temporary directory (demo data loaded),
// creates an API key for the writes, and runs the checks of fuzz/schemathesis.toml: no 5xx, and
// every response as documented (status, content type, headers, body). Bounded by a fixed seed, the
// examples per operation and a time budget. Exits non-zero on any finding; stops what it started.
//
//   npm run fuzz                    the CI run
//   npm run fuzz -- --max-time 60   extra arguments go to `schemathesis run`
import { execFile, spawn } from 'node:child_process'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'
import { PROJECT_ROOT, spawnServer } from './processes.ts'
import { ensureVenv } from './python-venv.ts'

const FUZZ_DIR = path.join(PROJECT_ROOT, 'tools', 'fuzz')
const log = (line: string): void => { console.error(`fuzz: ${line}`) }

const python = await ensureVenv({ venv: path.join(PROJECT_ROOT, '.cache', 'fuzz-venv'), requirements: path.join(FUZZ_DIR, 'requirements.txt'), purpose: 'schemathesis', log })

await using resources = new AsyncDisposableStack()
const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'data-api-fuzz-'))
resources.defer(async () => { await fs.rm(dataDir, { recursive: true, force: true }) })
await fs.chmod(dataDir, 0o755) // the embedded PostgreSQL may run as another user
const env = {
  DATA_DIR: dataDir,
  LOG_LEVEL: 'warn',
  // One client sends every request: per-client rate limits would answer 429 to most writes and hide
  // the routes behind them (429 itself is documented wherever it applies).
  RATE_LIMIT_WRITES: '0',
  RATE_LIMIT_COMPUTE: '0',
}
const server = await spawnServer({ command: process.execPath, args: ['bin/data-api.js', 'serve'], env, logFile: path.join(dataDir, 'serve.log') })
resources.defer(async () => { await server.stop() })
const { stdout } = await promisify(execFile)(process.execPath, ['bin/data-api.js', 'keys', 'create', '--name', 'fuzz'], { cwd: PROJECT_ROOT, env: { ...process.env, ...env } })
const apiKey = stdout.trim().split('\n').at(-1)!
log(`server on ${server.url}; schemathesis with ${path.relative(PROJECT_ROOT, path.join(FUZZ_DIR, 'schemathesis.toml'))}`)

const status = await new Promise<number>((resolve, reject) => {
  const child = spawn(python, ['-m', 'schemathesis.cli', '--config-file', path.join(FUZZ_DIR, 'schemathesis.toml'), 'run', `${server.url}/openapi.json`, ...process.argv.slice(2)], {
    cwd: dataDir, // its cache of past failures (.schemathesis/) goes with the run, not into the repository
    env: { ...process.env, FUZZ_API_KEY: apiKey, NO_COLOR: '1' },
    stdio: ['ignore', 'inherit', 'inherit'],
  })
  child.once('error', reject)
  child.once('exit', (code, signal) => { resolve(code ?? (signal === null ? 1 : 128)) })
})
if (status !== 0) {
  log(`schemathesis found problems (exit ${status}); the server's log follows`)
  console.error((await fs.readFile(path.join(dataDir, 'serve.log'), 'utf8')).slice(-20_000))
}
process.exitCode = status
