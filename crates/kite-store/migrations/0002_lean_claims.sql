-- Every start and finish of a task updated this index; the reaper, its only reader, finds a
-- session's active tasks through tasks_ready (status = 'active' is a short range) instead.
DROP INDEX tasks_claim;
