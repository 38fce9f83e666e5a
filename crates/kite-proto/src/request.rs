//! The typed protocol: every operation once, with its name on the wire, its arguments and its
//! reply type. The daemon parses a request into [`Op`] (or [`MemoryOp`]) and matches it
//! exhaustively, so a new operation is a compile error until every side handles it; the client
//! sends an [`Operation`] and gets its reply type back. The bytes on the wire are unchanged
//! (`{"id", "op", "args"}`); a test keeps docs/PROTOCOL.md's tables and these lists equal.
//!
//! Arguments are parsed strictly, as docs/PROTOCOL.md says: `args` must be an object (an array
//! would fill a struct positionally), unknown and duplicate keys are refused, and no text may
//! carry a NUL character.

use crate::frame::ErrorBody;
use crate::refusal::Refusal;
use crate::ops;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::Value;

/// No arguments: anything given is refused.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoArgs {}

/// An operation as the client sees it.
pub trait Operation {
    const NAME: &'static str;
    type Args: Serialize + DeserializeOwned + Send;
    type Reply: DeserializeOwned + Serialize;
}

macro_rules! operations {
    ($(#[$doc:meta])* enum $enum:ident; const $list:ident; mod $markers:ident; { $( $name:literal => $variant:ident($args:ty) -> $reply:ty; )* }) => {
        $(#[$doc])*
        #[derive(Debug, Clone)]
        pub enum $enum {
            $( $variant($args), )*
        }

        /// Every operation's name, in the order docs/PROTOCOL.md lists them.
        pub const $list: &[&str] = &[$($name),*];

        impl $enum {
            /// The operation's name on the wire.
            pub fn name(&self) -> &'static str {
                match self {
                    $( $enum::$variant(_) => $name, )*
                }
            }

            /// Parses an operation from its name and raw arguments (strictly: see the module).
            pub fn parse(op: &str, args: Option<&RawValue>) -> Result<$enum, ErrorBody> {
                match op {
                    $( $name => Ok($enum::$variant(parse_args(op, args)?)), )*
                    other => Err(Refusal::UnknownOp { op: other.to_string(), known: $list.join(", ") }.into()),
                }
            }
        }

        /// One marker type per operation, naming its arguments and its reply for the client.
        pub mod $markers {
            #[allow(unused_imports)]
            use super::*;
            $(
                #[doc = concat!("`", $name, "`")]
                pub struct $variant;
                impl Operation for $variant {
                    const NAME: &'static str = $name;
                    type Args = $args;
                    type Reply = $reply;
                }
            )*
        }
    };
}

operations! {
    /// The operations the state owner answers.
    enum Op; const OPS; mod op; {
        "hello" => Hello(NoArgs) -> ops::Hello;
        "status" => Status(NoArgs) -> ops::Status;
        "session.register" => SessionRegister(ops::SessionRegister) -> ops::SessionId;
        "session.attach" => SessionAttach(ops::SessionRef) -> Value;
        "session.heartbeat" => SessionHeartbeat(ops::SessionRef) -> Value;
        "session.end" => SessionEnd(ops::SessionRef) -> Value;
        "session.list" => SessionList(NoArgs) -> ops::Sessions;
        "task.create" => TaskCreate(ops::TaskCreate) -> ops::TaskCreated;
        "task.depend" => TaskDepend(ops::TaskDepend) -> kite_core::Task;
        "task.list" => TaskList(ops::TaskList) -> ops::Tasks;
        "task.show" => TaskShow(ops::TaskRef) -> ops::TaskDetail;
        "task.start" => TaskStart(ops::TaskStart) -> ops::Claim;
        "task.next" => TaskNext(ops::TaskNext) -> Option<ops::Claim>;
        "task.done" => TaskDone(ops::TaskFinish) -> kite_core::Task;
        "task.fail" => TaskFail(ops::TaskFinish) -> kite_core::Task;
        "task.prune" => TaskPrune(ops::TaskPrune) -> kite_core::Task;
        "lock.acquire" => LockAcquire(ops::LockAcquire) -> ops::LockGranted;
        "lock.release" => LockRelease(ops::LockRelease) -> ops::Released;
        "lock.list" => LockList(NoArgs) -> ops::Locks;
        "broadcast" => Broadcast(ops::Broadcast) -> ops::Delivered;
        "events.list" => EventsList(ops::EventsQuery) -> ops::Events;
        "events.follow" => EventsFollow(ops::EventsQuery) -> ops::Events;
        "gc" => Gc(ops::Gc) -> ops::GcReport;
        "cost.record" => CostRecord(ops::CostRecord) -> Value;
        "cost.summary" => CostSummary(NoArgs) -> ops::CostSummary;
        "message" => Message(ops::Message) -> ops::Delivered;
        "lock.ask" => LockAsk(ops::LockAsk) -> ops::Delivered;
        "session.news" => SessionNews(ops::SessionNews) -> ops::News;
        "session.stop" => SessionStop(ops::SessionStop) -> Value;
        "merge.enqueue" => MergeEnqueue(ops::MergeEnqueue) -> kite_core::MergeEntry;
        "merge.step" => MergeStep(ops::MergeStep) -> kite_core::MergeEntry;
        "merge.list" => MergeList(ops::MergeList) -> ops::MergeBook;
        "merge.show" => MergeShow(ops::TaskRef) -> ops::MergeShown;
        "merge.discard" => MergeDiscard(ops::MergeDiscard) -> kite_core::MergeEntry;
        "auth" => Auth(ops::Auth) -> ops::Authed;
        "token.create" => TokenCreate(ops::TokenName) -> ops::TokenCreated;
        "token.revoke" => TokenRevoke(ops::TokenName) -> Value;
        "token.list" => TokenList(NoArgs) -> ops::Tokens;
    }
}

operations! {
    /// The operations the daemon's memory component answers, on its own thread.
    enum MemoryOp; const MEMORY_OPS; mod memory_op; {
        "memory.recall" => Recall(ops::MemoryRecall) -> ops::Recalled;
        "memory.inject" => Inject(ops::MemoryInject) -> ops::Injection;
        "memory.add" => Add(ops::MemoryAdd) -> Value;
        "memory.poke" => Poke(NoArgs) -> Value;
    }
}

fn bad(op: &str, why: impl std::fmt::Display) -> ErrorBody {
    Refusal::BadArgs { op: op.to_string(), why: why.to_string() }.into()
}

/// Whether JSON text holds an escaped NUL (`\u0000`) that is not itself an escaped backslash
/// followed by `u0000`.
fn has_escaped_nul(text: &str) -> bool {
    let b = text.as_bytes();
    let mut i = 0;
    while i + 1 < b.len() {
        if b[i] == b'\\' {
            if b[i + 1] == b'u' && b.len() >= i + 6 && &b[i + 2..i + 6] == b"0000" {
                return true;
            }
            i += 2; // skip the escaped character, whatever it is
        } else {
            i += 1;
        }
    }
    false
}

/// Parses one operation's arguments: absent or `null` means `{}`; anything but an object is
/// refused, as are unknown keys, duplicate keys and NUL characters.
pub fn parse_args<T: DeserializeOwned>(op: &str, args: Option<&RawValue>) -> Result<T, ErrorBody> {
    let text = args.map(RawValue::get).unwrap_or("{}").trim();
    let text = if text == "null" { "{}" } else { text };
    if !text.starts_with('{') {
        return Err(bad(op, "args must be a JSON object"));
    }
    if has_escaped_nul(text) {
        return Err(bad(op, "text may not contain a NUL character (\\u0000)"));
    }
    serde_json::from_str(text).map_err(|e| bad(op, e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::ErrorCode;

    fn raw(s: &str) -> Box<RawValue> {
        RawValue::from_string(s.to_string()).unwrap()
    }

    #[test]
    fn arguments_are_parsed_strictly() {
        assert!(matches!(Op::parse("hello", None), Ok(Op::Hello(_))));
        assert!(matches!(Op::parse("hello", Some(&raw("null"))), Ok(Op::Hello(_))));
        for (op, args, why) in [
            ("hello", r#"{"x": 1}"#, "unknown field"),
            ("lock.list", r#"{"x": 1}"#, "unknown field"),
            ("task.create", r#"["positional title"]"#, "must be a JSON object"),
            ("task.create", r#"{"title": "a", "title": "b"}"#, "duplicate field"),
            ("task.create", r#"{"title": "a\u0000b"}"#, "NUL"),
            ("task.create", r#"{"title": 7}"#, "invalid type"),
        ] {
            let e = Op::parse(op, Some(&raw(args))).unwrap_err();
            assert_eq!(e.code, ErrorCode::BadRequest, "{op} {args}");
            assert!(e.message.contains(why) && e.message.contains(op), "{op} {args}: {}", e.message);
        }
        // An escaped backslash before "u0000" is text, not a NUL.
        let Op::TaskCreate(t) = Op::parse("task.create", Some(&raw(r#"{"title": "a\\u0000b"}"#))).unwrap() else { panic!() };
        assert_eq!(t.title, "a\\u0000b");
        let e = Op::parse("task.nope", None).unwrap_err();
        assert_eq!(e.code, ErrorCode::UnknownOp);
        assert!(e.message.contains("task.create"), "names the known ops: {}", e.message);
    }

    #[test]
    fn every_op_parses_back_to_its_own_name() {
        for name in OPS {
            if let Ok(op) = Op::parse(name, None) {
                assert_eq!(op.name(), *name);
            }
        }
        assert_eq!(MemoryOp::parse("memory.poke", None).unwrap().name(), "memory.poke");
        assert_eq!(<op::TaskCreate as Operation>::NAME, "task.create");
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 4000, ..Default::default() })]

        /// The request parser, fed arbitrary lines, never panics: a frame is a request or an
        /// error, and a request's arguments parse or are refused.
        #[test]
        fn arbitrary_frames_never_panic(line in "\\PC{0,200}") {
            if let Ok(req) = crate::frame::parse_request(&line) {
                let _ = Op::parse(&req.op, req.args.as_deref());
                let _ = MemoryOp::parse(&req.op, req.args.as_deref());
            }
        }

        /// Frames shaped like requests, with every operation and JSON-ish arguments.
        #[test]
        fn request_shaped_frames_never_panic(op in 0usize..25, id in proptest::prelude::any::<u64>(), args in "[{}\\[\\]\":,a-z0-9 \\\\u.-]{0,80}") {
            let names: Vec<&str> = OPS.iter().chain(MEMORY_OPS).copied().collect();
            let line = format!("{{\"id\": {id}, \"op\": \"{}\", \"args\": {args}}}", names[op % names.len()]);
            if let Ok(req) = crate::frame::parse_request(&line) {
                let _ = Op::parse(&req.op, req.args.as_deref());
                let _ = MemoryOp::parse(&req.op, req.args.as_deref());
            }
        }
    }

    /// docs/PROTOCOL.md's operation tables list exactly these operations.
    #[test]
    fn protocol_md_and_the_enums_agree() {
        let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/PROTOCOL.md")).unwrap();
        let mut documented: Vec<&str> = doc
            .lines()
            .filter_map(|l| l.strip_prefix("| `"))
            .filter_map(|l| l.split('`').next())
            .filter(|op| op.chars().all(|c| c.is_ascii_lowercase() || c == '.'))
            .collect();
        documented.sort();
        let mut known: Vec<&str> = OPS.iter().chain(MEMORY_OPS).copied().collect();
        known.sort();
        assert_eq!(documented, known, "docs/PROTOCOL.md and kite-proto's operations differ");
    }
}
