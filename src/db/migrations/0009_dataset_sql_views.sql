-- Read-only SQL over data sets (POST /datasets/sql, SQL_QUERIES=true): each ready data set is a
-- view `dataset_views.dataset_<id>` with the column names its users gave, over its table in
-- dataset_rows (routes/datasets/table.ts writes them). The views belong to the application's role,
-- so they read the tables with its rights; the reader role of SQL queries gets USAGE on this schema
-- and SELECT on its views only (routes/datasets/sql-queries.ts), nothing else.
create schema dataset_views;

-- The reader role's generated password, so that every process of the service (serve --processes
-- N, a worker beside serve) connects with the same one; the reader role cannot read this table.
create table dataset_sql_reader (
  role_name text primary key,
  password text not null,
  created_at timestamptz not null default now()
);
