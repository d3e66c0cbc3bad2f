// One catalogue of problem types and one mapping from anything thrown to an RFC 9457
// application/problem+json body. Routes throw `new Problem(...)`; PostgreSQL and Fastify errors are
// translated here; anything unknown becomes a plain 500 that names the request id and nothing else.
import { STATUS_CODES } from 'node:http'
import type { Duplex } from 'node:stream'
import Type, { type Static, type TSchema } from 'typebox'
import Value from 'typebox/value'

export const PROBLEM_TYPES = {
  'bad-request': { status: 400, title: 'Bad request', description: 'The request could not be read, for example malformed JSON.' },
  'validation-error': { status: 400, title: 'Request did not validate', description: 'A parameter or the body is missing or malformed; `errors` lists each failing field.' },
  'invalid-data': { status: 400, title: 'Invalid data', description: 'An uploaded data set could not be read; `line` (CSV, NDJSON) or `item` (JSON array) says where. Nothing of it was kept.' },
  'url-not-allowed': { status: 400, title: 'URL not allowed', description: 'The URL is not http(s), or its host resolves to a loopback, private, link-local or otherwise internal address; `reason` says which.' },
  'unauthorized': { status: 401, title: 'Unauthorized', description: 'The request needs a valid API key.' },
  'forbidden': { status: 403, title: 'Forbidden', description: 'The API key is valid but may not do this: a data set is written only by the key that created it or by an admin key (`data-api keys create --admin`); `detail` says why.' },
  'request-timeout': { status: 408, title: 'Request timeout', description: 'The request headers (`HEADERS_TIMEOUT_MS`) or the whole request (`REQUEST_TIMEOUT_MS`) did not arrive in time; the connection was closed.' },
  'not-found': { status: 404, title: 'Not found', description: 'No route or resource answers to this URL.' },
  'method-not-allowed': { status: 405, title: 'Method not allowed', description: 'The path exists, but not for this method; `Allow` lists the methods it answers to.' },
  'conflict': { status: 409, title: 'Conflict', description: 'The resource already exists or changed under you.' },
  'idempotency-key-reused': { status: 422, title: 'Idempotency key reused', description: 'The Idempotency-Key was first used with a different request; use a new key for a new request.' },
  'payload-too-large': { status: 413, title: 'Payload too large', description: 'The body is larger than this route accepts.' },
  'unsupported-media-type': { status: 415, title: 'Unsupported media type', description: 'The body\'s Content-Type is not one this route accepts.' },
  'headers-too-large': { status: 431, title: 'Request header fields too large', description: 'The request line and headers together exceed 16 KiB (a very long URL counts); the connection was closed.' },
  'rate-limited': { status: 429, title: 'Too many requests', description: 'Slow down; `Retry-After` says when to try again.' },
  'internal-error': { status: 500, title: 'Internal Server Error', description: 'Something failed on our side. Quote `request_id` when reporting it.' },
  'bad-gateway': { status: 502, title: 'Upstream failed', description: 'An upstream service refused or reset the connection, answered with an error status, sent invalid JSON or too large a body; `upstream` names it and `reason` says what happened.' },
  'gateway-timeout': { status: 504, title: 'Upstream timed out', description: 'An upstream service did not connect, answer or finish its body in time; `upstream` names it and `reason` says which deadline passed.' },
  'service-unavailable': { status: 503, title: 'Service unavailable', description: 'The service is overloaded, starting or stopping; retry after `Retry-After` seconds.' },
  'database-busy': { status: 503, title: 'Database busy', description: 'Every database connection stayed taken for `DATABASE_POOL_WAIT_MS`, or what the request needs stayed locked by other work; retry after `Retry-After` seconds.' },
  'database-unavailable': { status: 503, title: 'Database unavailable', description: 'PostgreSQL did not answer; retry after `Retry-After` seconds.' },
  'catalog-unavailable': { status: 503, title: 'Catalog unavailable', description: 'The catalog store behind /products (MongoDB) is not reachable or did not answer within `MONGODB_TIMEOUT_MS`; retry after `Retry-After` seconds.' },
  'timeout': { status: 503, title: 'Deadline exceeded', description: 'The work did not finish within its deadline and was cancelled.' },
} as const satisfies Record<string, { status: number, title: string, description: string }>

