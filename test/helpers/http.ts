// Small HTTP helpers for tests against a listening server.
import http from 'node:http'

export interface Timed<T> { value: T, ms: number }

export async function timed<T> (work: () => Promise<T>): Promise<Timed<T>> {
  const started = performance.now()
  const value = await work()
  return { value, ms: performance.now() - started }
}

/** GET that the client abandons after `afterMs` (the socket is destroyed, as a browser would). */
export async function getAndDisconnect (url: string, afterMs: number): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const request = http.get(url)
    request.on('error', (error: NodeJS.ErrnoException) => { if (error.code !== 'ECONNRESET') reject(error) })
    request.on('response', () => { reject(new Error(`${url} answered before the client disconnected`)) })
    setTimeout(() => {
      request.destroy()
      resolve()
    }, afterMs)
  })
}

export async function delay (ms: number): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, ms))
}

/** A JSON body, typed loosely: the assertions check its shape. */
export async function json (response: Response): Promise<any> {
  return await response.json()
}
