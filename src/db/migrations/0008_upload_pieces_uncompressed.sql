-- Pieces of uploads are written once, read once and deleted: compressing them (pglz, the default
-- for bytea) halved the speed of storing an upload for a saving on disk that lasts seconds.
alter table dataset_upload_pieces alter column data set storage external;