export type ProblemCode = keyof typeof PROBLEM_TYPES

export const ProblemSchema = Type.Object({
  type: Type.String({ description: 'URI reference naming the problem type; GET it for a description.' }),
  title: Type.String(),
  status: Type.Integer(),
  detail: Type.String(),
  instance: Type.Optional(Type.String()),
  request_id: Type.Optional(Type.String()),
  errors: Type.Optional(Type.Array(Type.Object({
    in: Type.String({ description: 'body, querystring, params or headers' }),
    pointer: Type.String({ description: 'JSON pointer to the failing field' }),
    detail: Type.String(),
  }))),
}, { $id: 'Problem', additionalProperties: true, description: 'RFC 9457 problem details' })

export type ProblemBody = Static<typeof ProblemSchema> & Record<string, unknown>

export function problemTypeUri (code: ProblemCode): string {
  return `/problems/${code}`
}

/** A failure with a meaning the client can act on. `extra` fields are added to the body. */
export class Problem extends Error {
  readonly code: ProblemCode
  readonly status: number
  readonly extra: Record<string, unknown>
  readonly retryAfterSeconds: number | undefined

  constructor (code: ProblemCode, detail: string, options: { extra?: Record<string, unknown>, retryAfterSeconds?: number, cause?: unknown } = {}) {
    super(detail, { cause: options.cause })
    this.name = 'Problem'
    this.code = code
    this.status = PROBLEM_TYPES[code].status
    this.extra = options.extra ?? {}
    this.retryAfterSeconds = options.retryAfterSeconds ?? (this.status === 503 ? 1 : undefined)
  }
}

// SQLSTATE classes and client error codes that mean "the database is not reachable right now",
// as opposed to "this query is wrong".
const DATABASE_DOWN_CODES = new Set([
  'ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'CONNECT_TIMEOUT', 'CONNECTION_CLOSED',
  'CONNECTION_ENDED', 'CONNECTION_DESTROYED', '57P01', '57P02', '57P03', '53300', '08000', '08003', '08006',
])

interface ErrorLike {
  name?: string
  code?: string
  statusCode?: number
  message?: string
  validation?: AjvError[]
  validationContext?: string
}

/** A JSON schema, as far as messages read it. */
interface SchemaLike {
  type?: string | string[]
  const?: unknown
  enum?: unknown[]
  anyOf?: SchemaLike[]
  oneOf?: SchemaLike[]
  properties?: Record<string, SchemaLike>
  description?: string
  /** A schema's own message for any failure of it (`must be a positive whole number`), instead of one per keyword. */
  errorMessage?: string
}

/** An error of Fastify's Ajv (`verbose`: with the schema holding the keyword); `schemaPath` ends in the keyword. */
interface AjvError { keyword: string, instancePath: string, schemaPath: string, params?: Record<string, unknown>, message?: string, parentSchema?: SchemaLike }

/** One failing keyword: where in the value (`pointer`), the schema holding it and that schema's path (`at`). */
interface Issue { keyword: string, pointer: string, params: Record<string, unknown>, schema: SchemaLike, at: string, fallback: string }

export interface FieldError { in: string, pointer: string, detail: string }

const TYPE_NAMES: Record<string, string> = { integer: 'a whole number', number: 'a number', string: 'text', boolean: 'true or false', object: 'an object', array: 'a list', null: 'null' }
const FORMAT_NAMES: Record<string, string> = { 'email': 'an email address', 'date-time': 'a date and time (ISO 8601)', 'date': 'a date (YYYY-MM-DD)', 'uri': 'a URL' }

const escapePointer = (name: string): string => name.replaceAll('~', '~0').replaceAll('/', '~1')
const quoted = (value: unknown): string => typeof value === 'string' ? value : JSON.stringify(value)
const count = (n: unknown, one: string, many = `${one}s`): string => `${String(n)} ${n === 1 ? one : many}`

