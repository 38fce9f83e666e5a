//! kite-coord
