// The lesson's gather examples, on real queries:
//  GET /dashboard  user, orders and stats at once; orders and stats may fail alone (partial result).
//  GET /slow       user, then orders, one after the other on one reserved connection: the sum.
//  GET /fast       user and orders at once on two pool connections: the maximum.
// Each sends Server-Timing with one entry per part, so the difference shows in any browser.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import Type from 'typebox'
import type { Sql } from '../../db/pool.ts'
import { reserveConnection } from '../../db/scoped.ts'
import { createPermits, gather } from '../../lib/concurrency.ts'
import { Problem } from '../../lib/errors.ts'
import { abortOnDisconnect } from '../../lib/request-signal.ts'
import { problemResponses } from '../../lib/schemas.ts'
import { withServerTiming } from '../../lib/server-timing.ts'
import { createUsersRepository, type UsersRepository } from '../users/repository.ts'
import { Order, OrderStats, User, UserIdDefault1, type UserRow } from '../users/schemas.ts'

const RECENT_ORDERS = 10

const DelayQuery = Type.Object({
  user_id: UserIdDefault1,
  delay_ms: Type.Integer({ minimum: 0, maximum: 5000, default: 1000, description: 'Database-side latency (pg_sleep) of each fetch' }),
})
const UserAndOrders = Type.Object({ user: User, orders: Type.Array(Order) })

export interface DashboardOptions { sql: Sql, users: UsersRepository, partTimeoutMs: number, poolSize: number }

export const dashboardRoutes: FastifyPluginAsyncTypebox<DashboardOptions> = async (app, { sql, users, partTimeoutMs, poolSize }) => {
  // /slow and /fast hold connections for up to twice `delay_ms` each, for anyone who asks: together
  // they may take at most half the pool (two at least: /fast needs two), so the rest of the API
  // keeps its connections. And they sleep on reserved connections: postgres.js pipelines a query
  // onto a busy pool connection when none is free, where it would wait behind a sleep.
  const sleepingConnections = createPermits(Math.max(2, Math.floor(poolSize / 2)))
  const takeSleepers = (connections: number): Disposable => {
    const taken = sleepingConnections.tryTake(connections)
    if (taken === undefined) throw new Problem('service-unavailable', 'Too many /slow and /fast requests are waiting in the database right now; retry shortly.')
    return taken
  }

  const requireUser = async (userId: number, signal: AbortSignal, repository = users): Promise<UserRow> => {
    const user = await repository.findUser(userId, signal)
    if (user === undefined) throw new Problem('not-found', `There is no user ${userId}.`)
    return user
  }

  /**
   * The lesson's fetch_user() and fetch_orders(), each with `delayMs` of database-side latency, on
   * the connection `repositoryFor` gives (one reserved for /slow, one reserved each for /fast).
   */
  const slowFetches = (repositoryFor: () => Promise<{ repository: UsersRepository } & AsyncDisposable>, userId: number, delayMs: number) => ({
    user: async (signal: AbortSignal) => {
      await using held = await repositoryFor()
      await held.repository.pause(delayMs, signal)
      return await requireUser(userId, signal, held.repository)
    },
    orders: async (signal: AbortSignal) => {
      await using held = await repositoryFor()
      await held.repository.pause(delayMs, signal)
      return await held.repository.recentOrders(userId, RECENT_ORDERS, signal)
    },
  })
  /** A users repository on a connection of its own, given back when disposed. */
  const reservedRepository = async (): Promise<{ repository: UsersRepository } & AsyncDisposable> => {
    const connection = await reserveConnection(sql)
    return { repository: createUsersRepository(connection), [Symbol.asyncDispose]: connection[Symbol.asyncDispose] }
  }

  app.get('/dashboard', {
    schema: {
      tags: ['lesson'],
      summary: 'User, recent orders and order stats, fetched concurrently',
      description: `The three parts run at once on separate pool connections, each with a ${partTimeoutMs} ms deadline. ` +
        'If the user cannot be read the request fails (404/503) and the other parts are cancelled; if orders or stats fail, ' +
        'the response is still 200 with that part null and `errors` saying which part failed and why.',
      querystring: Type.Object({ user_id: UserIdDefault1 }),
      response: {
        200: Type.Object({
          user: User,
          orders: Type.Union([Type.Array(Order), Type.Null()]),
          stats: Type.Union([OrderStats, Type.Null()]),
          errors: Type.Optional(Type.Array(Type.Object({ part: Type.String(), reason: Type.String() }))),
        }),
        ...problemResponses(400, 404, 503),
      },
    },
  }, async (request, reply) => await withServerTiming(reply, async (timing) => {
    const userId = request.query.user_id
    const { values, errors } = await gather({
      user: async (signal) => await requireUser(userId, signal),
      orders: async (signal) => await users.recentOrders(userId, RECENT_ORDERS, signal),
      stats: async (signal) => await users.orderStats(userId, signal),
    }, { signal: abortOnDisconnect(reply), timeoutMs: partTimeoutMs, optional: ['orders', 'stats'], timing })
    for (const { part, error } of errors) request.log.warn({ part, err: error }, 'dashboard part failed')
    return { ...values, ...(errors.length > 0 && { errors: errors.map(({ part, reason }) => ({ part, reason })) }) }
  }))

  app.get('/slow', {
    schema: {
      tags: ['lesson'],
      summary: 'User, then orders: sequential awaits take the sum of both latencies',
      description: 'The two fetches run one after the other on one reserved connection (the lesson\'s `async with`), each with `delay_ms` of database-side latency.',
      querystring: DelayQuery,
      response: { 200: UserAndOrders, ...problemResponses(400, 404, 503) },
    },
  }, async (request, reply) => await withServerTiming(reply, async (timing) => {
    const { user_id: userId, delay_ms: delayMs } = request.query
    const signal = abortOnDisconnect(reply)
    using held = takeSleepers(1)
    // One connection for both fetches, the lesson's `async with`: reserved once, used in turn.
    await using connection = await reserveConnection(sql)
    const shared = { repository: createUsersRepository(connection), [Symbol.asyncDispose]: async () => {} }
    const fetches = slowFetches(async () => shared, userId, delayMs)
    const user = await timing.measure('user', async () => await fetches.user(signal))
    const orders = await timing.measure('orders', async () => await fetches.orders(signal))
    return { user, orders }
  }))

  app.get('/fast', {
    schema: {
      tags: ['lesson'],
      summary: 'User and orders at once: concurrent awaits take the longest latency',
      description: 'The two fetches run concurrently on two pool connections, each with `delay_ms` of database-side latency. If the user is missing, the orders fetch is cancelled.',
      querystring: DelayQuery,
      response: { 200: UserAndOrders, ...problemResponses(400, 404, 503) },
    },
  }, async (request, reply) => await withServerTiming(reply, async (timing) => {
    const { user_id: userId, delay_ms: delayMs } = request.query
    using held = takeSleepers(2)
    const { values } = await gather(slowFetches(reservedRepository, userId, delayMs), { signal: abortOnDisconnect(reply), timing })
    return values
  }))
}
