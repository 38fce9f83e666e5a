//! kite-proto: the wire protocol between the daemon and everyone else, and the one client library
//! that the CLI, the hooks, the MCP server and the scheduler all use. The protocol is described
//! for people in docs/PROTOCOL.md; this crate is its only implementation.

pub mod client;
pub mod event;
pub mod frame;
pub mod ops;
pub mod refusal;
pub mod remote;
pub mod request;

pub use client::{Client, ClientError};
pub use remote::{Endpoint, Remote};
pub use event::{LogEvent, Pushed, SessionEnd};
pub use refusal::Refusal;
pub use request::{memory_op, op, MemoryOp, NoArgs, Op, Operation};
pub use frame::{ErrorBody, ErrorCode, Push, Request, ServerMessage, MAX_FRAME, PROTOCOL_VERSION};
