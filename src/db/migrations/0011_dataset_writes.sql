-- Data that changes (issue #20): appends, upserts by key, atomic replaces.
--
-- A data set may declare key columns (their names, in order; null: no key). The key is enforced by
-- a unique index on its table (routes/datasets/table.ts names it) and its values are never missing.
alter table datasets add column key text[] check (key is null or cardinality(key) between 1 and 32);

-- Writes to a ready data set: one row per append or replace, done at once (a small body) or by a
-- job (a large one, its upload stored in dataset_upload_pieces until the job has written it). The
-- latest one is shown with the data set, so a client that got 202 can follow its status.
create table dataset_writes (
  id bigint generated always as identity primary key,
  dataset_id bigint not null references datasets (id) on delete cascade,
  kind text not null check (kind in ('append', 'replace')),
  status text not null check (status in ('queued', 'running', 'done', 'failed')),
  format text not null,
  on_conflict text check (on_conflict in ('update', 'ignore')),
  strict_columns boolean not null default false,
  upload_id uuid,
  inserted bigint,
  updated bigint,
  ignored bigint,
  error jsonb,
  created_at timestamptz not null default now(),
  finished_at timestamptz
);
create index dataset_writes_dataset on dataset_writes (dataset_id, id desc);
create index dataset_writes_upload_id on dataset_writes (upload_id) where upload_id is not null;
