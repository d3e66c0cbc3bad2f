// The durable job queue: pg-boss on the same PostgreSQL. A job is enqueued inside the transaction
// of the row it belongs to (a rollback enqueues nothing; a commit always has its job), retried with
// exponential backoff, and a job whose worker died is expired after JOB_EXPIRE_SECONDS and retried
// by another worker — unlike graphile-worker, which keeps such a job locked for up to 4 hours.
//
// pg-boss keeps a small pg pool of its own (it needs LISTEN/NOTIFY and its own transactions);
// enqueueing goes through our postgres.js transaction via pg-boss's `db` option.
import { PgBoss, type Job, type JobResult } from 'pg-boss'
import type { TransactionSql } from 'postgres'
import type { Logger } from 'pino'
import type { Config } from '../config.ts'

/** Every task: its name and the payload it carries. */
export interface TaskPayloads {
  send_welcome_email: { user_id: number }
  import_dataset: { dataset_id: number }
  /** An import whose every attempt failed or died (its dead letter): the data set is marked failed. */
  import_dataset_failed: { dataset_id: number }
  compute_dataset_stats: { dataset_id: number }
  /** A large append or replace of a data set (its upload stored), by the dataset_writes row. */
  write_dataset: { write_id: number }
  /** A write whose every attempt failed or died (its dead letter): the write is marked failed. */
  write_dataset_failed: { write_id: number }
}
export type TaskName = keyof TaskPayloads

/**
 * Each task's queue: how long a job may run before it counts as dead (imports and statistics of
 * large data sets legitimately run long), and where a job goes when no retry is left. In the order
 * they are created: a dead-letter queue before the queue that names it.
 */
const TASKS: ReadonlyArray<{ name: TaskName, longRunning: boolean, deadLetter?: TaskName }> = [
  { name: 'send_welcome_email', longRunning: false },
  { name: 'import_dataset_failed', longRunning: false },
  // An attempt that died with its process expires like one that failed; when it was the last, its
  // dead letter still reaches a handler, so no data set stays "importing" for ever.
  { name: 'import_dataset', longRunning: true, deadLetter: 'import_dataset_failed' },
  { name: 'compute_dataset_stats', longRunning: true },
  { name: 'write_dataset_failed', longRunning: false },
  { name: 'write_dataset', longRunning: true, deadLetter: 'write_dataset_failed' },
]
export const TASK_NAMES: readonly TaskName[] = TASKS.map((task) => task.name)

export type TaskHandler<N extends TaskName> = (job: Job<TaskPayloads[N]>) => Promise<void>
export type TaskHandlers = { [N in TaskName]: TaskHandler<N> }

export interface JobCounts { queued: number, active: number, failed: number }

export interface JobQueue {
  /** Enqueues within `tx`: the job exists only if the transaction commits. */
  enqueue: <N extends TaskName>(tx: TransactionSql, name: N, payload: TaskPayloads[N]) => Promise<string>
  /** Starts working on the given tasks, each with up to its concurrency (or the default) jobs at once. */
  work: (handlers: Partial<TaskHandlers>, concurrency: { default: number } & Partial<Record<TaskName, number>>) => Promise<void>
  /** Queued, running and failed jobs over all tasks (for /metrics). */
  counts: () => Promise<JobCounts>
  /** Stops fetching; running jobs get `timeoutMs` to finish, the rest go back to the queue. */
  stop: (timeoutMs: number) => Promise<void>
}

/** Connections of pg-boss's own pool, in every process that runs a queue (`serve --processes` budgets them). */
export const JOB_QUEUE_CONNECTIONS = 3

/** The queue's settings; long-running tasks (imports, statistics) expire after DATASET_IMPORT_TIMEOUT_SECONDS. */
export type JobQueueConfig = Pick<Config, 'jobs' | 'datasets'>

