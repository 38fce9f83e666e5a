//! End-to-end tests: the real `kite` binary, the real daemon on a temporary home and socket, a
//! real SQLite file. One test binary, one module per area.

mod support;

mod agents;
mod claude;
mod docs;
mod durability;
mod hooks;
mod install;
mod locks;
mod memory;
mod messages;
mod pg;
mod protocol;
mod remote;
mod sched;
mod sessions;
mod tasks;
mod ui;
mod worker;