/** Each alternative of a schema made of constants (an enum, or anyOf of const): its allowed values, else undefined. */
function allowedValues (schema: SchemaLike): unknown[] | undefined {
  if (schema.const !== undefined) return [schema.const]
  if (schema.enum !== undefined) return schema.enum
  const branches = schema.anyOf ?? schema.oneOf
  if (branches === undefined) return undefined
  const values = branches.map(allowedValues)
  return values.every((value) => value !== undefined) ? values.flat() : undefined
}

function typeOf (schema: SchemaLike): string {
  const values = allowedValues(schema)
  if (values !== undefined) return values.map(quoted).join(' or ')
  const types = [schema.type ?? []].flat()
  return types.length === 0 ? 'of another kind' : types.map((type) => TYPE_NAMES[type] ?? type).join(' or ')
}

/** One keyword's failure in plain words (the pointer names the field). */
function sentence ({ keyword, params, schema, fallback }: Issue): string {
  const { limit } = params
  // A schema's own message speaks for all its keywords, but those naming other fields.
  if (schema.errorMessage !== undefined && keyword !== 'required' && keyword !== 'additionalProperties') return schema.errorMessage
  switch (keyword) {
    case 'type': return `must be ${typeOf(schema)}`
    case 'pattern': return schema.description === undefined ? 'is not in the expected form' : `is not in the expected form: ${schema.description}`
    case 'format': return `must be ${FORMAT_NAMES[String(params.format)] ?? `in the ${String(params.format)} format`}`
    case 'const': case 'enum': return `must be ${allowedValues(schema)!.length === 1 ? '' : 'one of '}${allowedValues(schema)!.map(quoted).join(', ')}`
    case 'minimum': return `must be at least ${String(limit)}`
    case 'maximum': return `must be at most ${String(limit)}`
    case 'exclusiveMinimum': return `must be more than ${String(limit)}`
    case 'exclusiveMaximum': return `must be less than ${String(limit)}`
    case 'multipleOf': return `must be a multiple of ${String(params.multipleOf)}`
    case 'minLength': return limit === 1 ? 'must not be empty' : `must be at least ${count(limit, 'character')} long`
    case 'maxLength': return `must be at most ${count(limit, 'character')} long`
    case 'minItems': return limit === 1 ? 'must not be empty' : `must have at least ${count(limit, 'item')}`
    case 'maxItems': return `must have at most ${count(limit, 'item')}`
    case 'uniqueItems': return 'must not hold the same item twice'
    case 'minProperties': return limit === 1 ? 'must not be empty' : `must have at least ${count(limit, 'field')}`
    case 'maxProperties': return `must have at most ${count(limit, 'field')}`
    case 'required': return 'is required'
    case 'additionalProperties': case 'boolean': {
      const known = Object.keys(schema.properties ?? {})
      return known.length === 0 ? 'is not allowed here' : `is not allowed here (allowed: ${known.join(', ')})`
    }
    default: return fallback
  }
}

/**
 * Ajv's and TypeBox's errors for one value, in plain words, one per field: `anyOf` and `oneOf`
 * become one message (`must be one of csv, ndjson` for alternatives of constants; else the
 * alternative whose type the value has speaks, or the types are listed), not one per alternative.
 */
