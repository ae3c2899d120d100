-- Each client's part of a user session (Keycloak's client sessions). A client joins when it
-- logs the user in or obtains a refresh token in the session by token exchange; its part ends
-- when it revokes its refresh token. Tokens the client was issued in the session up to
-- ended_at are refused from then on; the user session itself ends when no client remains.
-- A client that joins again (a later exchange) gets joined_at > ended_at, which makes its part
-- live again without reviving the tokens issued before the end.
CREATE TABLE client_sessions (
    session_id TEXT   NOT NULL,
    client_id  TEXT   NOT NULL,
    realm_id   TEXT   NOT NULL,
    joined_at  BIGINT NOT NULL,
    ended_at   BIGINT,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (session_id, client_id)
);
CREATE INDEX client_sessions_ended ON client_sessions (ended_at);
CREATE INDEX client_sessions_expires ON client_sessions (expires_at);

-- Sessions that exist already: the client that started each one, and every client holding a
-- refresh token in it.
INSERT INTO client_sessions (session_id, client_id, realm_id, joined_at, ended_at, expires_at)
SELECT id, client_id, realm_id, created_at, NULL, expires_at FROM sessions;
INSERT INTO client_sessions (session_id, client_id, realm_id, joined_at, ended_at, expires_at)
SELECT r.session_id, r.client_id, r.realm_id, MIN(r.issued_at), NULL, MAX(s.expires_at)
FROM refresh_tokens r JOIN sessions s ON s.id = r.session_id
-- WHERE true: without it SQLite would read ON CONFLICT as part of the join.
WHERE true
GROUP BY r.session_id, r.client_id, r.realm_id
ON CONFLICT (session_id, client_id) DO NOTHING;
