-- What agent attempts and people's Claude Code sessions cost, one row each. No foreign key to
-- tasks: retention archives old tasks, and their costs stay (today's and lifetime totals count
-- them). The lifetime totals are counters (written with the batch); these rows are for a task's
-- own costs and for today's totals, hence the two indexes.
CREATE TABLE costs (
    id                          INTEGER PRIMARY KEY,
    at_ms                       INTEGER NOT NULL,
    session                     TEXT NOT NULL,
    task_id                     INTEGER,
    attempt                     INTEGER,
    source                      TEXT NOT NULL,
    usd                         REAL NOT NULL DEFAULT 0,
    input_tokens                INTEGER NOT NULL DEFAULT 0,
    output_tokens               INTEGER NOT NULL DEFAULT 0,
    cache_creation_input_tokens INTEGER NOT NULL DEFAULT 0,
    cache_read_input_tokens     INTEGER NOT NULL DEFAULT 0,
    model                       TEXT,
    turns                       INTEGER NOT NULL DEFAULT 0,
    duration_ms                 INTEGER NOT NULL DEFAULT 0,
    agent_session               TEXT,
    outcome                     TEXT,
    -- A JSON array of model ids the price table did not know.
    unpriced                    TEXT NOT NULL DEFAULT '[]'
);
CREATE INDEX costs_task ON costs (task_id);
CREATE INDEX costs_at ON costs (at_ms);
