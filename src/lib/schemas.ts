// Schema pieces shared by routes.
import Type from 'typebox'
import type { ProblemBody } from './errors.ts'

const ProblemRef = Type.Unsafe<ProblemBody>(Type.Ref('Problem'))

/** Response schemas for the given error statuses, all RFC 9457 problems (documented in OpenAPI). */
export function problemResponses<S extends number> (...statuses: S[]): Record<S, typeof ProblemRef> {
  return Object.fromEntries(statuses.map((status) => [status, ProblemRef])) as Record<S, typeof ProblemRef>
}

/**
 * A numeric id (a user, a data set): a positive integer that JavaScript holds exactly. Its
 * `errorMessage` is what a refusal says (lib/errors.ts), instead of a type and two limits.
 */
export function PositiveId (options: { description: string, default?: number }) {
  return Type.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER, errorMessage: 'must be a positive whole number', ...options })
}

/** A timestamp: a Date in handlers, an ISO 8601 string on the wire (the serializer converts it). */
export const DateTime = Type.Unsafe<Date>(Type.String({ format: 'date-time' }))

/**
 * Adds a problem response for `status` to a route's schema, when it declares responses, from an
 * onRoute hook: for answers a plugin gives on the route's behalf (429 from rate limits, 503 from
 * load shedding), so that the OpenAPI document lists them.
 */
export function declareProblemResponse (route: { schema?: { response?: unknown } }, status: number): void {
  const responses = route.schema?.response as Record<string, unknown> | undefined
  // A copy: routes may share one responses object.
  if (responses !== undefined && responses[status] === undefined) route.schema!.response = { ...responses, [status]: ProblemRef }
}
