//! kite-store
