-- The coordinator's durable state. Never edit a landed migration: add the next number.
CREATE TABLE tasks (
    id               INTEGER PRIMARY KEY,
    title            TEXT NOT NULL,
    body             TEXT NOT NULL DEFAULT '',
    status           TEXT NOT NULL,
    priority         INTEGER NOT NULL DEFAULT 0,
    dedup_key        TEXT,
    stale_after_secs INTEGER,
    workstream       TEXT,
    template         TEXT,
    attempts         INTEGER NOT NULL DEFAULT 0,
    claim_session    TEXT,
    claim_token      INTEGER,
    result           TEXT,
    reason           TEXT,
    prune_details    TEXT,
    created_at_ms    INTEGER NOT NULL,
    updated_at_ms    INTEGER NOT NULL
);
CREATE INDEX tasks_ready ON tasks (status, priority DESC, id);
CREATE INDEX tasks_claim ON tasks (claim_session) WHERE status = 'active';

CREATE TABLE task_deps (
    task INTEGER NOT NULL REFERENCES tasks (id),
    dep  INTEGER NOT NULL REFERENCES tasks (id),
    PRIMARY KEY (task, dep)
) WITHOUT ROWID;
CREATE INDEX task_deps_dep ON task_deps (dep);

CREATE TABLE task_files (
    task INTEGER NOT NULL REFERENCES tasks (id),
    path TEXT NOT NULL,
    PRIMARY KEY (task, path)
) WITHOUT ROWID;

CREATE TABLE task_history (
    id        INTEGER PRIMARY KEY,
    task      INTEGER NOT NULL REFERENCES tasks (id),
    at_ms     INTEGER NOT NULL,
    from_st   TEXT,
    to_st     TEXT NOT NULL,
    session   TEXT,
    note      TEXT
);
CREATE INDEX task_history_task ON task_history (task, id);

CREATE TABLE sessions (
    id               TEXT PRIMARY KEY,
    name             TEXT NOT NULL,
    state            TEXT NOT NULL,
    registered_at_ms INTEGER NOT NULL,
    ended_at_ms      INTEGER
);

CREATE TABLE locks (
    path       TEXT NOT NULL,
    session    TEXT NOT NULL,
    mode       TEXT NOT NULL,
    token      INTEGER NOT NULL,
    granted_ms INTEGER NOT NULL,
    PRIMARY KEY (path, session, mode)
) WITHOUT ROWID;

CREATE TABLE lock_tokens (
    path TEXT PRIMARY KEY,
    last INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE events (
    id    INTEGER PRIMARY KEY,
    at_ms INTEGER NOT NULL,
    kind  TEXT NOT NULL,
    data  TEXT NOT NULL
);

CREATE TABLE counters (
    name  TEXT PRIMARY KEY,
    value INTEGER NOT NULL
) WITHOUT ROWID;
