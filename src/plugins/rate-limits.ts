// Rate limits (@fastify/rate-limit): every write (POST, PUT, PATCH, DELETE) and /compute, counted per
// API key when the request carries a valid one, else per client address. Answers carry the IETF
// draft's RateLimit-Limit / -Remaining / -Reset headers; past the limit a 429 `rate-limited` problem
// with Retry-After. The check runs as the route's last preHandler, after the API-key check, so a
// key's requests are counted against the key however many addresses they come from.
// Counts live in this process: with `serve --processes N`, a client may get up to N times the limit.
import rateLimit, { normalizeIP } from '@fastify/rate-limit'
import fp from 'fastify-plugin'
import { apiKeyOf } from '../auth/require-key.ts'
import { Problem } from '../lib/errors.ts'
import { declareProblemResponse } from '../lib/schemas.ts'

export interface RateLimitOptions {
  /** Writes per minute per key or address; 0: unlimited. */
  writesPerMinute: number
  /** /compute requests per minute per address; 0: unlimited. */
  computePerMinute: number
}

const WRITE_METHODS = new Set(['POST', 'PUT', 'PATCH', 'DELETE'])

export const rateLimits = fp<RateLimitOptions>(async (app, { writesPerMinute, computePerMinute }) => {
  // Runs before @fastify/rate-limit's own onRoute hook (registered below), which reads this config.
  app.addHook('onRoute', (route) => {
    const methods = [route.method].flat()
    const perMinute = route.url === '/compute' ? computePerMinute : methods.some((method) => WRITE_METHODS.has(method)) ? writesPerMinute : 0
    if (perMinute === 0) return
    route.config = { ...route.config, rateLimit: { max: perMinute, timeWindow: 60_000 } }
    declareProblemResponse(route, 429)
  })
  await app.register(rateLimit, {
    global: false,
    hook: 'preHandler',
    enableDraftSpec: true,
    keyGenerator: (request) => {
      const keyId = apiKeyOf(request)
      // An IPv6 client is its /64: one host can pick any address of its subnet.
      return keyId === undefined ? `address ${normalizeIP(request.ip)}` : `key ${keyId}`
    },
    errorResponseBuilder: (request, context) => new Problem('rate-limited',
      `At most ${context.max} requests per minute to this route from one ${apiKeyOf(request) === undefined ? 'client address' : 'API key'}; retry in ${context.after}.`,
      { retryAfterSeconds: Math.max(1, Math.ceil(context.ttl / 1000)) }),
  })
})
