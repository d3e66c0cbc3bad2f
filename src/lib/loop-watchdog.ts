// The event-loop watchdog: a timer that should fire every TICK_MS. When it fires late by more than
// the threshold, something held the loop (a synchronous loop, a huge JSON.parse, a sync fs call),
// and every request in flight during that time is a suspect: it logs their routes and request ids,
// so the culprit can be found from the log line alone.
import type { FastifyBaseLogger } from 'fastify'

const TICK_MS = 50

export interface Suspect { request_id: string, method: string, route: string }

export interface LoopWatchdog {
  /** A request started: call `done` when it ends (answered or aborted). */
  track: (suspect: Suspect) => () => void
  /** Requests started and not yet ended. */
  inFlight: () => number
  /** Starts watching (from the moment the app is ready: start-up work is not a blocked loop). */
  start: () => void
  stop: () => void
}

export function createLoopWatchdog ({ thresholdMs, log }: { thresholdMs: number, log: Pick<FastifyBaseLogger, 'warn'> }): LoopWatchdog {
  const inFlight = new Set<Suspect>()
  // Requests that ended since the last tick: a handler that blocked and then answered before the
  // timer could fire is one of them.
  let ended: Suspect[] = []
  let timer: NodeJS.Timeout | undefined

  return {
    track (suspect) {
      inFlight.add(suspect)
      return () => {
        if (inFlight.delete(suspect)) ended.push(suspect)
      }
    },
    inFlight: () => inFlight.size,
    start () {
      if (timer !== undefined) return
      let last = performance.now()
      timer = setInterval(() => {
        const now = performance.now()
        const blockedMs = now - last - TICK_MS
        last = now
        if (blockedMs >= thresholdMs) {
          log.warn({ blocked_ms: Math.round(blockedMs), requests: [...inFlight, ...ended] }, 'event loop blocked; these requests were in flight')
        }
        ended = []
      }, TICK_MS)
      timer.unref()
    },
    stop () { clearInterval(timer) },
  }
}