function describe (issues: Issue[]): Array<{ pointer: string, detail: string }> {
  const within = (at: string, path: string): boolean => at === path || at.startsWith(`${path}/`)
  const alternatives = (choice: Issue): SchemaLike[] => choice.schema.anyOf ?? choice.schema.oneOf ?? []
  const inside = (issue: Issue, choice: Issue): boolean => issue !== choice && within(issue.at, `${choice.at}/${choice.keyword}`)
  const choices = issues.filter((issue) => issue.keyword === 'anyOf' || issue.keyword === 'oneOf')
  // The outermost choices: a choice inside one of them is the business of that one.
  const outer = choices.filter((choice) => !choices.some((other) => inside(choice, other)))
  const described = issues.filter((issue) => !outer.some((choice) => issue === choice || inside(issue, choice))).map((issue) => ({ pointer: issue.pointer, detail: sentence(issue) }))
  for (const choice of outer) {
    if (choice.schema.errorMessage !== undefined || allowedValues(choice.schema) !== undefined) {
      described.push({ pointer: choice.pointer, detail: choice.schema.errorMessage ?? sentence({ ...choice, keyword: 'enum' }) })
      continue
    }
    // The alternative the value failed for more than its type (too long, rather than "not null") says why.
    const failures = alternatives(choice).map((_, index) => issues.filter((issue) => within(issue.at, `${choice.at}/${choice.keyword}/${index}`)))
    const fitting = failures.find((failed) => failed.length > 0 && !failed.every((issue) => issue.keyword === 'type' && issue.pointer === choice.pointer))
    if (fitting !== undefined) described.push(...describe(fitting))
    else if (failures.every((failed) => failed.length === 0)) described.push({ pointer: choice.pointer, detail: 'matches more than one of its allowed forms' })
    else described.push({ pointer: choice.pointer, detail: `must be ${alternatives(choice).map(typeOf).join(' or ')}` })
  }
  const seen = new Set<string>()
  return described.filter(({ pointer, detail }) => {
    const key = `${pointer} ${detail}`
    if (seen.has(key)) return false
    seen.add(key)
    return true
  })
}

function fromAjv (errors: AjvError[]): Issue[] {
  return errors.map((error) => {
    const params = error.params ?? {}
    const property = params.missingProperty ?? params.additionalProperty
    const pointer = typeof property === 'string' ? `${error.instancePath}/${escapePointer(property)}` : error.instancePath
    return { keyword: error.keyword, pointer, params, schema: error.parentSchema ?? {}, at: error.schemaPath.slice(0, error.schemaPath.lastIndexOf('/')), fallback: error.message ?? 'is invalid' }
  })
}

/** The schema a JSON pointer (`#/properties/a/anyOf/0`) names in `root`. */
function schemaAt (root: unknown, path: string): SchemaLike {
  let schema = root
  for (const token of path.split('/').slice(1)) schema = (schema as Record<string, unknown> | undefined)?.[token.replaceAll('~1', '/').replaceAll('~0', '~')]
  return typeof schema === 'object' && schema !== null ? schema : {}
}

function fromTypeBox (schema: TSchema, value: unknown, at: string): Issue[] {
  // TypeBox's schemaPath names the schema itself; required and additionalProperties list every
  // property at once. (A property that additionalProperties: false refuses comes twice, once as `boolean`, "schema is false".)
  return [...Value.Errors(schema, value)].filter((error) => !(error.keyword === 'boolean' && error.schemaPath.endsWith('/additionalProperties'))).flatMap((error) => {
    const { requiredProperties, additionalProperties, ...params } = error.params as Record<string, unknown>
    const base = { keyword: error.keyword, params, schema: schemaAt(schema, error.schemaPath), at: error.schemaPath, fallback: error.message }
    const properties = (requiredProperties ?? additionalProperties) as string[] | undefined
    if (properties !== undefined) return properties.map((property) => ({ ...base, pointer: `${at}${error.instancePath}/${escapePointer(property)}` }))
    return [{ ...base, pointer: `${at}${error.instancePath}` }]
  })
}

/** The field as the client wrote it: a parameter's name, a body's field after `body.` (a query parameter and a field may share a name). */
function fieldName (location: string, pointer: string): string {
  const path = pointer.split('/').slice(1).filter((token) => token !== '').map((token) => token.replaceAll('~1', '/').replaceAll('~0', '~')).join('.')
  if (location === 'body') return path === '' ? 'body' : `body.${path}`
  return path === '' ? (location === 'querystring' ? 'the query string' : location) : path
}

function validationProblem (location: string, issues: Issue[]): Problem {
  const errors: FieldError[] = describe(issues).map(({ pointer, detail }) => ({ in: location, pointer: pointer === '' ? '/' : pointer, detail }))
  const summary = errors.map((error) => `${fieldName(location, error.pointer)} ${error.detail}`).join('; ')
  return new Problem('validation-error', summary, { extra: { errors } })
}

/** A 400 for a value that fails its TypeBox schema (checked in a handler, not by the route's), in the words of the route's own validation. */
export function invalidValue (location: 'body' | 'querystring', schema: TSchema, value: unknown, pointer = ''): Problem {
  return validationProblem(location, fromTypeBox(schema, value, pointer))
}

