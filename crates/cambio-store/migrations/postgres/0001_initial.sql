-- Initial schema of the Cambio store on PostgreSQL.
--
-- The same tables, columns and indexes as migrations/sqlite/0001_initial.sql, with two
-- differences that PostgreSQL needs to give the same answers:
--   * booleans are BOOLEAN (SQLite has none and stores INTEGER 0/1);
--   * text columns that queries sort by (ids, names, jtis) use the "C" collation, so that
--     ORDER BY compares bytes exactly as SQLite's default BINARY collation does, whatever
--     locale the database was created with.
-- All times are BIGINT: seconds since the Unix epoch, except events.time which is
-- milliseconds.

-- Configuration objects as JSON documents. Realms themselves live under realm_id '' (GLOBAL).
CREATE TABLE objects (
    realm_id TEXT COLLATE "C" NOT NULL,
    kind     TEXT COLLATE "C" NOT NULL,
    id       TEXT COLLATE "C" NOT NULL,
    name     TEXT COLLATE "C" NOT NULL,
    doc      TEXT NOT NULL,
    PRIMARY KEY (realm_id, kind, id),
    UNIQUE (realm_id, kind, name)
);

CREATE TABLE sessions (
    id           TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    realm_id     TEXT    NOT NULL,
    user_id      TEXT    NOT NULL,
    client_id    TEXT    NOT NULL,
    offline      BOOLEAN NOT NULL,
    created_at   BIGINT  NOT NULL,
    last_refresh BIGINT  NOT NULL,
    expires_at   BIGINT  NOT NULL,
    revoked_at   BIGINT
);
CREATE INDEX sessions_user ON sessions (realm_id, user_id);
CREATE INDEX sessions_revoked ON sessions (revoked_at);
CREATE INDEX sessions_expires ON sessions (expires_at);

-- Refresh tokens are stored under the hash of their value only. No foreign key to sessions:
-- both expire independently and are purged by time.
CREATE TABLE refresh_tokens (
    hash       TEXT    NOT NULL PRIMARY KEY,
    realm_id   TEXT    NOT NULL,
    session_id TEXT    NOT NULL,
    client_id  TEXT    NOT NULL,
    user_id    TEXT    NOT NULL,
    scope      TEXT    NOT NULL,
    data       TEXT    NOT NULL,
    offline    BOOLEAN NOT NULL,
    issued_at  BIGINT  NOT NULL,
    expires_at BIGINT  NOT NULL,
    used_at    BIGINT
);
CREATE INDEX refresh_tokens_session ON refresh_tokens (session_id);
CREATE INDEX refresh_tokens_expires ON refresh_tokens (expires_at);
-- delete_realm_data deletes by realm; SQLite scans, PostgreSQL tables grow larger.
CREATE INDEX refresh_tokens_realm ON refresh_tokens (realm_id);

-- Revoked access tokens by jti, kept until the token would have expired anyway.
CREATE TABLE revoked_tokens (
    jti        TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    realm_id   TEXT   NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX revoked_tokens_expires ON revoked_tokens (expires_at);

-- Replay protection: a value may be recorded once per context.
CREATE TABLE one_time_values (
    context    TEXT   NOT NULL,
    value      TEXT   NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (context, value)
);
CREATE INDEX one_time_values_expires ON one_time_values (expires_at);

CREATE TABLE auth_codes (
    hash       TEXT   NOT NULL PRIMARY KEY,
    data       TEXT   NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX auth_codes_expires ON auth_codes (expires_at);

-- Audit events. seq only breaks ties between events of the same millisecond; a multi-row
-- INSERT draws it in row order, so later rows of a batch sort as later events.
CREATE TABLE events (
    seq        BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    time       BIGINT  NOT NULL,
    realm_id   TEXT    NOT NULL,
    event_type TEXT    NOT NULL,
    client_id  TEXT,
    user_id    TEXT,
    session_id TEXT,
    ip_address TEXT,
    error      TEXT,
    details    TEXT    NOT NULL
);
CREATE INDEX events_realm_time ON events (realm_id, time);
