-- The Data API: data sets, their columns and statistics, API keys, and uploads waiting for an
-- import job. Each data set's rows live in a table of its own, dataset_rows.ds_<id>, whose
-- columns are c1..cN (the names users gave live in dataset_columns), so no user-supplied name
-- ever becomes SQL.
create schema dataset_rows;

create table api_keys (
  id bigint generated always as identity primary key,
  name text not null,
  -- The first characters of the key, to recognise it in listings; the key itself is never stored.
  prefix text not null,
  hash bytea not null unique,
  created_at timestamptz not null default now(),
  revoked_at timestamptz
);

create table datasets (
  id bigint generated always as identity primary key,
  name text not null,
  description text,
  status text not null check (status in ('importing', 'ready', 'failed')),
  source text not null check (source in ('upload', 'url', 'sample')),
  source_url text,
  format text check (format in ('csv', 'json', 'ndjson')),
  rows bigint not null default 0,
  bytes bigint not null default 0,
  error jsonb,
  created_by bigint references api_keys (id) on delete set null,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
create index datasets_created_at on datasets (created_at desc, id desc);

create table dataset_columns (
  dataset_id bigint not null references datasets (id) on delete cascade,
  position int not null,
  name text not null,
  type text not null check (type in ('integer', 'numeric', 'boolean', 'date', 'timestamp', 'text')),
  nullable boolean not null,
  primary key (dataset_id, position),
  unique (dataset_id, name)
);

create table dataset_stats (
  dataset_id bigint primary key references datasets (id) on delete cascade,
  stats jsonb not null,
  computed_at timestamptz not null default now()
);

-- A large upload, kept in the database (not on one machine's disk) until a worker imports it.
create table dataset_uploads (
  dataset_id bigint not null references datasets (id) on delete cascade,
  seq int not null,
  data bytea not null,
  primary key (dataset_id, seq)
);
