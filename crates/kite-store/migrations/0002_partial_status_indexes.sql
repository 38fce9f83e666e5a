-- Fewer index pages written per commit. Every start and finish of a task moved its entry in
-- tasks_ready (three hot leaves: pending, active, done) and in tasks_claim. What is read by
-- status is only ever 'pending' (the ready-task query) and 'active' (the reaper, per session),
-- so two partial indexes cover every query and finished tasks leave both.
DROP INDEX tasks_claim;
DROP INDEX tasks_ready;
CREATE INDEX tasks_pending ON tasks (priority DESC, id) WHERE status = 'pending';
CREATE INDEX tasks_active ON tasks (claim_session) WHERE status = 'active';
