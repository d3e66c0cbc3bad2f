// Configuration: the environment (and .env) validated once against one schema of flat variables,
// typed, with defaults, then returned nested by area with its lists parsed (`config.upstreams.urls`
// is a URL[]): no module re-parses a variable, and a bad one is refused before anything starts,
// with one line naming it, so a typo never becomes a silent default. Nothing else reads process.env.
import { availableParallelism } from 'node:os'
import Type, { type Static, type TSchema } from 'typebox'
import Value from 'typebox/value'

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const

/** Every variable: its type, default and description (the README documents each; a test checks). */
export const EnvironmentSchema = Type.Object({
  PORT: Type.Integer({ minimum: 0, maximum: 65535, default: 8000, description: 'TCP port the HTTP server listens on (0 picks a free one).' }),
  HOST: Type.String({ minLength: 1, default: '127.0.0.1', description: 'Address the HTTP server binds to; `0.0.0.0` to accept other hosts.' }),
  DATABASE_URL: Type.Optional(Type.String({ pattern: '^postgres(ql)?://', description: 'PostgreSQL connection URL. Unset: an embedded PostgreSQL server is started with data under `DATA_DIR/pg`.' })),
  DATABASE_POOL_MAX: Type.Integer({ minimum: 1, maximum: 1000, default: 10, description: 'Connections in the shared PostgreSQL pool of each process.' }),
  DATABASE_POOL_WAIT_MS: Type.Integer({ minimum: 1, maximum: 600_000, default: 2_000, description: 'How long a request may wait for a connection of the pool while every one is taken; then it is answered 503 `database-busy` with Retry-After.' }),
  QUERY_TIMEOUT_MS: Type.Integer({ minimum: 0, maximum: 86_400_000, default: 10_000, description: 'PostgreSQL statement timeout of the queries requests make (a page of rows, a chunk of an export); past it the query is cancelled and the answer is 503 `timeout`. Jobs (imports, statistics) are not bound by it. 0: none.' }),
  DATA_DIR: Type.String({ minLength: 1, default: './.data', description: 'Directory for local state: the embedded PostgreSQL cluster and other files.' }),
  LOG_LEVEL: Type.Union(LOG_LEVELS.map((level) => Type.Literal(level)), { default: 'info', description: 'pino log level.' }),
  SHUTDOWN_GRACE_MS: Type.Integer({ minimum: 0, maximum: 600_000, default: 10_000, description: 'On SIGTERM/SIGINT, how long in-flight requests may run before their connections are closed.' }),
  SEED_DEMO: Type.Boolean({ default: true, description: 'Load demo data (users, orders, products) into an embedded database on its first start. A DATABASE_URL database is never seeded unasked.' }),
  DASHBOARD_PART_TIMEOUT_MS: Type.Integer({ minimum: 1, maximum: 60_000, default: 2_000, description: 'Deadline of each part of `/dashboard`; a late part is cancelled and reported.' }),
  BLOCKING_THREADS: Type.Integer({ minimum: 1, maximum: 256, default: 16, description: 'Threads for blocking work (`/sync`): waiting threads cost no CPU, so more than cores.' }),
  COMPUTE_THREADS: Type.Integer({ minimum: 1, maximum: 256, default: Math.max(1, availableParallelism()), description: 'Threads for CPU work (`/compute`); default: one per core.' }),
  COMPUTE_QUEUE_MAX: Type.Integer({ minimum: 0, maximum: 100_000, default: 64, description: 'CPU tasks that may wait for a thread; beyond it `/compute` answers 503.' }),
  SMTP_URL: Type.Optional(Type.String({ pattern: '^smtps?://', description: 'Mail server, e.g. `smtp://user:pass@mail.example.com:587`. Unset: each email is written as an .eml file under `DATA_DIR/mail`.' })),
  MAIL_FROM: Type.String({ minLength: 3, default: 'data-api <no-reply@data-api.localhost>', description: 'Sender of the emails the service sends.' }),
  WORKER_CONCURRENCY: Type.Integer({ minimum: 1, maximum: 100, default: 5, description: 'Jobs one worker process runs at once (per task).' }),
  JOB_EXPIRE_SECONDS: Type.Integer({ minimum: 1, maximum: 86_400, default: 60, description: 'A job running longer (its worker died, say) is expired and retried by another worker.' }),
  JOB_RETRY_LIMIT: Type.Integer({ minimum: 0, maximum: 100, default: 8, description: 'Retries of a failing job before it is marked failed.' }),
  JOB_RETRY_DELAY_SECONDS: Type.Integer({ minimum: 1, maximum: 3_600, default: 2, description: 'First retry delay; it doubles with each attempt (exponential backoff, with jitter).' }),
  JOB_RETRY_DELAY_MAX_SECONDS: Type.Integer({ minimum: 1, maximum: 86_400, default: 600, description: 'Longest delay between two retries.' }),
  JOB_SUPERVISE_INTERVAL_SECONDS: Type.Integer({ minimum: 1, maximum: 3_600, default: 10, description: 'How often the queue looks for expired jobs to retry.' }),
  UPSTREAM_URLS: Type.Optional(Type.String({ pattern: '^\\s*https?://[^,\\s]+(\\s*,\\s*https?://[^,\\s]+)*\\s*$', description: 'Comma-separated upstream JSON endpoints: `/external`, `/data` and `/data-timeout` call the first, `/multiple` the first three. Unset: the sample endpoints under `/_sample/` (see SAMPLE_UPSTREAMS).' })),
  SAMPLE_UPSTREAMS: Type.Boolean({ default: true, description: 'When UPSTREAM_URLS is unset, serve three demo upstreams under `/_sample/` and call those. `false`: no upstream, the upstream routes answer 503.' }),
  UPSTREAM_TIMEOUT_MS: Type.Integer({ minimum: 1, maximum: 600_000, default: 10_000, description: 'Overall deadline of an upstream call from `/external`, `/data` and `/multiple`; past it the call is aborted and the answer is 504.' }),
  DATA_TIMEOUT_MS: Type.Integer({ minimum: 1, maximum: 600_000, default: 5_000, description: 'Deadline of `/data-timeout` (the lesson\'s `asyncio.wait_for(..., timeout=5.0)`).' }),
  UPSTREAM_CONNECT_TIMEOUT_MS: Type.Integer({ minimum: 1, maximum: 600_000, default: 2_000, description: 'Time to open a TCP (and TLS) connection to an upstream.' }),
  UPSTREAM_HEADERS_TIMEOUT_MS: Type.Integer({ minimum: 1, maximum: 600_000, default: 10_000, description: 'Time an upstream may take to send its response headers.' }),
  UPSTREAM_BODY_TIMEOUT_MS: Type.Integer({ minimum: 1, maximum: 600_000, default: 10_000, description: 'Longest pause between two chunks of an upstream response body.' }),
  UPSTREAM_MAX_BYTES: Type.Integer({ minimum: 1, maximum: 1_073_741_824, default: 10_485_760, description: 'Largest upstream response body accepted (bytes); a larger one is cut off and answered 502.' }),
  UPSTREAM_CONNECTIONS: Type.Integer({ minimum: 1, maximum: 10_000, default: 64, description: 'Keep-alive connections per upstream origin.' }),
  SSRF_ALLOWLIST: Type.Optional(Type.String({ description: 'Comma-separated CIDR ranges, addresses or host names that user-supplied URLs (data set imports) may reach although they are loopback or private, e.g. `10.1.0.0/16,files.internal`.' })),
  DATASET_SYNC_MAX_BYTES: Type.Integer({ minimum: 0, maximum: 1_099_511_627_776, default: 16_777_216, description: 'Uploads up to this size (by Content-Length) are imported during the request (201); larger ones, and uploads of unknown size, are stored and imported by a job (202).' }),
  DATASET_MAX_BYTES: Type.Integer({ minimum: 1, maximum: 1_099_511_627_776, default: 1_073_741_824, description: 'Largest data set upload or URL import accepted (bytes); larger: 413.' }),
  DATASET_IMPORT_TIMEOUT_SECONDS: Type.Integer({ minimum: 10, maximum: 86_400, default: 3_600, description: 'How long an import or statistics job may run before it is considered dead and retried.' }),
  DATASET_IMPORT_CONCURRENCY: Type.Integer({ minimum: 1, maximum: 100, default: 2, description: 'Data set imports one worker process runs at once (each holds two database connections while it runs).' }),
  DATASET_PAGE_MAX_BYTES: Type.Integer({ minimum: 1_024, maximum: 1_073_741_824, default: 8_388_608, description: 'A page of rows stops early, with a `next_cursor`, once its values reach this many bytes (a page always holds at least one row), so that memory per request stays bounded when values are large.' }),
  FACET_TIMEOUT_MS: Type.Integer({ minimum: 1, maximum: 600_000, default: 3_000, description: 'Deadline of each facet of a rows page (`_facet=`), its wait for a connection included; a late facet is cancelled in PostgreSQL and answered `{"timed_out": true}` beside the rows and the other facets.' }),
  COUNT_TIMEOUT_MS: Type.Integer({ minimum: 1, maximum: 600_000, default: 1_000, description: 'How long the exact count of a filtered rows page may take by default (`_count` not given); past it the count is cancelled in PostgreSQL and the planner\'s estimate is sent, with `total_is_estimate: true`.' }),
  DATASET_EVENTS_MAX_STREAMS: Type.Integer({ minimum: 1, maximum: 1_000_000, default: 1_000, description: 'Event streams (`GET /datasets/{id}/events`) one process keeps open at once; one more is answered 503 with Retry-After. A stream holds no database connection while it waits.' }),
  DATASET_FETCH_TIMEOUT_MS: Type.Integer({ minimum: 100, maximum: 600_000, default: 30_000, description: 'Connect, headers and between-chunks timeout of a URL import.' }),
  SQL_QUERIES: Type.Boolean({ default: false, description: 'Serve `POST /datasets/sql`: read-only SQL over the data sets\' views, run by a role of its own that can read only those views. `false`: the route answers 404.' }),
  SQL_QUERIES_MAX_ROWS: Type.Integer({ minimum: 1, maximum: 10_000_000, default: 10_000, description: 'Rows a SQL query returns at most; beyond it the result ends with `"truncated": "max_rows"`.' }),
  SQL_QUERIES_MAX_BYTES: Type.Integer({ minimum: 1_024, maximum: 1_073_741_824, default: 10_485_760, description: 'Bytes of rows (as JSON) a SQL query returns at most; the row that would pass it is left out and the result ends with `"truncated": "max_bytes"`.' }),
  SQL_QUERIES_POOL_MAX: Type.Integer({ minimum: 1, maximum: 100, default: 2, description: 'Connections of each process\'s pool for SQL queries (the reader role\'s own pool, beside DATABASE_POOL_MAX).' }),
  SQL_QUERIES_DATABASE_URL: Type.Optional(Type.String({ pattern: '^postgres(ql)?://', description: 'The reader role\'s own URL, for a DATABASE_URL user that may not create roles: a LOGIN role made by the operator with no privileges (the service grants it what it needs on the views). Unset: the service creates and maintains the role itself (the database user needs CREATEROLE).' })),
  REQUIRE_KEY_FOR_READS: Type.Boolean({ default: false, description: 'Require an API key for reads of the Data API too (writes always need one).' }),
  CORS_ORIGINS: Type.Optional(Type.String({ pattern: '^\\s*(\\*|https?://[^,\\s/]+)(\\s*,\\s*https?://[^,\\s/]+)*\\s*$', description: 'Browser origins allowed to call the API cross-origin, comma-separated (`https://app.example.com`), or `*`. Unset: no CORS headers, browsers allow same-origin calls only.' })),
  EVENT_LOOP_BLOCK_WARN_MS: Type.Integer({ minimum: 10, maximum: 60_000, default: 200, description: 'When the event loop is blocked longer than this, a warning names the routes and request ids that were in flight.' }),
  HEADERS_TIMEOUT_MS: Type.Integer({ minimum: 100, maximum: 600_000, default: 10_000, description: 'A client must send its request headers within this time, or the connection is closed with 408 (slow-header clients hold sockets).' }),
  REQUEST_TIMEOUT_MS: Type.Integer({ minimum: 100, maximum: 86_400_000, default: 300_000, description: 'A client must send its whole request, body included, within this time (408 otherwise). Raise it for large uploads over slow links, or import by URL.' }),
  KEEP_ALIVE_TIMEOUT_MS: Type.Integer({ minimum: 100, maximum: 600_000, default: 72_000, description: 'An idle keep-alive connection is closed after this. Longer than the 60 s idle timeout of common load balancers, so they close first.' }),
  CONCURRENCY_LIMIT: Type.Integer({ minimum: 0, maximum: 1_000_000, default: 1_024, description: 'Requests one process handles at once; beyond it new requests get 503 with Retry-After at once instead of queueing for the database pool (uvicorn\'s `--limit-concurrency`). 0: no limit.' }),
  OVERLOAD_EVENT_LOOP_DELAY_MS: Type.Integer({ minimum: 0, maximum: 60_000, default: 100, description: 'When the mean event-loop delay over the last second exceeds this, new requests get 503 with Retry-After. 0: off.' }),
  OVERLOAD_HEAP_USED_PERCENT: Type.Integer({ minimum: 0, maximum: 100, default: 90, description: 'When the V8 heap in use exceeds this share of its limit, new requests get 503 with Retry-After. 0: off.' }),
  RATE_LIMIT_WRITES: Type.Integer({ minimum: 0, maximum: 1_000_000, default: 300, description: 'Writes (POST, DELETE) each API key (or, without a key, each client address) may make per minute; beyond it 429 with Retry-After. 0: no limit. Counted per process.' }),
  RATE_LIMIT_COMPUTE: Type.Integer({ minimum: 0, maximum: 1_000_000, default: 60, description: '`/compute` requests each client address may make per minute; beyond it 429. 0: no limit. Counted per process.' }),
  TRUST_PROXY: Type.Optional(Type.String({ minLength: 1, description: 'Comma-separated addresses or CIDR ranges of reverse proxies whose `X-Forwarded-For` is believed, e.g. `10.0.0.0/8`: client addresses (rate limits, logs) are then read from it. Unset: the TCP peer is the client.' })),
  READY_TIMEOUT_MS: Type.Integer({ minimum: 10, maximum: 60_000, default: 1_000, description: '`/readyz` answers 503 when the database or the catalog store does not answer within this time.' }),
  MONGODB_URL: Type.Optional(Type.String({ pattern: '^mongodb(\\+srv)?://', description: 'MongoDB connection URL (`mongodb://host:27017/data_api`): the catalog store behind `/products`. The database is the one in the path (default `data_api`). Unset: products live in PostgreSQL.' })),
  MONGODB_TIMEOUT_MS: Type.Integer({ minimum: 10, maximum: 60_000, default: 2_000, description: 'Server selection, connect and per-operation deadline of MongoDB calls; past it `/products` answers 503.' }),
})

