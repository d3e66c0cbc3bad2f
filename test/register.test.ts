// POST /register with a real SMTP server: the 201 does not wait for the email, exactly one welcome
// email arrives, duplicates and idempotent repeats send nothing more, and a mail server that is down
// only delays the email.
import assert from 'node:assert/strict'
import { after, describe, it } from 'node:test'
import { WELCOME_SUBJECT } from '../src/routes/register/welcome-email.ts'
import { buildTestApp, listen } from './helpers/app.ts'
import { delay, json, until } from './helpers/http.ts'
import { startFakeSmtp } from './helpers/smtp.ts'

const smtp = await startFakeSmtp()
after(async () => { await smtp.close() })
const { app, sql } = await buildTestApp({ after }, {
  SMTP_URL: smtp.url, JOB_RETRY_DELAY_SECONDS: '1', JOB_RETRY_DELAY_MAX_SECONDS: '2', WORKER_CONCURRENCY: '2',
}, { worker: true })
const base = await listen(app)

async function register (init: { query?: string, body?: unknown, key?: string }): Promise<Response> {
  const headers: Record<string, string> = {}
  if (init.body !== undefined) headers['content-type'] = 'application/json'
  if (init.key !== undefined) headers['idempotency-key'] = init.key
  return await fetch(`${base}/register${init.query ?? ''}`, { method: 'POST', headers, body: init.body === undefined ? undefined : JSON.stringify(init.body) })
}

async function jobCount (): Promise<number> {
  const [row] = await sql`select count(*)::int as count from pgboss.job where name = 'send_welcome_email'`
  return row?.count as number
}

function mailsTo (address: string): string[] {
  return smtp.received.filter((mail) => mail.to.includes(address)).map((mail) => mail.raw)
}

describe('POST /register', () => {
  it('answers 201 before the email is sent, then delivers exactly one welcome email', async () => {
    smtp.holdMs = 2000
    try {
      const response = await register({ query: '?email=ada.lovelace@example.com' })
      assert.equal(mailsTo('ada.lovelace@example.com').length, 0, 'answered before the mail server took the email')
      assert.equal(response.status, 201)
      const body = await json(response)
      assert.deepEqual(Object.keys(body).sort(), ['message', 'user_id'])
      assert.equal(body.message, 'User registered')
      assert.equal(response.headers.get('location'), `/users/${body.user_id}`)
      // The job sends it when the worker picks it up (later on a busy machine): once the mail
      // server has begun to receive it, it holds it for holdMs, and the answer came long before.
      await until('the mail server to begin receiving the email', async () => smtp.dataStarted >= 1, 10_000)
      assert.equal(mailsTo('ada.lovelace@example.com').length, 0, 'the mail server is still holding it')
      await smtp.waitFor(1, 10_000)
    } finally {
      smtp.holdMs = 0
    }
    await delay(300)
    const mails = mailsTo('ada.lovelace@example.com')
    assert.equal(mails.length, 1)
    assert.match(mails[0]!, new RegExp(`Subject: ${WELCOME_SUBJECT}`))
    assert.match(mails[0]!, /Hello Ada Lovelace/)
  })

  it('takes a JSON body with a name, used in the plain-text and HTML bodies', async () => {
    const response = await register({ body: { email: 'grace@example.com', name: 'Grace Hopper' } })
    assert.equal(response.status, 201)
    const deadline = Date.now() + 10_000
    while (mailsTo('grace@example.com').length === 0 && Date.now() < deadline) await delay(50)
    const [mail] = mailsTo('grace@example.com')
    assert.match(mail!, /Content-Type: text\/plain[\s\S]*Hello Grace Hopper/)
    assert.match(mail!, /Content-Type: text\/html[\s\S]*<p>Hello Grace Hopper/)
  })

  it('answers 409 to an address already registered, enqueues nothing and sends nothing more', async () => {
    const jobsBefore = await jobCount()
    const response = await register({ query: '?email=ADA.LOVELACE@example.com' })
    assert.equal(response.status, 409)
    assert.equal((await json(response)).type, '/problems/conflict')
    assert.equal(await jobCount(), jobsBefore, 'the rolled-back registration left no job')
    await delay(1500)
    assert.equal(mailsTo('ada.lovelace@example.com').length, 1)
  })

  it('replays the first response for a repeated Idempotency-Key: one user, one email', async () => {
    const request = { body: { email: 'once@example.com' }, key: 'key-123' }
    const [first, second] = await Promise.all([register(request), register(request)])
    const third = await register(request)
    const bodies = await Promise.all([first, second, third].map(json))
    assert.deepEqual([first.status, second.status, third.status], [201, 201, 201])
    assert.deepEqual(bodies[1], bodies[0])
    assert.deepEqual(bodies[2], bodies[0])
    assert.equal(third.headers.get('idempotent-replayed'), 'true')
    const [{ count }] = await sql<[{ count: number }]>`select count(*)::int as count from users where email = 'once@example.com'`
    assert.equal(count, 1)
    await delay(1500)
    assert.equal(mailsTo('once@example.com').length, 1)

    const reused = await register({ body: { email: 'someone.else@example.com' }, key: 'key-123' })
    assert.equal(reused.status, 422)
    assert.equal((await json(reused)).type, '/problems/idempotency-key-reused')
  })

  for (const [label, init, pointer] of [
    ['a malformed address', { query: '?email=not-an-address' }, '/email'],
    ['no address', {}, '/email'],
    ['two different addresses', { query: '?email=a@example.com', body: { email: 'b@example.com' } }, '/email'],
    ['an unknown field', { body: { email: 'c@example.com', admin: true } }, '/admin'],
  ] as const) {
    it(`answers 400 to ${label}`, async () => {
      const response = await register(init)
      assert.equal(response.status, 400)
      const body = await json(response)
      assert.equal(body.type, '/problems/validation-error')
      assert.equal(body.errors[0].pointer, pointer)
    })
  }

  it('retries while the mail server is down and delivers once it is back', async () => {
    await smtp.stop()
    const response = await register({ query: '?email=patient@example.com' })
    assert.equal(response.status, 201)
    const deadline = Date.now() + 10_000
    let retried = false
    while (!retried && Date.now() < deadline) {
      await delay(200)
      const [job] = await sql`select state, retry_count from pgboss.job where name = 'send_welcome_email' and data->>'user_id' = ${String((await json(response.clone())).user_id)}`
      retried = job?.state === 'retry' || (job?.retry_count as number) >= 1
    }
    assert.ok(retried, 'the failed attempt was scheduled for a retry')
    assert.equal(mailsTo('patient@example.com').length, 0)
    await smtp.start()
    const waitUntil = Date.now() + 20_000
    while (mailsTo('patient@example.com').length === 0 && Date.now() < waitUntil) await delay(100)
    assert.equal(mailsTo('patient@example.com').length, 1)
  })
})
