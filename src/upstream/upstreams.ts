// The upstream JSON services behind /external, /data and /multiple: the lesson's httpx calls,
// without what the lesson leaves out. One undici keep-alive pool per origin, created at start and
// closed at shutdown (not a client per request); connect, headers and body timeouts plus an
// overall deadline; a response size cap; and every failure mapped to a 502/504 problem that
// names the upstream and a fixed reason, never an internal message.
import type { AddressInfo } from 'node:net'
import { Pool } from 'undici'
import type { Config } from '../config.ts'
import { Problem } from '../lib/errors.ts'

/** Demo upstreams served by this service itself (routes/sample-upstreams) when UPSTREAM_URLS is unset. */
export const SAMPLE_UPSTREAM_PATHS = ['/_sample/inventory', '/_sample/pricing', '/_sample/reviews'] as const

export interface Upstream {
  /** `upstream-1`, `upstream-2`…: the position in UPSTREAM_URLS, safe to show to clients. */
  readonly name: string
  /** An absolute URL, or a path on this service (the samples) until the server listens. */
  readonly target: string
}

export interface FetchOptions {
  /** The caller's signal (client gone, sibling failed): aborts the upstream request. */
  signal?: AbortSignal
  /** Overall deadline for connect, headers and body together. */
  timeoutMs: number
  requestId?: string
}

export interface Upstreams {
  readonly list: readonly Upstream[]
  fetchJson: (upstream: Upstream, options: FetchOptions) => Promise<unknown>
  /** Where this server listens: the origin of the sample upstreams. */
  bindSelf: (address: AddressInfo) => void
  /** Connection counts of each origin's pool (for /metrics). */
  stats: () => Array<{ origin: string, connected: number, free: number, pending: number, running: number }>
  close: () => Promise<void>
}

// undici error codes → what the client is told. Timeouts are 504, everything else 502.
const TIMEOUTS: Record<string, string> = {
  UND_ERR_CONNECT_TIMEOUT: 'connect-timeout',
  UND_ERR_HEADERS_TIMEOUT: 'headers-timeout',
  UND_ERR_BODY_TIMEOUT: 'body-timeout',
}
const FAILURES: Record<string, string> = {
  ECONNREFUSED: 'connection-refused',
  ECONNRESET: 'connection-reset',
  EPIPE: 'connection-reset',
  UND_ERR_SOCKET: 'connection-reset',
  UND_ERR_CLOSED: 'connection-reset',
  ENOTFOUND: 'dns-failure',
  EAI_AGAIN: 'dns-failure',
  EHOSTUNREACH: 'unreachable',
  ENETUNREACH: 'unreachable',
  UND_ERR_RES_EXCEEDED_MAX_SIZE: 'too-large',
}

export function createUpstreams (config: Config['upstreams']): Upstreams {
  const list = targetsOf(config).map((target, index) => ({ name: `upstream-${index + 1}`, target }))
  const pools = new Map<string, Pool>()
  let selfOrigin: string | undefined

  const poolFor = (origin: string): Pool => {
    let pool = pools.get(origin)
    if (pool === undefined) {
      pool = new Pool(origin, {
        connections: config.connections,
        connectTimeout: config.connectTimeoutMs,
        headersTimeout: config.headersTimeoutMs,
        bodyTimeout: config.bodyTimeoutMs,
        maxResponseSize: config.maxBytes,
      })
      pools.set(origin, pool)
    }
    return pool
  }
  for (const { target } of list) if (!target.startsWith('/')) poolFor(new URL(target).origin)

  const resolve = (upstream: Upstream): URL => {
    if (!upstream.target.startsWith('/')) return new URL(upstream.target)
    if (selfOrigin === undefined) throw new Problem('service-unavailable', 'The sample upstreams are served once the server listens.')
    return new URL(upstream.target, selfOrigin)
  }

  return {
    list,

    bindSelf ({ address, family, port }) {
      // A server bound to every interface is reached on loopback.
      const host = address === '0.0.0.0' ? '127.0.0.1' : address === '::' ? '::1' : address
      selfOrigin = family === 'IPv6' || host.includes(':') ? `http://[${host}]:${port}` : `http://${host}:${port}`
    },

    async fetchJson (upstream, { signal, timeoutMs, requestId }) {
      const url = resolve(upstream)
      const deadline = AbortSignal.timeout(timeoutMs)
      const combined = signal === undefined ? deadline : AbortSignal.any([signal, deadline])
      const fail = (reason: string, extra: Record<string, unknown> = {}, cause?: unknown): Problem =>
        new Problem(reason.endsWith('timeout') || reason === 'deadline' ? 'gateway-timeout' : 'bad-gateway',
          `${upstream.name} failed: ${reason}.`, { extra: { upstream: upstream.name, reason, ...extra }, cause })
      try {
        const response = await poolFor(url.origin).request({
          path: `${url.pathname}${url.search}`,
          method: 'GET',
          headers: { accept: 'application/json', ...(requestId !== undefined && { 'x-request-id': requestId }) },
          signal: combined,
        })
        if (response.statusCode < 200 || response.statusCode >= 300) {
          await response.body.dump()
          throw fail('bad-status', { upstream_status: response.statusCode })
        }
        const text = await response.body.text()
        try {
          return JSON.parse(text) as unknown
        } catch (error) {
          throw fail('invalid-json', {}, error)
        }
      } catch (error) {
        if (error instanceof Problem) throw error
        // The caller's reason wins: the client left or a sibling failed; nothing to report here.
        if (signal?.aborted === true) throw signal.reason
        if (deadline.aborted) throw fail('deadline', { timeout_ms: timeoutMs }, error)
        const code = (error as { code?: string }).code ?? ''
        throw fail(TIMEOUTS[code] ?? FAILURES[code] ?? 'failed', {}, error)
      }
    },

    stats () {
      return [...pools].map(([origin, { stats }]) => ({ origin, connected: stats.connected, free: stats.free, pending: stats.pending, running: stats.running }))
    },

    async close () {
      await Promise.all([...pools.values()].map(async (pool) => { await pool.close() }))
    },
  }
}

/** The upstreams called: those given (validated at start, config.ts), else the sample paths of this service. */
function targetsOf ({ urls, sample }: Config['upstreams']): string[] {
  if (urls === undefined) return sample ? [...SAMPLE_UPSTREAM_PATHS] : []
  return urls.map((url) => url.href)
}
