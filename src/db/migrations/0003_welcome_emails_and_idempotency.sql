-- One row per welcome email that was handed to the mail server: the job handler checks it first,
-- so a retried or duplicated job never mails twice.
create table welcome_emails (
  user_id bigint primary key references users (id) on delete cascade,
  message_id text,
  sent_at timestamptz not null default now()
);

-- Stored first responses of requests that carried an Idempotency-Key, per route.
create table idempotency_keys (
  scope text not null,
  key text not null,
  request_hash text not null,
  status integer not null,
  body jsonb not null,
  created_at timestamptz not null default now(),
  primary key (scope, key)
);
