//! kite-memory
