-- The schema that dddkit created before the postgres package existed
-- (outbox.Migrate version 1, repository.Migrate and Inbox.Migrate, as of
-- commit ce174eb), with the default table names, in the current schema.
-- postgres.Migrate must adopt it without loss.
CREATE TABLE dddkit_outbox_migrations (
	version    integer     PRIMARY KEY,
	name       text        NOT NULL,
	applied_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE dddkit_outbox (
	seq               bigserial   PRIMARY KEY,
	event_id          text        NOT NULL,
	aggregate_type    text        NOT NULL,
	aggregate_id      text        NOT NULL,
	aggregate_version bigint      NOT NULL,
	event_name        text        NOT NULL,
	event_version     integer     NOT NULL DEFAULT 1,
	payload           jsonb       NOT NULL,
	headers           jsonb,
	occurred_at       timestamptz NOT NULL,
	created_at        timestamptz NOT NULL DEFAULT now(),
	status            text        NOT NULL DEFAULT 'pending',
	attempts          integer     NOT NULL DEFAULT 0,
	last_error        text,
	next_attempt_at   timestamptz,
	published_at      timestamptz,
	CONSTRAINT dddkit_outbox_event_id_key UNIQUE (event_id),
	CONSTRAINT dddkit_outbox_status_check CHECK (status IN ('pending', 'published', 'failed'))
);
CREATE INDEX dddkit_outbox_pending_idx ON dddkit_outbox (seq) WHERE status = 'pending';
CREATE INDEX dddkit_outbox_blocked_idx ON dddkit_outbox (aggregate_type, aggregate_id, seq)
	WHERE status = 'failed' OR next_attempt_at IS NOT NULL;
CREATE INDEX dddkit_outbox_published_idx ON dddkit_outbox (published_at) WHERE status = 'published';
CREATE FUNCTION dddkit_outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	PERFORM pg_notify(TG_ARGV[0], '');
	RETURN NULL;
END
$$;
-- {{CHANNEL}} is replaced by the test with the schema's channel name.
CREATE TRIGGER dddkit_outbox_notify AFTER INSERT ON dddkit_outbox
	FOR EACH STATEMENT EXECUTE FUNCTION dddkit_outbox_notify('{{CHANNEL}}');
INSERT INTO dddkit_outbox_migrations (version, name) VALUES (1, 'create outbox table, indexes and NOTIFY trigger');

CREATE TABLE IF NOT EXISTS aggregates (
	type       text        NOT NULL,
	id         text        NOT NULL,
	version    bigint      NOT NULL CHECK (version > 0),
	state      jsonb       NOT NULL,
	created_at timestamptz NOT NULL DEFAULT now(),
	updated_at timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (type, id)
) WITH (fillfactor = 90);
CREATE TABLE IF NOT EXISTS aggregate_keys (
	type  text NOT NULL,
	name  text NOT NULL,
	value text NOT NULL,
	id    text NOT NULL,
	PRIMARY KEY (type, name, value)
);
CREATE INDEX IF NOT EXISTS aggregate_keys_owner_idx ON aggregate_keys (type, id);
CREATE TABLE IF NOT EXISTS aggregate_events (
	type        text        NOT NULL,
	id          text        NOT NULL,
	version     bigint      NOT NULL CHECK (version > 0),
	event_id    text        NOT NULL,
	name        text        NOT NULL,
	payload     jsonb       NOT NULL,
	metadata    jsonb,
	occurred_at timestamptz NOT NULL,
	recorded_at timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (type, id, version),
	CONSTRAINT aggregate_events_event_id_key UNIQUE (event_id)
);
CREATE TABLE IF NOT EXISTS dddkit_inbox (
  handler      text        NOT NULL,
  event_id     text        NOT NULL,
  event_name   text        NOT NULL DEFAULT '',
  processed_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (handler, event_id)
);
CREATE INDEX IF NOT EXISTS dddkit_inbox_processed_at_idx ON dddkit_inbox USING brin (processed_at);

-- Data written by the old code.
INSERT INTO dddkit_outbox (event_id, aggregate_type, aggregate_id, aggregate_version, event_name, payload, occurred_at)
VALUES ('ev-1', 'user', 'u-1', 1, 'user.registered', '{"email":"ada@example.com"}', '2026-01-02T03:04:05Z');
INSERT INTO aggregates (type, id, version, state) VALUES ('user', 'u-1', 1, '{"email":"ada@example.com"}');
INSERT INTO aggregate_keys (type, name, value, id) VALUES ('user', 'email', 'ada@example.com', 'u-1');
INSERT INTO aggregate_events (type, id, version, event_id, name, payload, occurred_at)
VALUES ('account', 'a-1', 1, 'ev-2', 'bank.account_opened', '{"owner":"ada"}', '2026-01-02T03:04:05Z');
INSERT INTO dddkit_inbox (handler, event_id, event_name) VALUES ('mailer', 'ev-0', 'user.registered');
