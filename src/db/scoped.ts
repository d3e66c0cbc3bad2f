// The lesson's `async with AsyncDatabase() as db:` in TypeScript: `await using` a reserved
// connection. It goes back to the pool when the block exits, whether it returns or throws.
import type { ReservedSql } from 'postgres'
import type { Sql } from './pool.ts'

export type ScopedConnection = ReservedSql & AsyncDisposable

export async function reserveConnection (sql: Sql): Promise<ScopedConnection> {
  const connection = await sql.reserve()
  return Object.assign(connection, { [Symbol.asyncDispose]: async () => { connection.release() } })
}
