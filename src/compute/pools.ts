// Two piscina pools of worker threads, for two different kinds of work the event loop must not do:
//  - `blocking`: threads that wait (the lesson's time.sleep in a `def` route). Waiting costs no CPU,
//    so like FastAPI's 40-thread pool it has more threads than cores (BLOCKING_THREADS).
//  - `cpu`: threads that compute. More threads than cores would only slow each other down, so it
//    has one per core by default (COMPUTE_THREADS) and a bounded queue (COMPUTE_QUEUE_MAX): when full, callers get 503 at once
//    instead of waiting behind work that cannot start.
// Aborting a task's signal drops it from the queue, or terminates its thread if it is running.
import { Piscina } from 'piscina'
import type { Config } from '../config.ts'
import { Problem } from '../lib/errors.ts'

const TASKS = new URL('./tasks.ts', import.meta.url).href

export interface ComputePools {
  blockingSleep: (ms: number, signal: AbortSignal) => Promise<void>
  countPrimes: (n: number, signal: AbortSignal) => Promise<number>
  stats: () => { blocking: PoolStats, cpu: PoolStats }
  close: () => Promise<void>
}

export interface PoolStats { threads: number, queued: number, completed: number }

export function createComputePools (threads: Config['threads']): ComputePools {
  const cpuQueueMax = threads.computeQueueMax
  // Threads start on demand and leave after 30 s idle: an idle worker thread holds ~30 MB.
  const blocking = new Piscina({ filename: TASKS, minThreads: 0, maxThreads: threads.blocking, idleTimeout: 30_000 })
  const cpu = new Piscina({ filename: TASKS, minThreads: 0, maxThreads: threads.compute, idleTimeout: 30_000 })
  let cpuInFlight = 0
  const statsOf = (pool: Piscina, queued: number): PoolStats => ({ threads: pool.threads.length, queued, completed: pool.completed })
  return {
    blockingSleep: async (ms, signal) => { await blocking.run({ ms }, { name: 'blockingSleep', signal }) },
    countPrimes: async (n, signal) => {
      // Bounded here rather than with piscina's maxQueue, which (5.3) hands tasks to busy threads
      // without counting them as queued, so it never refused anything in our tests.
      if (cpuInFlight >= threads.compute + cpuQueueMax) {
        throw new Problem('service-unavailable', `The compute queue is full (${cpuQueueMax} tasks waiting); retry shortly.`, { retryAfterSeconds: 1 })
      }
      cpuInFlight++
      try {
        return await cpu.run({ n }, { name: 'countPrimes', signal }) as number
      } finally {
        cpuInFlight--
      }
    },
    // piscina's queueSize misses tasks it handed to busy threads (see above); the in-flight count doesn't.
    stats: () => ({ blocking: statsOf(blocking, blocking.queueSize), cpu: statsOf(cpu, Math.max(0, cpuInFlight - threads.compute)) }),
    close: async () => { await Promise.all([blocking.close({ force: true }), cpu.close({ force: true })]) },
  }
}
