-- Who may write a data set, and what was written. A data set is written (patched, its rows
-- deleted, deleted) by the API key that created it (datasets.created_by) or by an admin key
-- (`data-api keys create --admin`); one with no owner (the demo data set) by admin keys only.
alter table api_keys add column is_admin boolean not null default false;

-- The history of each data set's writes, newest first by id (GET /datasets/{id}/changes). Rows
-- live as long as their data set: deleting a data set deletes its history (the deletion itself is
-- in the service log), so nothing of a deleted data set's names or filters stays behind.
-- `api_key_id` is the key that wrote (null: the demo seed, or a key since deleted from the table);
-- `rows` the rows the write added, removed or changed; `details` what the write was (its source,
-- filters, the columns renamed or retyped…), as the writer records it (repository.ts recordChange).
create table dataset_changes (
  id bigint generated always as identity primary key,
  dataset_id bigint not null references datasets (id) on delete cascade,
  at timestamptz not null default now(),
  kind text not null check (kind in ('create', 'delete_rows', 'patch', 'append', 'upsert', 'replace')),
  api_key_id bigint references api_keys (id) on delete set null,
  rows bigint,
  details jsonb not null default '{}'
);
create index dataset_changes_by_dataset on dataset_changes (dataset_id, id desc);
