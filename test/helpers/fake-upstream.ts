// A real HTTP upstream on 127.0.0.1 with fault injection. Each request is answered by `respond`
// (swap it per test) or by a behaviour picked from the path, e.g. `/delay/300`, so that several
// upstreams with different behaviours can share one server. It counts connections and requests
// and records every request the client abandoned before its response was complete.
import http from 'node:http'
import type { AddressInfo, Socket } from 'node:net'

export type Behaviour = (request: http.IncomingMessage, response: http.ServerResponse) => void | Promise<void>

export interface FakeUpstream {
  readonly origin: string
  /** Connections accepted and requests received since start (or the last reset()). */
  readonly stats: { connections: number, requests: number, aborted: Array<{ path: string, at: number }>, requestIds: string[] }
  reset: () => void
  /** Resolves when `count` requests have been abandoned by the client, with their times. */
  waitForAborts: (count: number, timeoutMs?: number) => Promise<Array<{ path: string, at: number }>>
  close: () => Promise<void>
}

// Unref'd: a behaviour still sleeping when the test ends must not keep the test process alive.
const sleep = async (ms: number): Promise<void> => { await new Promise((resolve) => setTimeout(resolve, ms).unref()) }

const sendJson = (response: http.ServerResponse, body: unknown, status = 200): void => {
  const text = JSON.stringify(body)
  response.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) })
  response.end(text)
}

/** Path-selected behaviours: `/<name>/<ms or bytes>`. */
export const behaviours: Record<string, (argument: number) => Behaviour> = {
  // A JSON body after `ms` (0 = at once).
  json: (ms) => async (request, response) => {
    await sleep(ms)
    if (!response.destroyed) sendJson(response, { path: request.url, ok: true })
  },
  // Headers only after `ms`.
  'delay-headers': (ms) => async (_request, response) => {
    await sleep(ms)
    if (!response.destroyed) sendJson(response, { late: true })
  },
  // Headers and half a body at once, the rest after `ms`.
  'delay-body': (ms) => async (_request, response) => {
    response.writeHead(200, { 'content-type': 'application/json', 'content-length': 11 })
    response.write('{"half":')
    await sleep(ms)
    if (!response.destroyed) response.end('1}\n')
  },
  status: (code) => (_request, response) => { sendJson(response, { error: 'internal detail: stack at db.js:12' }, code) },
  // TCP RST in the middle of the exchange, before any response byte.
  reset: () => (request) => { request.socket.resetAndDestroy() },
  'invalid-json': () => (_request, response) => {
    response.writeHead(200, { 'content-type': 'application/json' })
    response.end('{"not json')
  },
  // A valid JSON body of about `bytes` bytes, streamed without Content-Length.
  big: (bytes) => async (_request, response) => {
    response.writeHead(200, { 'content-type': 'application/json' })
    response.write('["')
    for (let sent = 0; sent < bytes && !response.destroyed; sent += 1024) {
      if (!response.write('x'.repeat(1024))) await new Promise((resolve) => response.once('drain', resolve))
    }
    response.end('"]')
  },
}

export async function startFakeUpstream (): Promise<FakeUpstream> {
  const stats: FakeUpstream['stats'] = { connections: 0, requests: 0, aborted: [], requestIds: [] }
  const sockets = new Set<Socket>()
  const abortWaiters = new Set<() => void>()

  const server = http.createServer((request, response) => {
    stats.requests++
    const requestId = request.headers['x-request-id']
    if (typeof requestId === 'string') stats.requestIds.push(requestId)
    response.on('close', () => {
      if (!response.writableFinished) {
        stats.aborted.push({ path: request.url ?? '', at: performance.now() })
        for (const wake of abortWaiters) wake()
      }
    })
    const [, name = '', argument = '0'] = (request.url ?? '').split('?')[0]!.split('/')
    const behaviour = behaviours[name]
    if (behaviour === undefined) {
      sendJson(response, { error: 'unknown fake behaviour' }, 404)
      return
    }
    Promise.resolve(behaviour(Number(argument))(request, response)).catch(() => { response.destroy() })
  })
  server.on('connection', (socket) => {
    stats.connections++
    sockets.add(socket)
    socket.once('close', () => sockets.delete(socket))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo

  return {
    origin: `http://127.0.0.1:${port}`,
    stats,
    reset () {
      stats.connections = 0
      stats.requests = 0
      stats.aborted.length = 0
      stats.requestIds.length = 0
    },
    async waitForAborts (count, timeoutMs = 5_000) {
      const deadline = performance.now() + timeoutMs
      while (stats.aborted.length < count) {
        const remaining = deadline - performance.now()
        if (remaining <= 0) throw new Error(`expected ${count} aborted requests, saw ${stats.aborted.length}`)
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, remaining)
          const wake = (): void => { clearTimeout(timer); abortWaiters.delete(wake); resolve() }
          abortWaiters.add(wake)
        })
      }
      return stats.aborted.slice(0, count)
    },
    async close () {
      for (const socket of sockets) socket.destroy()
      await new Promise<void>((resolve, reject) => server.close((error) => { if (error === undefined) resolve(); else reject(error) }))
    },
  }
}
