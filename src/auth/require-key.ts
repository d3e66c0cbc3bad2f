// The API key check of the Data API's routes: `Authorization: Bearer <key>`, 401 problem otherwise.
import type { FastifyRequest } from 'fastify'
import { Problem } from '../lib/errors.ts'
import type { ApiKeysRepository } from './api-keys.ts'

const keyIds = new WeakMap<FastifyRequest, number>()

/** A preHandler that admits only requests with a live API key. */
export function requireApiKey (keys: ApiKeysRepository) {
  return async (request: FastifyRequest): Promise<void> => {
    const header = request.headers.authorization
    if (header === undefined) throw new Problem('unauthorized', 'This route needs an API key: send `Authorization: Bearer <key>` (an operator creates keys with `data-api keys create`).')
    const match = /^Bearer +(\S+)$/i.exec(header)
    if (match === null) throw new Problem('unauthorized', 'The Authorization header must be `Bearer <key>`.')
    const id = await keys.verify(match[1]!)
    if (id === undefined) throw new Problem('unauthorized', 'The API key is not valid, or it was revoked.')
    keyIds.set(request, id)
  }
}

/** The id of the key the request was admitted with, if any. */
export function apiKeyOf (request: FastifyRequest): number | undefined {
  return keyIds.get(request)
}
