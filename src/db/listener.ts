// LISTEN on one channel over a connection of its own, for as long as the process runs: what keeps
// in-memory copies of database rows true (routes/datasets/metadata-cache.ts).
//
// A notification sent while no connection listens is lost for good, so the handlers hear of every
// gap: `lost` when the connection goes (drop what you hold, it may be stale by now), `listening`
// once LISTEN is in effect again (from here on every change arrives). postgres.js's own
// `sql.listen` reconnects by itself but says nothing of the gap, hence this: a connection of our own
// with the driver's `onclose` and `onnotify` options (the second is what its own listen uses; the
// types leave it out).
import type { Logger } from 'pino'
import postgres from 'postgres'

/** The connections a process's listener holds (for the connection budget of `serve --processes`). */
export const LISTENER_CONNECTIONS = 1

export interface ListenHandlers {
  notify: (payload: string) => void
  /** LISTEN is in effect: every notification from now on arrives. */
  listening: () => void
  /** The connection is gone: notifications are missed until `listening` is called again. */
  lost: () => void
}

export interface Listener { close: () => Promise<void> }

const RETRY_MIN_MS = 100
const RETRY_MAX_MS = 5_000

/** Starts listening; resolves at once, even while the database is down (it keeps trying). */
export function listen (url: string, channel: string, handlers: ListenHandlers, log: Logger): Listener {
  let closed = false
  let retry: NodeJS.Timeout | undefined
  let delay = RETRY_MIN_MS
  let warned = false

  const connection = postgres(url, {
    max: 1,
    idle_timeout: 0, // never closed for being idle or old
    max_lifetime: 0,
    fetch_types: false,
    connect_timeout: 5,
    connection: { application_name: 'data-api listener' },
    onnotice: () => {},
    onclose: () => {
      handlers.lost()
      if (!closed) schedule()
    },
    ...{ onnotify: (name: string, payload: string) => { if (name === channel) handlers.notify(payload) } },
  })

  const start = async (): Promise<void> => {
    retry = undefined
    try {
      await connection.unsafe(`listen "${channel.replaceAll('"', '""')}"`)
    } catch (error) {
      if (closed) return
      if (!warned) log.warn({ err: error, channel }, 'cannot listen for changes; in-memory copies are not used until it can')
      warned = true
      schedule()
      return
    }
    if (closed) return
    if (warned) log.info({ channel }, 'listening for changes again')
    warned = false
    delay = RETRY_MIN_MS
    handlers.listening()
  }

  /** One retry at a time: a failed attempt both throws and closes the connection. */
  const schedule = (): void => {
    if (retry !== undefined) return
    retry = setTimeout(() => { void start() }, delay)
    retry.unref()
    delay = Math.min(delay * 2, RETRY_MAX_MS)
  }

  void start()
  return {
    async close () {
      closed = true
      clearTimeout(retry)
      await connection.end({ timeout: 0 })
    },
  }
}
