// Job queue and /register throughput, on an embedded PostgreSQL of its own (durable settings).
//   node bench/jobs.ts [--jobs 5000] [--requests 2000] [--concurrency 32]
// 1. no-op jobs per second through the worker (pg-boss fetch + settle, nothing else);
// 2. POST /register per second against `data-api serve --no-worker` in a separate process
//    (each request: a user row and its job in one transaction).
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { parseArgs } from 'node:util'
import { pino } from 'pino'
import { spawnServer } from '../tools/processes.ts'
import { loadConfig } from '../src/config.ts'
import { ensureDatabase } from '../src/db/database.ts'
import { startEmbeddedPostgres } from '../src/db/embedded-postgres.ts'
import { migrate } from '../src/db/migrate.ts'
import { createSql } from '../src/db/pool.ts'
import { startJobQueue } from '../src/jobs/queue.ts'

const { values } = parseArgs({ options: { jobs: { type: 'string', default: '5000' }, requests: { type: 'string', default: '2000' }, concurrency: { type: 'string', default: '32' } } })
const jobCount = Number(values.jobs)
const requestCount = Number(values.requests)
const concurrency = Number(values.concurrency)
const log = pino({ level: 'warn' })

const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'data-api-bench-'))
await fs.chmod(dir, 0o755)
const server = await startEmbeddedPostgres({ clusterDir: path.join(dir, 'pg'), log })
try {
  const url = await ensureDatabase(server.url, 'bench')
  const sql = createSql(url, { max: 10 })
  await migrate(sql)
  const config = loadConfig({ LOG_LEVEL: 'warn' })

  // 1. No-op jobs through the worker.
  const jobs = await startJobQueue(url, config, log)
  for (let sent = 0; sent < jobCount; sent += 500) {
    await sql.begin(async (tx) => {
      for (let i = sent; i < Math.min(jobCount, sent + 500); i++) await jobs.enqueue(tx, 'send_welcome_email', { user_id: i })
    })
  }
  let done = 0
  let finished: () => void = () => {}
  const allDone = new Promise<void>((resolve) => { finished = resolve })
  const started = performance.now()
  await jobs.work({ send_welcome_email: async () => { if (++done === jobCount) finished() } }, { default: config.jobs.workerConcurrency })
  await allDone
  const jobSeconds = (performance.now() - started) / 1000
  await jobs.stop(1000)
  console.log(`no-op jobs: ${jobCount} in ${jobSeconds.toFixed(2)} s = ${(jobCount / jobSeconds).toFixed(0)} jobs/s (WORKER_CONCURRENCY=${config.jobs.workerConcurrency}, one worker)`)
  await sql.end()

  // 2. POST /register against the real server in its own process.
  const serve = await spawnServer({
    command: process.execPath,
    args: ['bin/data-api.js', 'serve', '--no-worker'],
    // One client sends every registration: the per-client write limit would measure itself.
    env: { DATABASE_URL: url, LOG_LEVEL: 'info', RATE_LIMIT_WRITES: '0' },
    logFile: path.join(dir, 'serve.log'),
  })
  const base = serve.url
  let next = 0
  const statuses = new Map<number, number>()
  const t0 = performance.now()
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < requestCount) {
      const i = next++
      const response = await fetch(`${base}/register?email=bench${i}@example.com`, { method: 'POST' })
      await response.arrayBuffer()
      statuses.set(response.status, (statuses.get(response.status) ?? 0) + 1)
    }
  }))
  const seconds = (performance.now() - t0) / 1000
  await serve.stop()
  console.log(`POST /register: ${requestCount} in ${seconds.toFixed(2)} s = ${(requestCount / seconds).toFixed(0)} req/s at concurrency ${concurrency} (statuses ${JSON.stringify(Object.fromEntries(statuses))})`)
} finally {
  await server.stop()
  await fs.rm(dir, { recursive: true, force: true })
}
