// The lesson's asyncio toolbox, in TypeScript, with the parts the lesson leaves out: a failing
// branch cancels its siblings instead of leaving them running, every wait has a deadline, and the
// time of each branch is recorded for the Server-Timing header.
//
//   asyncio.gather(a, b)        → gather({ a, b }, { signal })
//   gather(..., return_exceptions) → gather({ a, b }, { optional: ['b'] })  (b's failure is reported)
//   asyncio.wait_for(x, 5)      → withDeadline(5000, signal, (s) => x(s))
//
// Branches are functions of an AbortSignal so that "cancel" reaches the work itself: a postgres.js
// query is cancelled on the server (cancellable), a timer is cleared (sleep), a fetch is aborted.
import { setTimeout as delay } from 'node:timers/promises'
import type { PendingQuery, Row } from 'postgres'
import { asProblem, Problem } from './errors.ts'
import type { ServerTiming } from './server-timing.ts'

export type Branch<T> = (signal: AbortSignal) => Promise<T>
type Branches = Record<string, Branch<unknown>>
type ValueOf<F> = F extends Branch<infer T> ? T : never

export interface BranchError { part: string, reason: string, error: unknown }

export interface GatherOptions<O> {
  /** The caller's signal (usually the request's): aborting it aborts every branch. */
  signal?: AbortSignal
  /** Per-branch deadline in ms; a branch past it is cancelled and fails with a TimeoutError. */
  timeoutMs?: number
  /** Branches whose failure is reported in `errors` (value null) instead of failing the gather. */
  optional?: readonly O[]
  timing?: ServerTiming
}

export type Gathered<B extends Branches, O extends keyof B> = {
  [K in keyof B]: K extends O ? ValueOf<B[K]> | null : ValueOf<B[K]>
}

/**
 * Runs the branches concurrently. The first required branch to fail aborts all the others (their
 * signals fire) and its error is thrown once every branch has settled, so nothing is left running
 * behind the response. Optional branches that fail yield null and an entry in `errors`.
 */
export async function gather<B extends Branches, O extends keyof B & string = never> (
  branches: B,
  options: GatherOptions<O> = {},
): Promise<{ values: Gathered<B, O>, errors: BranchError[] }> {
  const shared = new AbortController()
  const signals = options.signal === undefined ? [shared.signal] : [shared.signal, options.signal]
  const optional = new Set<string>(options.optional ?? [])
  let firstFailure: { error: unknown } | undefined
  const errors: BranchError[] = []

  const names = Object.keys(branches)
  const settled = await Promise.all(names.map(async (name) => {
    const signal = options.timeoutMs === undefined ? AbortSignal.any(signals) : AbortSignal.any([...signals, AbortSignal.timeout(options.timeoutMs)])
    const started = performance.now()
    try {
      return await run(branches[name]!, signal)
    } catch (error) {
      if (optional.has(name)) {
        errors.push({ part: name, reason: describeFailure(error), error })
      } else if (firstFailure === undefined) {
        firstFailure = { error }
        shared.abort(error)
      }
      return null
    } finally {
      options.timing?.add(name, performance.now() - started)
    }
  }))
  if (firstFailure !== undefined) throw firstFailure.error
  options.signal?.throwIfAborted()
  const values = Object.fromEntries(names.map((name, index) => [name, settled[index]]))
  return { values: values as Gathered<B, O>, errors }
}

/** asyncio.wait_for: runs `work` with a signal that fires after `ms` or when `signal` does. */
export async function withDeadline<T> (ms: number, signal: AbortSignal | undefined, work: Branch<T>): Promise<T> {
  const timeout = AbortSignal.timeout(ms)
  return await run(work, signal === undefined ? timeout : AbortSignal.any([timeout, signal]))
}

/**
 * Awaits a postgres.js query, cancelling it on the server when the signal fires. postgres.js has no
 * AbortSignal support; `query.cancel()` sends a CancelRequest and the backend stops within
 * milliseconds (SQLSTATE 57014), so no orphan query keeps a connection busy.
 */
