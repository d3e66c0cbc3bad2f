// data-api's GET /healthz against bare Fastify's, side by side in one run: both servers on one
// core, the load generator on the other, the two loaded in turn round after round so that drift of
// the machine (a neighbour, thermal limits) lands on both; medians. The measure of what data-api's
// hooks and plugins cost a request that does no work of its own (issue #18's target: ≥ 0.8 ×).
//   node bench/hello.ts [--log-level warn|info] [--rounds 3] [--seconds 10] [--connections 50] [--data-api DIR]
// --data-api runs the data-api of another checkout (a before/after of one change, on one database).
// At warn data-api writes no log line per request and bare Fastify runs without a logger; at info
// both log every request (data-api one line, Fastify's default logger two), to a file.
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { parseArgs } from 'node:util'
import { pino } from 'pino'
import { ensureDatabase } from '../src/db/database.ts'
import { startEmbeddedPostgres } from '../src/db/embedded-postgres.ts'
import { spawnServer, type RunningServer } from '../tools/processes.ts'
import { runLoad } from './load.ts'
import type { LoadRun } from './results.ts'
import { median } from './statistics.ts'

const SERVER_CPU = 0
const LOAD_CPU = 1
const WARMUP_SECONDS = 3

const { values } = parseArgs({
  options: {
    'log-level': { type: 'string', default: 'warn' },
    rounds: { type: 'string', default: '3' },
    seconds: { type: 'string', default: '10' },
    connections: { type: 'string', default: '50' },
    'data-api': { type: 'string' },
  },
})
const logLevel = values['log-level']
const rounds = Number(values.rounds)
const durationSeconds = Number(values.seconds)
const connections = Number(values.connections)
const logging = logLevel !== 'warn' && logLevel !== 'error' && logLevel !== 'fatal' && logLevel !== 'silent'

const work = await fs.mkdtemp(path.join(os.tmpdir(), 'data-api-hello-'))
await fs.chmod(work, 0o755)
const postgres = await startEmbeddedPostgres({ clusterDir: path.join(work, 'pg'), log: pino({ level: 'warn' }) })
const servers: Array<{ name: string, server: RunningServer }> = []
try {
  const databaseUrl = await ensureDatabase(postgres.url, 'hello')
  servers.push({
    name: 'data-api',
    server: await spawnServer({
      command: process.execPath,
      args: ['bin/data-api.js', 'serve'],
      env: { DATABASE_URL: databaseUrl, LOG_LEVEL: logLevel, SEED_DEMO: 'false' },
      cpu: SERVER_CPU,
      logFile: path.join(work, 'data-api.log'),
      ...(values['data-api'] !== undefined && { cwd: path.resolve(values['data-api']) }),
    }),
  })
  servers.push({
    name: logging ? 'bare Fastify (default logger)' : 'bare Fastify',
    server: await spawnServer({
      command: process.execPath,
      args: ['bench/peers/bare-fastify.ts'],
      env: { DATABASE_URL: databaseUrl, ...(logging && { LOG_LEVEL: logLevel }) },
      cpu: SERVER_CPU,
      logFile: path.join(work, 'bare-fastify.log'),
    }),
  })
  for (const { server } of servers) await runLoad({ url: `${server.url}/healthz`, connections, durationSeconds: WARMUP_SECONDS }, LOAD_CPU)
  const runs = new Map<string, LoadRun[]>(servers.map(({ name }) => [name, []]))
  for (let round = 1; round <= rounds; round++) {
    for (const { name, server } of servers) {
      const run = await runLoad({ url: `${server.url}/healthz`, connections, durationSeconds }, LOAD_CPU)
      if (run.errors > 0 || run.non2xx > 0) throw new Error(`${name}: ${run.errors} errors, ${run.non2xx} non-2xx answers`)
      runs.get(name)!.push(run)
      console.log(`round ${round}  ${name.padEnd(30)} ${run.rps.toFixed(0).padStart(7)} req/s  p50 ${run.p50} ms  p99 ${run.p99} ms`)
    }
  }
  const medians = [...runs].map(([name, measured]) => ({ name, rps: median(measured.map((run) => run.rps)) }))
  console.log(`LOG_LEVEL=${logLevel}, ${rounds} × ${durationSeconds} s, ${connections} connections, medians:`)
  for (const { name, rps } of medians) console.log(`  ${name.padEnd(30)} ${rps.toFixed(0).padStart(7)} req/s`)
  console.log(`  ratio ${(medians[0]!.rps / medians[1]!.rps).toFixed(3)}`)
} finally {
  for (const { server } of servers) await server.stop()
  await postgres.stop()
  await fs.rm(work, { recursive: true, force: true })
}
