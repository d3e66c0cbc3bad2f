-- Which sample data sets were loaded, so the demo seed of an embedded database runs once only.
create table seed_log (
  name text primary key,
  details jsonb not null default '{}',
  applied_at timestamptz not null default now()
);
