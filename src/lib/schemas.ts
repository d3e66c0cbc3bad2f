// Schema pieces shared by routes.
import Type from 'typebox'
import type { ProblemBody } from './errors.ts'

const ProblemRef = Type.Unsafe<ProblemBody>(Type.Ref('Problem'))

/** Response schemas for the given error statuses, all RFC 9457 problems (documented in OpenAPI). */
export function problemResponses<S extends number> (...statuses: S[]): Record<S, typeof ProblemRef> {
  return Object.fromEntries(statuses.map((status) => [status, ProblemRef])) as Record<S, typeof ProblemRef>
}

/** A timestamp: a Date in handlers, an ISO 8601 string on the wire (the serializer converts it). */
export const DateTime = Type.Unsafe<Date>(Type.String({ format: 'date-time' }))
