// The API key check of the Data API's routes: `Authorization: Bearer <key>`, 401 problem otherwise.
import type { FastifyRequest } from 'fastify'
import { Problem } from '../lib/errors.ts'
import type { ApiKeyHolder, ApiKeysRepository } from './api-keys.ts'

const holders = new WeakMap<FastifyRequest, ApiKeyHolder>()
// The preHandlers requireApiKey made: a route that runs one needs a key, which the OpenAPI document
// says (plugins/openapi.ts) from the route itself, so that it cannot disagree with what is enforced.
const keyChecks = new WeakSet<object>()

/** A preHandler that admits only requests with a live API key. */
export function requireApiKey (keys: ApiKeysRepository) {
  const check = async (request: FastifyRequest): Promise<void> => {
    const header = request.headers.authorization
    if (header === undefined) throw new Problem('unauthorized', 'This route needs an API key: send `Authorization: Bearer <key>` (an operator creates keys with `data-api keys create`).')
    const match = /^Bearer +(\S+)$/i.exec(header)
    if (match === null) throw new Problem('unauthorized', 'The Authorization header must be `Bearer <key>`.')
    const holder = await keys.identify(match[1]!)
    if (holder === undefined) throw new Problem('unauthorized', 'The API key is not valid, or it was revoked.')
    holders.set(request, holder)
  }
  keyChecks.add(check)
  return check
}

/** Whether a route runs the API-key check among its preHandlers. */
export function needsApiKey (route: { preHandler?: unknown }): boolean {
  const hooks: unknown[] = Array.isArray(route.preHandler) ? route.preHandler : [route.preHandler]
  return hooks.some((hook) => typeof hook === 'function' && keyChecks.has(hook))
}

/** The id of the key the request was admitted with, if any. */
export function apiKeyOf (request: FastifyRequest): number | undefined {
  return holders.get(request)?.id
}

/** The key the request was admitted with and whether it is an admin's; undefined without one. */
export function keyHolderOf (request: FastifyRequest): ApiKeyHolder | undefined {
  return holders.get(request)
}
