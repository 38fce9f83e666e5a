-- Lock requests waiting their turn, with when they first queued: after a restart (or, on a
-- team's store, a take-over) the waits come back as kept places, first come first, until their
-- clients ask again or their sessions are reaped.
CREATE TABLE lock_waits (
    path     TEXT NOT NULL,
    session  TEXT NOT NULL,
    mode     TEXT NOT NULL,
    since_ms INTEGER NOT NULL,
    PRIMARY KEY (path, session, mode)
);