/** A 400 for one malformed query parameter, shaped as the schema's validation errors are (`errors[{in, pointer, detail}]`). */
export function invalidParameter (detail: string, parameter: string): Problem {
  return new Problem('validation-error', detail, { extra: { errors: [{ in: 'querystring', pointer: `/${parameter}`, detail }] } })
}

/** Translates anything thrown into a Problem; returns undefined for unknown (internal) errors. */
export function asProblem (error: unknown): Problem | undefined {
  if (error instanceof Problem) return error
  const e = (error ?? {}) as ErrorLike
  if (e.validation !== undefined) return validationProblem(e.validationContext ?? 'body', fromAjv(e.validation))
  if (e.name === 'TimeoutError' || e.code === '57014') {
    const detail = /statement timeout/.test(e.message ?? '') ? 'The query ran longer than QUERY_TIMEOUT_MS and was cancelled; narrow it (filters), or ask the operator to raise the limit.' : 'The operation did not finish within its deadline.'
    return new Problem('timeout', detail, { cause: error })
  }
  if (e.code === '23505') return new Problem('conflict', 'A resource with these unique values already exists.', { cause: error })
  // PostgreSQL refuses text with a NUL character (0x00) or one its encoding lacks: a value the
  // client sent, so a 400, not a server error.
  if (e.code === '22021' || e.code === '22P05') return new Problem('bad-request', 'A value in the request contains a character that cannot be stored (such as NUL, \\u0000).', { cause: error })
  // Waited too long for a pool connection (patches/postgres) or for a lock (lock_timeout).
  if (e.code === 'QUEUE_TIMEOUT') return new Problem('database-busy', 'Every database connection is taken; retry shortly.', { cause: error })
  if (e.code === '55P03') return new Problem('database-busy', 'What this request needs is locked by other work right now; retry shortly.', { cause: error })
  if (e.code !== undefined && DATABASE_DOWN_CODES.has(e.code)) {
    return new Problem('database-unavailable', 'The database is not reachable right now.', { cause: error })
  }
  // Fastify's own client errors (bad JSON, unsupported media type, body too large…) carry safe,
  // useful messages and a 4xx status.
  if (typeof e.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500) {
    const code = e.statusCode === 413 ? 'payload-too-large' : e.statusCode === 415 ? 'unsupported-media-type' : 'bad-request'
    return new Problem(code, e.message ?? STATUS_CODES[e.statusCode] ?? 'Bad request', { cause: error })
  }
  return undefined
}

export function problemBody (problem: Problem, requestId: string, instance: string): ProblemBody {
  return {
    type: problemTypeUri(problem.code),
    title: PROBLEM_TYPES[problem.code].title,
    status: problem.status,
    detail: problem.message,
    instance,
    request_id: requestId,
    ...problem.extra,
  }
}

export function internalErrorBody (requestId: string, instance: string): ProblemBody {
  return problemBody(new Problem('internal-error', `An unexpected error occurred. Quote request id ${requestId} when reporting it.`), requestId, instance)
}

const CLIENT_ERRORS: Record<string, [ProblemCode, string]> = {
  ERR_HTTP_REQUEST_TIMEOUT: ['request-timeout', 'The request did not arrive in time.'],
  HPE_HEADER_OVERFLOW: ['headers-too-large', 'The request line and headers exceed 16 KiB.'],
}

/**
 * Node's `clientError`: bytes that never became a request (malformed, too large, too slow), so no
 * route or error handler sees them. Answered as a problem like every other error, then closed.
 */
export function answerClientError (error: NodeJS.ErrnoException, socket: Duplex): void {
  if (error.code === 'ECONNRESET' || socket.destroyed) return
  const [code, detail] = CLIENT_ERRORS[error.code ?? ''] ?? ['bad-request', 'The request could not be parsed as HTTP.']
  const { status, title } = PROBLEM_TYPES[code]
  const body = JSON.stringify({ type: problemTypeUri(code), title, status, detail })
  if (socket.writable) {
    socket.write(`HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Type: application/problem+json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`)
  }
  socket.destroy(error)
}
