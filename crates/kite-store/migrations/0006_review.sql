-- The review gate's findings on a landing ([merge] review): JSON, `{outcome, findings: [{severity,
-- file, line, what}]}`, on the entry the review judged (landed, or blocked and sent back).
ALTER TABLE merge_entries ADD COLUMN review TEXT;
