-- Writes that a job does long after their request (issue #20): the key that sent the write (for
-- the history, GET /datasets/{id}/changes), how the client asked its body to be read
-- (`?delimiter=`, `?decimal=`, `?types=`, as datasets.import_options for an import), and the rows
-- read so far while the job runs.
alter table dataset_writes add column api_key_id bigint references api_keys (id) on delete set null;
alter table dataset_writes add column import_options jsonb not null default '{}';
alter table dataset_writes add column rows_read bigint;

-- A write's progress and status are announced as its data set's change, on the channel of
-- migration 0007, so that GET /datasets/{id}/events hears them from any process.
create trigger notify_dataset_changed after insert or update on dataset_writes
  for each row execute function notify_dataset_changed('dataset_id');