type Environment = Static<typeof EnvironmentSchema>

export class ConfigError extends Error {
  readonly variable: string
  constructor (variable: string, problem: string) {
    super(`${variable}: ${problem}`)
    this.name = 'ConfigError'
    this.variable = variable
  }
}

export type LogLevel = Environment['LOG_LEVEL']

export interface Config {
  logLevel: LogLevel
  dataDir: string
  shutdownGraceMs: number
  /** Demo data on an embedded database's first start. */
  seedDemo: boolean
  readyTimeoutMs: number
  http: {
    port: number
    host: string
    /** Addresses or CIDR ranges of the proxies whose X-Forwarded-For is believed; none: the TCP peer is the client. */
    trustProxy: string[]
    headersTimeoutMs: number
    requestTimeoutMs: number
    keepAliveTimeoutMs: number
    /** Browser origins allowed cross-origin (['*'] for any); empty: no CORS. */
    corsOrigins: string[]
  }
  database: { url?: string, poolMax: number, poolWaitMs: number, queryTimeoutMs: number }
  threads: { blocking: number, compute: number, computeQueueMax: number }
  mail: { smtpUrl?: string, from: string }
  jobs: { workerConcurrency: number, expireSeconds: number, retryLimit: number, retryDelaySeconds: number, retryDelayMaxSeconds: number, superviseIntervalSeconds: number }
  upstreams: {
    /** The upstreams the upstream routes call; undefined: none given (the sample upstreams, if `sample`). */
    urls?: URL[]
    sample: boolean
    timeoutMs: number
    dataTimeoutMs: number
    connectTimeoutMs: number
    headersTimeoutMs: number
    bodyTimeoutMs: number
    maxBytes: number
    connections: number
  }
  /** What user-supplied URLs may reach although loopback or private: CIDR ranges, addresses, host names. */
  ssrfAllowlist: string[]
  datasets: {
    syncMaxBytes: number
    maxBytes: number
    importTimeoutSeconds: number
    importConcurrency: number
    fetchTimeoutMs: number
    pageMaxBytes: number
    /** Deadline of each facet of a rows page, and of its default exact count. */
    facetTimeoutMs: number
    countTimeoutMs: number
    /** GET /datasets/{id}/events streams open at once per process. */
    eventStreams: number
    requireKeyForReads: boolean
    /** POST /datasets/sql: on or off, its caps, its pool, and the reader role's URL when the operator made the role. */
    sqlQueries: { enabled: boolean, maxRows: number, maxBytes: number, poolMax: number, readerUrl?: string }
  }
  overload: { concurrencyLimit: number, eventLoopDelayMs: number, heapUsedPercent: number, eventLoopBlockWarnMs: number }
  rateLimits: { writesPerMinute: number, computePerMinute: number }
  dashboard: { partTimeoutMs: number }
  mongodb: { url?: string, timeoutMs: number }
}

