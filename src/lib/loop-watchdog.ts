// The event-loop watchdog: a timer that should fire every TICK_MS. When it fires late by more than
// the threshold, something held the loop (a synchronous loop, a huge JSON.parse, a sync fs call),
// and every request in flight during that time is a suspect: it logs their routes and request ids,
// so the culprit can be found from the log line alone.
import type { FastifyBaseLogger } from 'fastify'

const TICK_MS = 50

export interface Suspect { request_id: string, method: string, route: string }

export interface LoopWatchdog<T = Suspect> {
  /** A request started: call `done` when it ends (answered or aborted). */
  track: (suspect: T) => () => void
  /** Requests started and not yet ended. */
  inFlight: () => number
  /** Starts watching (from the moment the app is ready: start-up work is not a blocked loop). */
  start: () => void
  stop: () => void
}

export interface LoopWatchdogOptions<T> {
  thresholdMs: number
  log: Pick<FastifyBaseLogger, 'warn'>
  /**
   * What a suspect's log entry says. Called only when a block is logged, so the hot path keeps a
   * reference (the request itself) instead of building an entry per request that is almost never read.
   */
  describe?: (suspect: T) => unknown
}

export function createLoopWatchdog<T = Suspect> ({ thresholdMs, log, describe = (suspect) => suspect }: LoopWatchdogOptions<T>): LoopWatchdog<T> {
  const inFlight = new Set<T>()
  // Requests that ended since the last tick while the tick was already overdue by the threshold:
  // a handler that blocked and then answered before the timer could fire is one of them. One that
  // ended in time cannot have been in flight during a block the next tick reports, so it is not kept.
  let ended: T[] = []
  let timer: NodeJS.Timeout | undefined
  let last = performance.now()

  return {
    track (suspect) {
      inFlight.add(suspect)
      return () => {
        if (inFlight.delete(suspect) && timer !== undefined && performance.now() - last - TICK_MS >= thresholdMs) ended.push(suspect)
      }
    },
    inFlight: () => inFlight.size,
    start () {
      if (timer !== undefined) return
      last = performance.now()
      timer = setInterval(() => {
        const now = performance.now()
        const blockedMs = now - last - TICK_MS
        last = now
        if (blockedMs >= thresholdMs) {
          log.warn({ blocked_ms: Math.round(blockedMs), requests: [...inFlight, ...ended].map(describe) }, 'event loop blocked; these requests were in flight')
        }
        if (ended.length > 0) ended = []
      }, TICK_MS)
      timer.unref()
    },
    stop () {
      clearInterval(timer)
      timer = undefined
    },
  }
}
