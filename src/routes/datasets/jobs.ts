// The data-set area's task handlers, handed to the job worker (resources.ts): the runner knows
// tasks by name, not what they do.
import type { TaskHandlers } from '../../jobs/queue.ts'
import type { DatasetService } from './service.ts'

export function createDatasetTaskHandlers (datasets: DatasetService): Pick<TaskHandlers, 'import_dataset' | 'import_dataset_failed' | 'compute_dataset_stats' | 'write_dataset' | 'write_dataset_failed'> {
  return {
    import_dataset: async (job) => { await datasets.runImport(job.data.dataset_id, { signal: job.signal }) },
    import_dataset_failed: async (job) => { await datasets.importGaveUp(job.data.dataset_id) },
    compute_dataset_stats: async (job) => { await datasets.computeStats(job.data.dataset_id) },
    write_dataset: async (job) => { await datasets.runWrite(job.data.write_id) },
    write_dataset_failed: async (job) => { await datasets.writeGaveUp(job.data.write_id) },
  }
}