/** Parses and validates configuration; throws ConfigError naming the first bad variable. */
export function loadConfig (env: Record<string, string | undefined> = process.env): Config {
  const values: Record<string, unknown> = {}
  for (const [name, schema] of Object.entries(EnvironmentSchema.properties) as Array<[string, TSchema]>) {
    const raw = env[name]
    if (raw === undefined || raw === '') continue
    values[name] = coerce(name, raw, schema)
    const error = Value.Errors(schema, values[name])[0]
    if (error !== undefined) throw new ConfigError(name, `${describeError(error.message, schema)} (got ${JSON.stringify(raw)})`)
  }
  const e = Value.Default(EnvironmentSchema, values) as Environment
  // Node refuses to start a server whose headers deadline outlasts its whole-request deadline.
  if (e.HEADERS_TIMEOUT_MS > e.REQUEST_TIMEOUT_MS) throw new ConfigError('HEADERS_TIMEOUT_MS', `must not exceed REQUEST_TIMEOUT_MS (${e.REQUEST_TIMEOUT_MS})`)
  return {
    logLevel: e.LOG_LEVEL,
    dataDir: e.DATA_DIR,
    shutdownGraceMs: e.SHUTDOWN_GRACE_MS,
    seedDemo: e.SEED_DEMO,
    readyTimeoutMs: e.READY_TIMEOUT_MS,
    http: {
      port: e.PORT,
      host: e.HOST,
      trustProxy: list(e.TRUST_PROXY),
      headersTimeoutMs: e.HEADERS_TIMEOUT_MS,
      requestTimeoutMs: e.REQUEST_TIMEOUT_MS,
      keepAliveTimeoutMs: e.KEEP_ALIVE_TIMEOUT_MS,
      corsOrigins: list(e.CORS_ORIGINS),
    },
    database: { url: e.DATABASE_URL, poolMax: e.DATABASE_POOL_MAX, poolWaitMs: e.DATABASE_POOL_WAIT_MS, queryTimeoutMs: e.QUERY_TIMEOUT_MS },
    threads: { blocking: e.BLOCKING_THREADS, compute: e.COMPUTE_THREADS, computeQueueMax: e.COMPUTE_QUEUE_MAX },
    mail: { smtpUrl: e.SMTP_URL, from: e.MAIL_FROM },
    jobs: {
      workerConcurrency: e.WORKER_CONCURRENCY,
      expireSeconds: e.JOB_EXPIRE_SECONDS,
      retryLimit: e.JOB_RETRY_LIMIT,
      retryDelaySeconds: e.JOB_RETRY_DELAY_SECONDS,
      retryDelayMaxSeconds: e.JOB_RETRY_DELAY_MAX_SECONDS,
      superviseIntervalSeconds: e.JOB_SUPERVISE_INTERVAL_SECONDS,
    },
    upstreams: {
      urls: e.UPSTREAM_URLS === undefined ? undefined : list(e.UPSTREAM_URLS).map((entry) => httpUrl('UPSTREAM_URLS', entry)),
      sample: e.SAMPLE_UPSTREAMS,
      timeoutMs: e.UPSTREAM_TIMEOUT_MS,
      dataTimeoutMs: e.DATA_TIMEOUT_MS,
      connectTimeoutMs: e.UPSTREAM_CONNECT_TIMEOUT_MS,
      headersTimeoutMs: e.UPSTREAM_HEADERS_TIMEOUT_MS,
      bodyTimeoutMs: e.UPSTREAM_BODY_TIMEOUT_MS,
      maxBytes: e.UPSTREAM_MAX_BYTES,
      connections: e.UPSTREAM_CONNECTIONS,
    },
    ssrfAllowlist: list(e.SSRF_ALLOWLIST),
    datasets: {
      syncMaxBytes: e.DATASET_SYNC_MAX_BYTES,
      maxBytes: e.DATASET_MAX_BYTES,
      importTimeoutSeconds: e.DATASET_IMPORT_TIMEOUT_SECONDS,
      importConcurrency: e.DATASET_IMPORT_CONCURRENCY,
      fetchTimeoutMs: e.DATASET_FETCH_TIMEOUT_MS,
      pageMaxBytes: e.DATASET_PAGE_MAX_BYTES,
      facetTimeoutMs: e.FACET_TIMEOUT_MS,
      countTimeoutMs: e.COUNT_TIMEOUT_MS,
      eventStreams: e.DATASET_EVENTS_MAX_STREAMS,
      requireKeyForReads: e.REQUIRE_KEY_FOR_READS,
      sqlQueries: { enabled: e.SQL_QUERIES, maxRows: e.SQL_QUERIES_MAX_ROWS, maxBytes: e.SQL_QUERIES_MAX_BYTES, poolMax: e.SQL_QUERIES_POOL_MAX, readerUrl: e.SQL_QUERIES_DATABASE_URL },
    },
    overload: {
      concurrencyLimit: e.CONCURRENCY_LIMIT,
      eventLoopDelayMs: e.OVERLOAD_EVENT_LOOP_DELAY_MS,
      heapUsedPercent: e.OVERLOAD_HEAP_USED_PERCENT,
      eventLoopBlockWarnMs: e.EVENT_LOOP_BLOCK_WARN_MS,
    },
    rateLimits: { writesPerMinute: e.RATE_LIMIT_WRITES, computePerMinute: e.RATE_LIMIT_COMPUTE },
    dashboard: { partTimeoutMs: e.DASHBOARD_PART_TIMEOUT_MS },
    mongodb: { url: e.MONGODB_URL, timeoutMs: e.MONGODB_TIMEOUT_MS },
  }
}

