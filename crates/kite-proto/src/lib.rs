//! kite-proto
