// POST /register: the lesson's BackgroundTasks made durable. The user row and its
// send_welcome_email job are written in one transaction, and the 201 goes out before any email:
// the worker sends it, retrying until the mail server takes it.
import { createHash } from 'node:crypto'
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import Type from 'typebox'
import { Problem } from '../../lib/errors.ts'
import { problemResponses } from '../../lib/schemas.ts'
import type { RegistrationsRepository } from './repository.ts'
import { Registered } from './schemas.ts'

const Email = Type.String({ format: 'email', minLength: 3, maxLength: 254, description: 'The address to register' })

export const registrationRoutes: FastifyPluginAsyncTypebox<{ registrations: RegistrationsRepository }> = async (app, { registrations }) => {
  app.post('/register', {
    schema: {
      tags: ['lesson'],
      summary: 'Register a user; the welcome email is sent in the background by a durable job',
      description: 'Give `email` as a query parameter (the lesson\'s form) or in a JSON body `{email, name?}`. ' +
        'With an `Idempotency-Key` header, repeating the request returns the first response and creates nothing more.',
      querystring: Type.Object({ email: Type.Optional(Email) }),
      'x-body-optional': true,
      body: Type.Object({ email: Type.Optional(Email), name: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })) }, { additionalProperties: false }),
      headers: Type.Object({ 'idempotency-key': Type.Optional(Type.String({ minLength: 1, maxLength: 200 })) }),
      response: { 201: Registered, ...problemResponses(400, 409, 422, 503) },
    },
    // The lesson's form has no body at all; validate it as an empty object then.
    preValidation: async (request) => { request.body ??= {} },
  }, async (request, reply) => {
    const { email: queryEmail } = request.query
    const { email: bodyEmail, name: bodyName } = request.body
    const email = bodyEmail ?? queryEmail
    if (email === undefined) throw validationProblem('/email', 'email is required, as a query parameter or in the JSON body')
    if (bodyEmail !== undefined && queryEmail !== undefined && queryEmail !== bodyEmail) {
      throw validationProblem('/email', 'the query and the body give different email addresses')
    }
    const name = bodyName ?? nameFromEmail(email)
    const idempotencyKey = request.headers['idempotency-key']
    const requestHash = createHash('sha256').update(JSON.stringify({ email, name })).digest('hex')

    const outcome = await registrations.register({ email, name, idempotency: idempotencyKey === undefined ? undefined : { key: idempotencyKey, requestHash } })
    if (outcome.replayed) reply.header('idempotent-replayed', 'true')
    return await reply.code(201).header('location', `/users/${outcome.body.user_id}`).send(outcome.body)
  })
}

function validationProblem (pointer: string, detail: string): Problem {
  return new Problem('validation-error', detail, { extra: { errors: [{ in: 'body', pointer, detail }] } })
}

/** "ada.lovelace@example.com" → "Ada Lovelace": a friendly default for the greeting. */
function nameFromEmail (email: string): string {
  const local = email.split('@')[0] ?? email
  return local.split(/[._+-]+/).filter(Boolean).map((part) => part[0]!.toUpperCase() + part.slice(1)).join(' ') || email
}
