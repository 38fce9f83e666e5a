-- The merge queue's book (it was <KITE_HOME>/merge/book.json): one row per landing of a task's
-- branch, and the lifetime counts per template ('' is every template). Rows of finished
-- landings are kept (a task's history reads them); the counts are what `kite merge list`, `kite
-- status` and the strategy loop's track record show.
CREATE TABLE merge_entries (
    id            INTEGER PRIMARY KEY,
    task_id       INTEGER NOT NULL,
    title         TEXT NOT NULL,
    template      TEXT,
    branch        TEXT NOT NULL,
    target        TEXT,
    state         TEXT NOT NULL,
    detail        TEXT NOT NULL DEFAULT '',
    base          TEXT,
    new           TEXT,
    verified      INTEGER NOT NULL DEFAULT 0,
    session       TEXT,
    token         INTEGER,
    queued_at_ms  INTEGER NOT NULL,
    updated_at_ms INTEGER NOT NULL,
    attempts      INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX merge_entries_task ON merge_entries (task_id, id);
-- In flight: what a restart resumes and what `kite merge list` shows first.
CREATE INDEX merge_entries_in_flight ON merge_entries (id) WHERE state IN ('queued', 'verifying', 'moving', 'waiting');

CREATE TABLE merge_counts (
    template     TEXT PRIMARY KEY,
    landed       INTEGER NOT NULL DEFAULT 0,
    rejected     INTEGER NOT NULL DEFAULT 0,
    conflicted   INTEGER NOT NULL DEFAULT 0,
    not_verified INTEGER NOT NULL DEFAULT 0
);
