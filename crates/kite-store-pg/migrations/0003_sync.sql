-- One row the daemon's durability connection updates, in a transaction of its own committed
-- with synchronous_commit = on: that commit flushes the WAL past every commit made before it,
-- the batches' own (asynchronous) ones included. See kite_store_pg::sync.
CREATE TABLE kite_sync (
    id INT PRIMARY KEY,
    n  BIGINT NOT NULL
);
INSERT INTO kite_sync (id, n) VALUES (1, 0);

-- Fails the statement (and so the transaction) with `why` unless `ok`. A batch's statements are
-- pipelined with its COMMIT; a condition the daemon relies on (the lease's epoch, a task row as
-- it remembers it) is checked by the server, so that a failed one makes COMMIT roll back.
CREATE FUNCTION kite_check(ok BOOLEAN, why TEXT) RETURNS VOID LANGUAGE plpgsql AS $$
BEGIN
    IF ok IS NOT TRUE THEN
        RAISE EXCEPTION '%', why;
    END IF;
END
$$;

-- A history row's task is checked by the daemon, which writes every row; the foreign key made
-- the server lock each task row again for every history row it inserted (a third of a batch's
-- time on the server, measured). Retention removes a task's history before the task.
ALTER TABLE task_history DROP CONSTRAINT task_history_task_fkey;

-- Lock requests waiting their turn, with when they first queued: a daemon taking over puts them
-- back as kept places, first come first (kite_core::locks::LockTable::restore_waits).
CREATE TABLE lock_waits (
    path     TEXT NOT NULL,
    session  TEXT NOT NULL,
    mode     TEXT NOT NULL,
    since_ms BIGINT NOT NULL,
    seq      BIGINT GENERATED ALWAYS AS IDENTITY,
    PRIMARY KEY (path, session, mode)
);
