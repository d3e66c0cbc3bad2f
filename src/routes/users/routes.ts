// GET /users and GET /users/{user_id}: the lesson's asyncpg examples, on the shared pool.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import Type from 'typebox'
import { Problem } from '../../lib/errors.ts'
import { abortOnDisconnect } from '../../lib/request-signal.ts'
import { problemResponses } from '../../lib/schemas.ts'
import type { UsersRepository } from './repository.ts'
import { User, UserId } from './schemas.ts'

export const userRoutes: FastifyPluginAsyncTypebox<{ users: UsersRepository }> = async (app, { users }) => {
  app.get('/users', {
    schema: {
      tags: ['users'],
      summary: 'A page of users, in id order',
      description: 'Keyset pagination: follow the `Link: <…>; rel="next"` header, or pass the last `user_id` you saw as `after`.',
      querystring: Type.Object({
        limit: Type.Integer({ minimum: 1, maximum: 100, default: 10 }),
        after: Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER, default: 0, description: 'Return users with an id greater than this' }),
      }),
      response: { 200: Type.Array(User), ...problemResponses(400, 503) },
    },
  }, async (request, reply) => {
    const { limit, after } = request.query
    // One row more than asked tells whether a next page exists without a count(*).
    const rows = await users.listUsers({ limit: limit + 1, after }, abortOnDisconnect(reply))
    const page = rows.slice(0, limit)
    if (rows.length > limit) reply.header('link', `</users?limit=${limit}&after=${page.at(-1)!.user_id}>; rel="next"`)
    return page
  })

  app.get('/users/:user_id', {
    schema: {
      tags: ['users'],
      summary: 'One user',
      params: Type.Object({ user_id: UserId }),
      response: { 200: User, ...problemResponses(400, 404, 503) },
    },
  }, async (request, reply) => {
    const user = await users.findUser(request.params.user_id, abortOnDisconnect(reply))
    if (user === undefined) throw new Problem('not-found', `There is no user ${request.params.user_id}.`)
    return user
  })
}
