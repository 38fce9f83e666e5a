//! kite-mcp
