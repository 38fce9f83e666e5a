//! Frames: newline-delimited JSON, one object per line, at most [`MAX_FRAME`] bytes. A request
//! carries a client-chosen id; its reply carries the same id; pushed events carry none and name
//! their event instead. Keeping the envelope this small lets a person debug the socket with `socat`.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use crate::refusal::Refusal;

/// Bumped when a request or reply changes incompatibly.
pub const PROTOCOL_VERSION: u32 = 1;

/// The largest frame either side accepts, newline excluded. Larger frames are refused before
/// they are buffered whole.
pub const MAX_FRAME: usize = 1 << 20;

/// A client's request as it arrives: the operation's name and its arguments still as raw JSON,
/// parsed strictly by the part of the daemon that answers it ([`crate::Op::parse`]).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Request {
    pub id: u64,
    pub op: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub args: Option<Box<serde_json::value::RawValue>>,
}

/// Machine-readable error kinds; the message says the rest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The frame is not a request: not JSON, missing fields, wrong types.
    BadRequest,
    /// The frame is larger than [`MAX_FRAME`].
    TooLarge,
    UnknownOp,
    NotFound,
    /// A lock is held by someone else.
    Busy,
    Deadlock,
    /// A dependency is not done.
    Blocked,
    /// A dependency would close a cycle.
    Cycle,
    /// The caller's claim on a task was reaped or taken over.
    Fenced,
    InvalidTransition,
    OutsideRoot,
    Timeout,
    /// The session was reaped or ended.
    SessionGone,
    /// A remote connection without a valid token, or asking for what only the local socket may.
    Unauthorized,
    /// A name already in use (a live token's).
    Exists,
    Internal,
    #[serde(other)]
    Unknown,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BadRequest => "bad_request",
            ErrorCode::TooLarge => "too_large",
            ErrorCode::UnknownOp => "unknown_op",
            ErrorCode::NotFound => "not_found",
            ErrorCode::Busy => "busy",
            ErrorCode::Deadlock => "deadlock",
            ErrorCode::Blocked => "blocked",
            ErrorCode::Cycle => "cycle",
            ErrorCode::Fenced => "fenced",
            ErrorCode::InvalidTransition => "invalid_transition",
            ErrorCode::OutsideRoot => "outside_root",
            ErrorCode::Timeout => "timeout",
            ErrorCode::SessionGone => "session_gone",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::Exists => "exists",
            ErrorCode::Internal => "internal",
            ErrorCode::Unknown => "unknown",
        }
    }
}

/// An error reply's body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, thiserror::Error)]
#[error("{message}")]
pub struct ErrorBody {
    pub code: ErrorCode,
    pub message: String,
}

impl ErrorBody {
    /// A body from parts, for clients and tests; the daemon builds its bodies from a
    /// [`crate::Refusal`], so each failure has one code and one sentence.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> ErrorBody {
        ErrorBody { code, message: message.into() }
    }
}

/// An event the daemon sends without being asked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Push {
    pub push: String,
    #[serde(default)]
    pub data: Value,
}

/// Anything the daemon writes on a connection.
#[derive(Debug, Clone, PartialEq)]
pub enum ServerMessage {
    Reply { id: Option<u64>, result: Result<Value, ErrorBody> },
    Push(Push),
}

/// The on-the-wire shape of a server line, covering replies and pushes.
#[derive(Deserialize)]
struct WireLine {
    #[serde(default)]
    id: Option<u64>,
    #[serde(default)]
    ok: Option<bool>,
    #[serde(default)]
    result: Option<Value>,
    #[serde(default)]
    error: Option<ErrorBody>,
    #[serde(default)]
    push: Option<String>,
    #[serde(default)]
    data: Option<Value>,
}

/// The same shape, borrowed, for writing: encoding a reply never copies its value.
#[derive(Serialize)]
struct WireLineRef<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ok: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    result: Option<&'a Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a ErrorBody>,
    #[serde(skip_serializing_if = "Option::is_none")]
    push: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<&'a Value>,
}

impl ServerMessage {
    /// One line of JSON, without the newline.
    pub fn encode(&self) -> String {
        let none = WireLineRef { id: None, ok: None, result: None, error: None, push: None, data: None };
        let line = match self {
            ServerMessage::Reply { id, result: Ok(v) } => WireLineRef { id: *id, ok: Some(true), result: Some(v), ..none },
            ServerMessage::Reply { id, result: Err(e) } => WireLineRef { id: *id, ok: Some(false), error: Some(e), ..none },
            ServerMessage::Push(p) => WireLineRef { push: Some(&p.push), data: Some(&p.data), ..none },
        };
        serde_json::to_string(&line).expect("JSON values always serialize")
    }

    pub fn decode(line: &str) -> Result<ServerMessage, String> {
        let w: WireLine = serde_json::from_str(line).map_err(|e| format!("malformed frame from daemon: {e}"))?;
        if let Some(push) = w.push {
            return Ok(ServerMessage::Push(Push { push, data: w.data.unwrap_or(Value::Null) }));
        }
        match (w.ok, w.error) {
            (Some(false), Some(e)) => Ok(ServerMessage::Reply { id: w.id, result: Err(e) }),
            (Some(true), _) => Ok(ServerMessage::Reply { id: w.id, result: Ok(w.result.unwrap_or(Value::Null)) }),
            _ => Err("malformed frame from daemon: neither a reply nor a push".to_string()),
        }
    }
}

/// Parses a client line into a request, with the error reply to send if it is not one. The id is
/// recovered when possible so the client can match the error to its request.
pub fn parse_request(line: &str) -> Result<Request, (Option<u64>, ErrorBody)> {
    // The common case in one pass; only a bad frame is parsed a second time, to say why.
    serde_json::from_str::<Request>(line).map_err(|e| match serde_json::from_str::<Value>(line) {
        Err(e) => (None, Refusal::NotJson(e.to_string()).into()),
        Ok(v) => (
            v.get("id").and_then(Value::as_u64),
            Refusal::NotRequest(e.to_string()).into(),
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn replies_and_pushes_round_trip() {
        for m in [
            ServerMessage::Reply { id: Some(7), result: Ok(json!({"a": 1})) },
            ServerMessage::Reply { id: None, result: Err(ErrorBody::new(ErrorCode::TooLarge, "big")) },
            ServerMessage::Push(Push { push: "lock.granted".into(), data: json!({"token": 3}) }),
        ] {
            assert_eq!(ServerMessage::decode(&m.encode()).unwrap(), m);
        }
    }

    #[test]
    fn malformed_requests_say_what_is_wrong_and_keep_the_id() {
        let (id, e) = parse_request("{nope").unwrap_err();
        assert_eq!((id, e.code), (None, ErrorCode::BadRequest));
        let (id, e) = parse_request(r#"{"id": 4, "args": {}}"#).unwrap_err();
        assert_eq!(id, Some(4));
        assert!(e.message.contains("op"), "{}", e.message);
        let r = parse_request(r#"{"id": 5, "op": "status"}"#).unwrap();
        assert_eq!((r.id, r.op.as_str()), (5, "status"));
    }

    #[test]
    fn unknown_error_codes_from_a_newer_daemon_still_decode() {
        let m = ServerMessage::decode(r#"{"id":1,"ok":false,"error":{"code":"brand_new","message":"x"}}"#).unwrap();
        assert!(matches!(m, ServerMessage::Reply { result: Err(ErrorBody { code: ErrorCode::Unknown, .. }), .. }));
    }
}
