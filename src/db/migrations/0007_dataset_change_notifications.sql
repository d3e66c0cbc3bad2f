-- Every change of a data set's metadata (its row, its columns) is announced on the channel
-- `dataset_changed` with the data set's id, at commit, to every process listening: each keeps the
-- metadata of ready data sets in memory and drops an entry when it hears of a change
-- (routes/datasets/metadata-cache.ts). PostgreSQL sends one notification per distinct id per
-- transaction, however many rows changed.
create function notify_dataset_changed() returns trigger language plpgsql as $$
begin
  perform pg_notify('dataset_changed', to_jsonb(case when tg_op = 'DELETE' then old else new end) ->> tg_argv[0]);
  return null;
end
$$;

create trigger notify_dataset_changed after update or delete on datasets
  for each row execute function notify_dataset_changed('id');
create trigger notify_dataset_changed after insert or update or delete on dataset_columns
  for each row execute function notify_dataset_changed('dataset_id');
