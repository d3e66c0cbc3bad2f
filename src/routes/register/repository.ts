// Registrations in SQL: the user and its welcome-email job in one transaction (a rollback enqueues
// nothing; a commit always has its job), and the Idempotency-Key protocol: a repeat of a request
// with the same key replays the first answer and creates nothing; the same key with another
// request is refused.
import type { Sql } from '../../db/pool.ts'
import type { JobQueue } from '../../jobs/queue.ts'
import { Problem } from '../../lib/errors.ts'
import type { Registered } from './schemas.ts'

export type RegistrationsRepository = ReturnType<typeof createRegistrationsRepository>

export function createRegistrationsRepository (sql: Sql, jobs: JobQueue) {
  return {
    async register ({ email, name, idempotency }: { email: string, name: string, idempotency?: { key: string, requestHash: string } }): Promise<{ replayed: boolean, body: Registered }> {
      return await sql.begin(async (tx) => {
        if (idempotency !== undefined) {
          // A concurrent request with the same key waits here until the first one commits.
          const claimed = await tx`
            insert into idempotency_keys (scope, key, request_hash, status, body)
            values ('register', ${idempotency.key}, ${idempotency.requestHash}, 0, '{}') on conflict do nothing returning key`
          if (claimed.length === 0) {
            const [stored] = await tx<[{ request_hash: string, status: number, body: Registered }]>`
              select request_hash, status, body from idempotency_keys where scope = 'register' and key = ${idempotency.key}`
            if (stored.request_hash !== idempotency.requestHash) {
              throw new Problem('idempotency-key-reused', 'This Idempotency-Key was already used with a different request.')
            }
            return { replayed: true, body: stored.body }
          }
        }
        const [user] = await tx<[{ id: number }]>`insert into users (name, email) values (${name}, ${email}) returning id`
          .catch((error: { code?: string }) => {
            if (error.code === '23505') throw new Problem('conflict', `The email address ${email} is already registered.`)
            throw error
          })
        await jobs.enqueue(tx, 'send_welcome_email', { user_id: user.id })
        const body = { message: 'User registered' as const, user_id: user.id }
        if (idempotency !== undefined) {
          await tx`update idempotency_keys set status = 201, body = ${tx.json(body)} where scope = 'register' and key = ${idempotency.key}`
        }
        return { replayed: false, body }
      })
    },
  }
}
