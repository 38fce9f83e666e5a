-- Bearer tokens for the daemon's TCP listener ([daemon] listen), one per person or machine. Only
-- the SHA-256 of a token is kept: the token itself is shown once, by `kite token create`. A
-- revoked token keeps its row (revoked_ms set), so its name says why it is refused.
CREATE TABLE tokens (
    name       TEXT PRIMARY KEY,
    hash       TEXT NOT NULL UNIQUE,
    created_ms INTEGER NOT NULL,
    revoked_ms INTEGER
);
