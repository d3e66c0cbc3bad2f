// What the database itself reports about this service, for /metrics: its connections by state.
import { cancellable } from '../lib/concurrency.ts'
import type { Sql } from './pool.ts'

export type DatabaseActivityRepository = ReturnType<typeof createDatabaseActivityRepository>

export function createDatabaseActivityRepository (sql: Sql) {
  return {
    /** Connections of data-api processes (all of them, application_name data-api), by state. */
    async connectionsByState (signal: AbortSignal): Promise<Array<{ state: string, count: number }>> {
      return await cancellable(sql<Array<{ state: string, count: number }>>`
        select coalesce(state, 'unknown') as state, count(*)::int as count from pg_stat_activity
        where application_name = 'data-api' group by 1`, signal)
    },
  }
}