export async function cancellable<T extends readonly Row[]> (query: PendingQuery<T>, signal: AbortSignal): Promise<T> {
  signal.throwIfAborted()
  const cancel = (): void => { void query.cancel() }
  signal.addEventListener('abort', cancel, { once: true })
  try {
    return await query
  } catch (error) {
    // Report why we cancelled (timeout, sibling failure, client gone), not "canceling statement".
    if (signal.aborted) throw signal.reason
    throw error
  } finally {
    signal.removeEventListener('abort', cancel)
  }
}

/**
 * A count of units (connections, say) that callers may hold at once. Beyond it a caller is refused
 * at once instead of queueing: the answer to "too many" is a 503 now, not a wait for the pool.
 */
export function createPermits (max: number) {
  let held = 0
  return {
    /** Takes `units`, or returns undefined when that would exceed the maximum; call the result to give them back. */
    tryTake (units = 1): Disposable | undefined {
      if (held + units > max) return undefined
      held += units
      let returned = false
      return { [Symbol.dispose]: () => { if (!returned) held -= units; returned = true } }
    },
  }
}

/**
 * A count of units that callers may hold at once, where a caller beyond it waits its turn (first
 * come, first served) until a unit is given back, its signal fires, or `waitMs` passes: then it
 * fails with 503 `database-busy`, as a wait for a pool connection does. For work that may wait a
 * little but must never take all of a shared resource (the facets of rows pages: half the pool).
 */
export function createSlots (max: number, waitMs: number) {
  let held = 0
  const waiting: Array<() => void> = []
  const slot = (): Disposable => {
    let returned = false
    return {
      [Symbol.dispose]: () => {
        if (returned) return
        returned = true
        const next = waiting.shift()
        if (next === undefined) held -= 1
        else next() // handed over: `held` stays
      },
    }
  }
  return {
    get waiting (): number { return waiting.length },
    async take (signal: AbortSignal): Promise<Disposable> {
      signal.throwIfAborted()
      if (held < max) {
        held += 1
        return slot()
      }
      await new Promise<void>((resolve, reject) => {
        const stop = (error: Error): void => {
          const index = waiting.indexOf(grant)
          if (index !== -1) waiting.splice(index, 1)
          clearTimeout(timer)
          signal.removeEventListener('abort', abort)
          reject(error)
        }
        const abort = (): void => { stop(signal.reason as Error) }
        const grant = (): void => {
          clearTimeout(timer)
          signal.removeEventListener('abort', abort)
          resolve()
        }
        const timer = setTimeout(() => { stop(new Problem('database-busy', 'Every connection that this kind of work may use is taken; retry shortly.')) }, waitMs)
        signal.addEventListener('abort', abort, { once: true })
        waiting.push(grant)
      })
      return slot()
    },
  }
}

/** An awaited timer that is cleared when the signal fires (asyncio.sleep with cancellation). */
export async function sleep (ms: number, signal?: AbortSignal): Promise<void> {
  try {
    await delay(ms, undefined, { signal })
  } catch (error) {
    if (signal?.aborted === true) throw signal.reason
    throw error
  }
}

async function run<T> (work: Branch<T>, signal: AbortSignal): Promise<T> {
  signal.throwIfAborted()
  try {
    return await work(signal)
  } catch (error) {
    // Whatever the branch threw while being aborted, the abort reason is the truth.
    if (signal.aborted) throw signal.reason
    throw error
  }
}

/** A short, safe reason for a failed part: never an internal message. */
export function describeFailure (error: unknown): string {
  const name = (error as { name?: string } | undefined)?.name
  if (name === 'AbortError') return 'cancelled'
  // The error catalogue already knows which errors mean "timeout" or "database down".
  const problem = asProblem(error)
  if (problem?.code === 'timeout') return 'timeout'
  if (problem?.code === 'database-unavailable') return 'database unavailable'
  if (problem?.code === 'database-busy') return 'database busy'
  if (problem?.code === 'catalog-unavailable') return 'catalog store unavailable'
  if (error instanceof Problem) return error.message
  return 'failed'
}
