//! What the daemon logs and pushes, typed: every [`LogEvent`] in the event log and every [`Pushed`]
//! message a connection receives, one variant each, with one field name per idea (a reason is
//! `reason` everywhere: a requeue's, a failure's, a release's). The bytes on the wire are what they
//! were: an event is `{id, at_ms, kind, data}` in the log, a push is `{"push": name, "data": ...}`.

use serde::Serialize;
use serde_json::{Map, Value};

use crate::ops::EventKind;

/// How a session's life ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionEnd {
    /// By its own `session.end`.
    Ended,
    /// By the reaper: no heartbeat within the timeout.
    Reaped,
}

impl SessionEnd {
    pub fn as_str(self) -> &'static str {
        match self {
            SessionEnd::Ended => "ended",
            SessionEnd::Reaped => "reaped",
        }
    }
}

impl std::fmt::Display for SessionEnd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A cost record's tokens, as its event shows them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct EventTokens {
    pub input: u64,
    pub output: u64,
    pub cache_creation: u64,
    pub cache_read: u64,
}

macro_rules! events {
    ($( $(#[$doc:meta])* $variant:ident { $( $field:ident : $ty:ty ),* $(,)? } ),* $(,)?) => {
        /// One entry of the event log: its kind and data, typed ([`crate::ops::Event`] is the entry as read back).
        #[derive(Debug, Clone, PartialEq)]
        pub enum LogEvent {
            $( $(#[$doc])* $variant { $( $field: $ty ),* }, )*
        }

        impl LogEvent {
            /// Its kind in the log.
            pub fn kind(&self) -> EventKind {
                match self {
                    $( LogEvent::$variant { .. } => EventKind::$variant, )*
                }
            }

            /// Its data in the log: the variant's fields, by name, in order.
            pub fn data(&self) -> Value {
                let mut m = Map::new();
                match self {
                    $( LogEvent::$variant { $( $field ),* } => {
                        $( m.insert(stringify!($field).to_string(), serde_json::to_value($field).unwrap_or(Value::Null)); )*
                    } )*
                }
                Value::Object(m)
            }
        }
    };
}

events! {
    TaskCreated { task: i64, title: String, depends_on: Vec<i64> },
    TaskDepended { task: i64, on: i64 },
    TaskStarted { task: i64, session: String, claim: u64, attempt: u32 },
    TaskDone { task: i64, session: String },
    TaskFailed { task: i64, session: String, reason: String },
    /// Back to pending: a transient failure, or its session ended or was reaped.
    TaskRequeued { task: i64, session: String, reason: String, attempts: u32 },
    TaskPruned { task: i64, reason: String, details: Option<Value> },
    LockGranted { path: String, session: String, mode: kite_core::LockMode, token: u64 },
    /// `reason`: why it was released other than by its holder (its session ended or was reaped).
    LockReleased { path: String, session: String, reason: Option<String> },
    SessionRegistered { session: String, name: String },
    SessionEnded { session: String, name: String, released: Vec<String>, requeued: Vec<i64> },
    SessionReaped { session: String, name: String, released: Vec<String>, requeued: Vec<i64> },
    Broadcast { message: String, from: Option<String>, at_ms: i64 },
    CostRecorded { session: String, task: Option<i64>, attempt: Option<u32>, source: String, usd: f64, tokens: EventTokens },
    Message { to: String, from: Option<String>, text: String, at_ms: i64 },
    LockAsked { path: String, by: String, holders: Vec<String> },
    SessionStopOrdered { session: String, reason: String },
    Merge { task: i64, state: kite_core::MergeState, detail: String },
}

/// What the daemon pushes to a connection, unasked.
#[derive(Debug, Clone, PartialEq)]
pub enum Pushed {
    /// A broadcast, to every live session's connections.
    Broadcast { message: String, from: Option<String>, at_ms: i64 },
    /// A message to one session.
    Message { to: String, from: Option<String>, text: String, at_ms: i64 },
    /// A lock this session waited for, granted (to its connections other than the waiting one).
    LockGranted(crate::ops::LockGranted),
    /// An event of the log, to a connection following it (`events.follow`).
    Event(Value),
}

impl Pushed {
    /// The push's name on the wire.
    pub fn name(&self) -> &'static str {
        match self {
            Pushed::Broadcast { .. } => "broadcast",
            Pushed::Message { .. } => "message",
            Pushed::LockGranted(_) => "lock.granted",
            Pushed::Event(_) => "event",
        }
    }

    /// The frame it goes out as.
    pub fn frame(&self) -> crate::Push {
        let data = match self {
            Pushed::Broadcast { message, from, at_ms } => serde_json::json!({"message": message, "from": from, "at_ms": at_ms}),
            Pushed::Message { to, from, text, at_ms } => serde_json::json!({"to": to, "from": from, "text": text, "at_ms": at_ms}),
            Pushed::LockGranted(g) => serde_json::to_value(g).unwrap_or(Value::Null),
            Pushed::Event(v) => v.clone(),
        };
        crate::Push { push: self.name().to_string(), data }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_is_its_kind_and_its_fields_by_name_in_order() {
        let e = LogEvent::TaskRequeued { task: 3, session: "s1".into(), reason: "session s1 reaped".into(), attempts: 2 };
        assert_eq!(e.kind(), EventKind::TaskRequeued);
        assert_eq!(e.kind().as_str(), "task.requeued");
        assert_eq!(serde_json::to_string(&e.data()).unwrap(), r#"{"task":3,"session":"s1","reason":"session s1 reaped","attempts":2}"#);
        let m = LogEvent::Merge { task: 1, state: kite_core::MergeState::NoChanges, detail: String::new() };
        assert_eq!(m.kind().as_str(), "merge");
        assert_eq!(m.data()["state"], "no_changes");
    }

    #[test]
    fn a_push_keeps_its_wire_name_and_shape() {
        let p = Pushed::Message { to: "s2".into(), from: None, text: "hi".into(), at_ms: 5 };
        let f = p.frame();
        assert_eq!((f.push.as_str(), f.data["text"].as_str()), ("message", Some("hi")));
        assert_eq!(Pushed::Event(Value::Null).name(), "event");
    }
}
