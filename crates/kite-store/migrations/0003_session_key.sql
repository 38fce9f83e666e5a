-- One kite session per agent process: a Claude Code session's hook and its MCP server register
-- with the same key and get the same session.
ALTER TABLE sessions ADD COLUMN key TEXT;
