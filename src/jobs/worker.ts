// The job worker: every task handler, wired to the queue. `data-api worker` runs it as a process of
// its own; `data-api serve` runs one inside the API process unless started with --no-worker.
import path from 'node:path'
import type { Logger } from 'pino'
import type { Config } from '../config.ts'
import type { Sql } from '../db/pool.ts'
import { createMailer, type Mailer } from './mailer.ts'
import type { JobQueue } from './queue.ts'
import { createWelcomeEmailHandler } from './welcome-email.ts'
import { createConfiguredDatasetService } from '../routes/datasets/service.ts'

export function createConfiguredMailer (config: Config, logger: Logger): Mailer {
  return createMailer({ smtpUrl: config.SMTP_URL, from: config.MAIL_FROM, mailDir: path.join(config.DATA_DIR, 'mail'), log: logger })
}

/** Starts every task handler on the queue. Stopping is the queue's job (JobQueue.stop). */
export async function startWorker (config: Config, deps: { sql: Sql, jobs: JobQueue, mailer: Mailer, logger: Logger }): Promise<void> {
  const log = deps.logger.child({ component: 'worker' })
  const datasets = createConfiguredDatasetService(config, deps)
  await deps.jobs.work({
    send_welcome_email: createWelcomeEmailHandler({ sql: deps.sql, mailer: deps.mailer, log }),
    import_dataset: async (job) => { await datasets.runImport(job.data.dataset_id, { signal: job.signal }) },
    import_dataset_failed: async (job) => { await datasets.importGaveUp(job.data.dataset_id) },
    compute_dataset_stats: async (job) => { await datasets.computeStats(job.data.dataset_id) },
  }, { default: config.WORKER_CONCURRENCY, import_dataset: config.DATASET_IMPORT_CONCURRENCY })
  log.info({ concurrency: config.WORKER_CONCURRENCY, smtp: config.SMTP_URL !== undefined }, 'worker started')
}
