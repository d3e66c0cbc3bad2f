-- Large uploads are stored piece by piece before their data set exists, each piece in a statement
-- of its own: a client that sends slowly holds no connection and no transaction. The data set row
-- names its upload once the last piece is in; pieces no data set names (an upload that broke off,
-- a process that died mid-upload) are removed by age.
create table dataset_upload_pieces (
  upload_id uuid not null,
  seq int not null,
  data bytea not null,
  created_at timestamptz not null default now(),
  primary key (upload_id, seq)
);
create index dataset_upload_pieces_created_at on dataset_upload_pieces (created_at);

alter table datasets add column upload_id uuid;
create index datasets_upload_id on datasets (upload_id) where upload_id is not null;

-- Uploads waiting for their import move to the new table, under an id derived from the data set.
update datasets set upload_id = md5('dataset-upload:' || id)::uuid
where id in (select dataset_id from dataset_uploads);
insert into dataset_upload_pieces (upload_id, seq, data)
select md5('dataset-upload:' || dataset_id)::uuid, seq, data from dataset_uploads;
drop table dataset_uploads;

-- Text columns of data sets sort by code point and compare case-insensitively by Unicode rules,
-- whatever the database's default collation (as the import now creates them).
do $$
declare
  col record;
  text_collation text := coalesce((select 'pg_c_utf8' from pg_collation where collname = 'pg_c_utf8'), 'C');
begin
  for col in
    select c.table_name, c.column_name from information_schema.columns c
    where c.table_schema = 'dataset_rows' and c.data_type = 'text' and c.column_name <> '_row'
  loop
    execute format('alter table dataset_rows.%I alter column %I type text collate %I', col.table_name, col.column_name, text_collation);
  end loop;
end
$$;
