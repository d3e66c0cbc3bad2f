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

/** Polls `check` until it gives a value (not undefined or false); past `timeoutMs`, fails naming `what`. */
export async function until<T> (what: string, check: () => Promise<T | undefined | false>, timeoutMs = 30_000): Promise<T> {
  const deadline = performance.now() + timeoutMs
  for (;;) {
    const value = await check()
    if (value !== undefined && value !== false) return value
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await delay(50)
  }
}

/** A JSON body, typed loosely: the assertions check its shape. */
export async function json (response: Response): Promise<any> {
  return await response.json()
}
