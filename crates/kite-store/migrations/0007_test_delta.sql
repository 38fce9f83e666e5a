-- What a landing did to the tests: its verify run read with kite's test report readers and compared
-- with the target's last verify run. JSON, `{passed, failed, baseline, by_name, added, now_pass,
-- broke, removed, ...names, unreadable}`, on the landed entry.
ALTER TABLE merge_entries ADD COLUMN tests TEXT;
