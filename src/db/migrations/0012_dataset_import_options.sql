-- Uploads people really have (issue #20): TSV and Excel workbooks as formats of their own, and
-- how the client asked its upload to be read (`?delimiter=`, `?decimal=`, `?types=`), kept with a
-- data set whose import runs as a job so that the worker reads it the same way.
alter table datasets drop constraint datasets_format_check;
alter table datasets add constraint datasets_format_check check (format in ('csv', 'tsv', 'json', 'ndjson', 'xlsx'));
alter table datasets add column import_options jsonb not null default '{}';
