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

-- A batch's status changes, one statement from the daemon: each row changed by its primary key
-- (a plan that stays an index look-up however large the table grows; a join of the batch's
-- rows with `tasks`, planned while the table was small, became a sequential scan), and only if
-- the row is still as the daemon remembers it.
CREATE FUNCTION kite_change_tasks(p_ids BIGINT[], p_statuses TEXT[], p_sessions TEXT[], p_tokens BIGINT[],
                                  p_attempts BIGINT[], p_results TEXT[], p_reasons TEXT[], p_at BIGINT[],
                                  p_was_statuses TEXT[], p_was_tokens BIGINT[]) RETURNS VOID LANGUAGE plpgsql AS $$
BEGIN
    FOR i IN 1 .. coalesce(array_length(p_ids, 1), 0) LOOP
        UPDATE tasks SET status = p_statuses[i], claim_session = p_sessions[i], claim_token = p_tokens[i],
                         attempts = p_attempts[i], result = p_results[i], reason = p_reasons[i], updated_at_ms = p_at[i]
         WHERE id = p_ids[i] AND status = p_was_statuses[i] AND claim_token IS NOT DISTINCT FROM p_was_tokens[i];
        IF NOT FOUND THEN
            RAISE EXCEPTION 'task % changed in the database under this daemon (another writer?); the batch is undone', p_ids[i];
        END IF;
    END LOOP;
END
$$;
