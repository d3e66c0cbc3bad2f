// `data-api worker` as separate processes on one database: a worker SIGKILLed in the middle of a
// send loses nothing (its job expires and another worker delivers it), and two workers deliver each
// of 200 emails exactly once.
import assert from 'node:assert/strict'
import { spawn, type ChildProcess } from 'node:child_process'
import readline from 'node:readline'
import { after, describe, it } from 'node:test'
import { buildTestApp } from './helpers/app.ts'
import { delay } from './helpers/http.ts'
import { startFakeSmtp } from './helpers/smtp.ts'

const smtp = await startFakeSmtp()
after(async () => { await smtp.close() })
// The same job settings as the workers: a queue's settings are read when a job is sent.
const { app, databaseUrl } = await buildTestApp({ after }, { JOB_EXPIRE_SECONDS: '3', JOB_SUPERVISE_INTERVAL_SECONDS: '1' })

interface WorkerProcess { child: ChildProcess, jobsDone: number, exited: Promise<number | null> }
const workers = new Set<WorkerProcess>()
after(async () => {
  for (const worker of workers) worker.child.kill('SIGKILL')
  await Promise.all([...workers].map(async (worker) => await worker.exited))
})

async function startWorkerProcess (): Promise<WorkerProcess> {
  const child = spawn(process.execPath, ['bin/data-api.js', 'worker'], {
    env: {
      ...process.env,
      DATABASE_URL: databaseUrl,
      SMTP_URL: smtp.url,
      LOG_LEVEL: 'info',
      WORKER_CONCURRENCY: '4',
      JOB_EXPIRE_SECONDS: '3',
      JOB_SUPERVISE_INTERVAL_SECONDS: '1',
      SHUTDOWN_GRACE_MS: '2000',
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  const worker: WorkerProcess = { child, jobsDone: 0, exited: new Promise((resolve) => child.once('exit', resolve)) }
  workers.add(worker)
  await new Promise<void>((resolve, reject) => {
    readline.createInterface({ input: child.stdout }).on('line', (line) => {
      const entry = JSON.parse(line) as { msg?: string }
      if (entry.msg === 'worker started') resolve()
      if (entry.msg === 'job done') worker.jobsDone++
    })
    void worker.exited.then((code) => { reject(new Error(`worker exited with ${code} before starting`)) })
  })
  return worker
}

async function register (email: string): Promise<void> {
  const response = await app.inject({ method: 'POST', url: `/register?email=${encodeURIComponent(email)}` })
  assert.equal(response.statusCode, 201)
}

describe('data-api worker processes', () => {
  it('deliver the email of a worker killed mid-send, once', async () => {
    smtp.holdMs = 60_000 // the first attempt hangs inside the SMTP transaction
    const doomed = await startWorkerProcess()
    await register('survivor@example.com')
    const deadline = Date.now() + 15_000
    while (smtp.dataStarted === 0 && Date.now() < deadline) await delay(50)
    assert.equal(smtp.dataStarted, 1, 'the worker is in the middle of sending')
    doomed.child.kill('SIGKILL')
    await doomed.exited
    workers.delete(doomed)
    smtp.holdMs = 0

    const started = Date.now()
    const rescuer = await startWorkerProcess()
    await smtp.waitFor(1, 60_000)
    assert.ok(Date.now() - started < 60_000)
    await delay(1000)
    assert.deepEqual(smtp.received.map((mail) => mail.to), [['survivor@example.com']], 'delivered exactly once')
    rescuer.child.kill('SIGTERM')
    assert.equal(await rescuer.exited, 0, 'a worker stops cleanly on SIGTERM')
    workers.delete(rescuer)
  })

  it('share 200 emails between two workers, each delivered exactly once', async () => {
    smtp.received.length = 0
    const [first, second] = await Promise.all([startWorkerProcess(), startWorkerProcess()])
    const addresses = Array.from({ length: 200 }, (_, i) => `user${i}@example.com`)
    for (const address of addresses) await register(address)
    await smtp.waitFor(200, 60_000)
    await delay(1000)
    const delivered = smtp.received.flatMap((mail) => mail.to).sort()
    assert.deepEqual(delivered, [...addresses].sort(), 'each address once, none twice')
    assert.ok(first.jobsDone > 0 && second.jobsDone > 0, `both workers took part (${first.jobsDone} and ${second.jobsDone})`)
  })
})