/** A comma-separated list: trimmed entries, none empty. */
function list (text: string | undefined): string[] {
  return (text ?? '').split(',').map((entry) => entry.trim()).filter((entry) => entry !== '')
}

function httpUrl (variable: string, entry: string): URL {
  let url: URL
  try {
    url = new URL(entry)
  } catch {
    throw new ConfigError(variable, `${JSON.stringify(entry)} is not an absolute URL`)
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new ConfigError(variable, `${JSON.stringify(entry)} is not http(s)`)
  return url
}

/** Strict string → value conversion: "12.5" is not an integer and "yes " is not a boolean. */
function coerce (name: string, raw: string, schema: TSchema): unknown {
  const type = (schema as { type?: string }).type
  if (type === 'integer') {
    if (!/^-?\d+$/.test(raw.trim())) throw new ConfigError(name, `must be an integer (got ${JSON.stringify(raw)})`)
    return Number(raw)
  }
  if (type === 'boolean') {
    const normalised = raw.trim().toLowerCase()
    if (['true', '1', 'yes', 'on'].includes(normalised)) return true
    if (['false', '0', 'no', 'off'].includes(normalised)) return false
    throw new ConfigError(name, `must be true or false (got ${JSON.stringify(raw)})`)
  }
  return raw
}

function describeError (message: string, schema: TSchema): string {
  const choices = (schema as { anyOf?: Array<{ const?: unknown }> }).anyOf?.map((option) => option.const)
  if (choices !== undefined) return `must be one of ${choices.join(', ')}`
  return message
}
