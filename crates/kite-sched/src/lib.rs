//! kite-sched
