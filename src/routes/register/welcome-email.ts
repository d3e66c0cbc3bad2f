// send_welcome_email: at most one welcome email per user, however often the job runs. pg-boss may
// run an expired job's retry beside the original (timgit/pg-boss#555), so the handler takes a
// per-user advisory lock for the duration of the send and records each sent email; a second
// attempt either waits its turn (and retries) or finds the record and stops.
import type { Logger } from 'pino'
import type { Sql } from '../../db/pool.ts'
import type { Mailer, Message } from '../../jobs/mailer.ts'
import type { TaskHandler } from '../../jobs/queue.ts'

export function createWelcomeEmailHandler ({ sql, mailer, log }: { sql: Sql, mailer: Mailer, log: Logger }): TaskHandler<'send_welcome_email'> {
  return async (job) => {
    const userId = job.data.user_id
    await sql.begin(async (tx) => {
      const [{ locked }] = await tx<[{ locked: boolean }]>`
        select pg_try_advisory_xact_lock(hashtextextended('welcome-email:' || ${userId}::text, 0)) as locked`
      if (!locked) throw new Error(`another attempt is sending the welcome email of user ${userId}`)
      const [sent] = await tx`select sent_at from welcome_emails where user_id = ${userId}`
      if (sent !== undefined) {
        log.info({ user_id: userId, job_id: job.id }, 'welcome email already sent; nothing to do')
        return
      }
      const [user] = await tx<Array<{ name: string, email: string }>>`select name, email from users where id = ${userId}`
      if (user === undefined) {
        log.warn({ user_id: userId, job_id: job.id }, 'user no longer exists; no welcome email')
        return
      }
      const { messageId } = await mailer.send(welcomeMessage(user))
      await tx`insert into welcome_emails (user_id, message_id) values (${userId}, ${messageId})`
      log.info({ user_id: userId, job_id: job.id, message_id: messageId }, 'welcome email sent')
    })
  }
}

export const WELCOME_SUBJECT = 'Welcome to data-api'

export function welcomeMessage ({ name, email }: { name: string, email: string }): Message {
  return {
    to: email,
    subject: WELCOME_SUBJECT,
    text: `Hello ${name},\n\nwelcome to data-api. Your account for ${email} is ready.\n\n— data-api\n`,
    html: `<p>Hello ${escapeHtml(name)},</p><p>welcome to data-api. Your account for <b>${escapeHtml(email)}</b> is ready.</p><p>— data-api</p>`,
  }
}

function escapeHtml (text: string): string {
  return text.replace(/[&<>"']/g, (char) => `&#${char.charCodeAt(0)};`)
}
