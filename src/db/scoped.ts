// The lesson's `async with AsyncDatabase() as db:` in TypeScript: `await using` a reserved
// connection. It goes back to the pool when the block exits, whether it returns or throws.
import type { ReservedSql } from 'postgres'
import type { Sql } from './pool.ts'

export type ScopedConnection = ReservedSql & AsyncDisposable

/**
 * A connection of its own (no other query is pipelined onto it while it is held). With a signal,
 * the wait for it ends when the signal fires; a connection that arrives after that goes straight
 * back to the pool (postgres.js cannot withdraw a reserve() that waits).
 */
export async function reserveConnection (sql: Sql, signal?: AbortSignal): Promise<ScopedConnection> {
  const reserving = sql.reserve()
  const connection = signal === undefined ? await reserving : await abandonOnAbort(reserving, signal)
  return Object.assign(connection, { [Symbol.asyncDispose]: async () => { connection.release() } })
}

async function abandonOnAbort (reserving: Promise<ReservedSql>, signal: AbortSignal): Promise<ReservedSql> {
  signal.throwIfAborted()
  let abort!: () => void
  const aborted = new Promise<never>((_resolve, reject) => {
    abort = () => { reject(signal.reason as Error) }
    signal.addEventListener('abort', abort, { once: true })
  })
  try {
    return await Promise.race([reserving, aborted])
  } catch (error) {
    // Given up: whenever the connection comes, it goes back unused.
    reserving.then((connection) => { connection.release() }, () => {})
    throw error
  } finally {
    signal.removeEventListener('abort', abort)
  }
}
