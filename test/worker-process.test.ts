// `data-api worker` as separate processes on one database: a worker SIGKILLed in the middle of a
// send loses nothing (its job expires and another worker delivers it), and two workers deliver each
// of 200 emails exactly once.
import assert from 'node:assert/strict'
import { after, describe, it } from 'node:test'
import { buildTestApp } from './helpers/app.ts'
import { delay } from './helpers/http.ts'
import { startCli, type CliProcess } from './helpers/process.ts'
import { startFakeSmtp } from './helpers/smtp.ts'

const smtp = await startFakeSmtp()
after(async () => { await smtp.close() })
// The same job settings as the workers: a queue's settings are read when a job is sent.
const { app, databaseUrl } = await buildTestApp({ after }, { JOB_EXPIRE_SECONDS: '3', JOB_SUPERVISE_INTERVAL_SECONDS: '1' })

const workers = new Set<CliProcess>()
after(async () => {
  for (const worker of workers) worker.child.kill('SIGKILL')
  await Promise.all([...workers].map(async (worker) => await worker.exited))
})

async function startWorkerProcess (): Promise<CliProcess> {
  const worker = await startCli(['worker'], {
    DATABASE_URL: databaseUrl,
    SMTP_URL: smtp.url,
    WORKER_CONCURRENCY: '4',
    JOB_EXPIRE_SECONDS: '3',
    JOB_SUPERVISE_INTERVAL_SECONDS: '1',
    SHUTDOWN_GRACE_MS: '2000',
  }, 'worker started')
  workers.add(worker)
  return worker
}

function jobsDone (worker: CliProcess): number {
  return worker.logs.filter((entry) => entry.msg === 'job done').length
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

    const rescuer = await startWorkerProcess()
    await smtp.waitFor(1, 60_000)
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
    assert.ok(jobsDone(first) > 0 && jobsDone(second) > 0, `both workers took part (${jobsDone(first)} and ${jobsDone(second)})`)
  })
})
