-- Initial schema of the Cambio store.
--
-- Kept to portable SQL (TEXT, BIGINT, INTEGER 0/1 for booleans, no engine-specific types) so
-- that the PostgreSQL migrations can carry the same tables and columns. All times are BIGINT:
-- seconds since the Unix epoch, except events.time which is milliseconds.

-- Configuration objects as JSON documents. Realms themselves live under realm_id '' (GLOBAL).
CREATE TABLE objects (
    realm_id TEXT NOT NULL,
    kind     TEXT NOT NULL,
    id       TEXT NOT NULL,
    name     TEXT NOT NULL,
    doc      TEXT NOT NULL,
    PRIMARY KEY (realm_id, kind, id),
    UNIQUE (realm_id, kind, name)
);

CREATE TABLE sessions (
    id           TEXT    NOT NULL PRIMARY KEY,
    realm_id     TEXT    NOT NULL,
    user_id      TEXT    NOT NULL,
    client_id    TEXT    NOT NULL,
    offline      INTEGER NOT NULL,
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
    offline    INTEGER NOT NULL,
    issued_at  BIGINT  NOT NULL,
    expires_at BIGINT  NOT NULL,
    used_at    BIGINT
);
CREATE INDEX refresh_tokens_session ON refresh_tokens (session_id);
CREATE INDEX refresh_tokens_expires ON refresh_tokens (expires_at);

-- Revoked access tokens by jti, kept until the token would have expired anyway.
CREATE TABLE revoked_tokens (
    jti        TEXT   NOT NULL PRIMARY KEY,
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

-- Audit events. seq only breaks ties between events of the same millisecond.
CREATE TABLE events (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
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