export async function startJobQueue (databaseUrl: string, { jobs: config, datasets }: JobQueueConfig, log: Logger): Promise<JobQueue> {
  const boss = new PgBoss({
    connectionString: databaseUrl,
    max: JOB_QUEUE_CONNECTIONS,
    application_name: 'data-api-jobs',
    // Expiry runs in the per-queue monitor pass, which is throttled by monitorIntervalSeconds
    // (60 s by default) as well as by the supervisor timer: both set, or a dead worker's job waits.
    superviseIntervalSeconds: config.superviseIntervalSeconds,
    monitorIntervalSeconds: config.superviseIntervalSeconds,
    useListenNotify: true,
  })
  // Not the error itself: pg's errors carry the whole client object (connection parameters, type
  // tables), kilobytes per line while the database is down.
  boss.on('error', (error: Error & { code?: string }) => { log.error({ err: { type: error.name, message: error.message, code: error.code, stack: error.stack } }, 'job queue error') })
  await boss.start()
  for (const { name, longRunning, deadLetter } of TASKS) {
    const options = {
      expireInSeconds: longRunning ? datasets.importTimeoutSeconds : config.expireSeconds,
      ...(deadLetter !== undefined && { deadLetter }),
      retryLimit: config.retryLimit,
      retryDelay: config.retryDelaySeconds,
      retryBackoff: true,
      notify: true,
    }
    if (await boss.getQueue(name) === null) await boss.createQueue(name, { ...options, retryDelayMax: config.retryDelayMaxSeconds })
    else await boss.updateQueue(name, options)
  }

  const running = new Map<string, TaskName>()
  return {
    enqueue: async (tx, name, payload) => {
      const id = await boss.send(name, payload, {
        db: { executeSql: async (text: string, values?: unknown[]) => ({ rows: await tx.unsafe(text, values as never[]) }) },
      })
      if (id === null) throw new Error(`job ${name} was not created`)
      return id
    },
    work: async (handlers, concurrency) => {
      for (const name of TASK_NAMES) {
        const handler = handlers[name] as TaskHandler<TaskName> | undefined
        if (handler === undefined) continue
        const runOne = async (job: Job<TaskPayloads[TaskName]>): Promise<JobResult> => {
          running.set(job.id, name)
          const attemptLog = log.child({ job_id: job.id, task: name, attempt: job.retryCount + 1 })
          attemptLog.info('job started')
          try {
            await handler(job)
            attemptLog.info('job done')
            return { id: job.id, status: 'completed' }
          } catch (error) {
            attemptLog.warn({ err: error }, 'job attempt failed; the queue retries it with backoff')
            return { id: job.id, status: 'failed', output: { message: (error as Error).message } }
          } finally {
            running.delete(job.id)
          }
        }
        // Jobs come in batches of `concurrency`, run at once, each settled on its own. A full batch
        // fetches the next at once (burst); otherwise NOTIFY wakes the worker for new jobs, and a
        // retry that comes due after its backoff (no NOTIFY) is found by polling every 2 s rather
        // than pg-boss's 30 s default.
        await boss.work<TaskPayloads[TaskName]>(name, {
          batchSize: concurrency[name] ?? concurrency.default, perJobResults: true, burstWhenBatchFull: true, notifyPollingIntervalSeconds: 2,
        }, async (jobs) => await Promise.all(jobs.map(runOne)))
      }
    },
    counts: async () => {
      const queues = await Promise.all(TASK_NAMES.map(async (name) => await boss.getQueue(name)))
      return queues.reduce<JobCounts>((sum, queue) => ({
        queued: sum.queued + (queue?.queuedCount ?? 0),
        active: sum.active + (queue?.activeCount ?? 0),
        failed: sum.failed + (queue?.failedCount ?? 0),
      }), { queued: 0, active: 0, failed: 0 })
    },
    stop: async (timeoutMs) => {
      await boss.stop({ graceful: true, timeout: timeoutMs, close: false })
      // Jobs still running past the grace period go back to the queue now (as a failed attempt,
      // retried by another worker) instead of waiting for their expiry.
      for (const [id, name] of running) {
        await boss.fail(name, id, { reason: 'worker shut down before the job finished' }).catch((error: unknown) => { log.warn({ err: error, job_id: id }, 'could not release job') })
      }
      await boss.stop({ graceful: false, close: true })
    },
  }
}
