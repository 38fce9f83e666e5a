-- Bearer tokens for the daemons' TCP listeners, shared by every daemon of the team: a token made
-- on one machine is good on the standby too. Only the SHA-256 of a token is kept.
CREATE TABLE tokens (
    name       TEXT PRIMARY KEY,
    hash       TEXT NOT NULL UNIQUE,
    created_ms BIGINT NOT NULL,
    revoked_ms BIGINT
);
