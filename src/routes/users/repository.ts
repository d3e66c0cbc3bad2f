// Users and their orders. Every query takes the caller's AbortSignal and is cancelled on the
// server when it fires (client gone, deadline passed, sibling failed).
import type { Sql } from '../../db/pool.ts'
import { cancellable } from '../../lib/concurrency.ts'
import type { OrderRow, OrderStatsRow, UserRow } from './schemas.ts'

export type UsersRepository = ReturnType<typeof createUsersRepository>

export function createUsersRepository (sql: Sql) {
  return {
    async findUser (userId: number, signal: AbortSignal): Promise<UserRow | undefined> {
      const [user] = await cancellable(sql<UserRow[]>`
        select id as user_id, name, email, created_at from users where id = ${userId}`, signal)
      return user
    },

    /** Keyset page: users with id > after, in id order (no OFFSET: page 1,000 costs what page 1 does). */
    async listUsers ({ limit, after }: { limit: number, after: number }, signal: AbortSignal): Promise<UserRow[]> {
      return await cancellable(sql<UserRow[]>`
        select id as user_id, name, email, created_at from users
        where id > ${after} order by id limit ${limit}`, signal)
    },

    async recentOrders (userId: number, limit: number, signal: AbortSignal): Promise<OrderRow[]> {
      return await cancellable(sql<OrderRow[]>`
        select id as order_id, amount::float8 as amount, status, created_at from orders
        where user_id = ${userId} order by created_at desc, id desc limit ${limit}`, signal)
    },

    async orderStats (userId: number, signal: AbortSignal): Promise<OrderStatsRow> {
      const [stats] = await cancellable(sql<[OrderStatsRow]>`
        select count(*)::int as count, coalesce(sum(amount), 0)::float8 as total, round(avg(amount), 2)::float8 as average
        from orders where user_id = ${userId}`, signal)
      return stats
    },

    /** Real database-side latency (pg_sleep) on a connection of its own, for /slow and /fast. */
    async pause (ms: number, signal: AbortSignal): Promise<void> {
      if (ms > 0) await cancellable(sql`select pg_sleep(${ms / 1000})`, signal)
    },
  }
}
