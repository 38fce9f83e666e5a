//! Services: parts of the daemon beside the state owner that answer their own operations on the
//! same socket (today the memory component: `memory.*`). A connection routes a request by its
//! operation's name; a service takes it without blocking and answers later from its own thread,
//! so a slow embedding never holds up the state owner or the other connections. Replies carry
//! the request's id, so a client matches them whatever order they arrive in.

use kite_proto::{ErrorBody, Request, ServerMessage};
use serde_json::Value;
use std::path::Path;
use std::sync::Arc;
use crate::outbound::Outbound;

/// A part of the daemon that answers some operations itself.
pub trait Service: Send + Sync + 'static {
    /// The operations it answers.
    fn ops(&self) -> &'static [&'static str];
    /// Takes one request and answers it through `reply`, now or later, from any thread. Must
    /// not block: a service queues what it cannot answer at once, and refuses (busy) when its
    /// queue is full.
    fn submit(&self, req: Request, reply: Reply);
}

/// Where a service's answer goes: the connection that asked.
pub struct Reply {
    id: u64,
    out: Outbound,
}

impl Reply {
    pub(crate) fn new(id: u64, out: Outbound) -> Reply {
        Reply { id, out }
    }

    /// Sends the answer; a connection that has gone away is not an error.
    pub fn send(self, result: Result<Value, ErrorBody>) {
        self.out.send(ServerMessage::Reply { id: Some(self.id), result }.encode());
        self.out.handled();
    }
}

/// The priority lane: `hello` is answered by the connection that reads it, from what does not
/// change while the daemon runs, so a client checking that the daemon is up never waits behind
/// the state owner's batch (a thousand lock waiters arriving at once kept `hello` 45 ms at p99).
pub(crate) struct Door {
    hello: Value,
}

impl Door {
    pub(crate) fn new(root: &Path, home: &Path) -> Door {
        Door { hello: serde_json::to_value(hello(root, home)).unwrap_or_default() }
    }
}

/// What `hello` answers: this daemon, its protocol and the repository it serves.
pub(crate) fn hello(root: &Path, home: &Path) -> kite_proto::ops::Hello {
    kite_proto::ops::Hello {
        version: env!("CARGO_PKG_VERSION").to_string(),
        protocol: kite_proto::PROTOCOL_VERSION,
        pid: std::process::id(),
        root: root.display().to_string(),
        home: home.display().to_string(),
    }
}

impl Service for Door {
    fn ops(&self) -> &'static [&'static str] {
        &["hello"]
    }

    fn submit(&self, req: Request, reply: Reply) {
        // As strict as the owner: `hello` takes no arguments.
        let parsed = kite_proto::request::parse_args::<<kite_proto::op::Hello as kite_proto::Operation>::Args>(&req.op, req.args.as_deref());
        reply.send(parsed.map(|_| self.hello.clone()));
    }
}

/// The services of one daemon, looked up by operation.
#[derive(Clone, Default)]
pub struct Services {
    all: Vec<Arc<dyn Service>>,
}

impl Services {
    pub fn new(all: Vec<Arc<dyn Service>>) -> Services {
        Services { all }
    }

    /// These services with `first` in front of them.
    pub(crate) fn with_first(mut self, first: Arc<dyn Service>) -> Services {
        self.all.insert(0, first);
        self
    }

    /// The service that answers `op`, if any.
    pub(crate) fn route(&self, op: &str) -> Option<&Arc<dyn Service>> {
        self.all.iter().find(|s| s.ops().contains(&op))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Echo;
    impl Service for Echo {
        fn ops(&self) -> &'static [&'static str] {
            &["echo.say"]
        }
        fn submit(&self, req: Request, reply: Reply) {
            std::thread::spawn(move || reply.send(Ok(serde_json::from_str(req.args.unwrap().get()).unwrap())));
        }
    }

    #[tokio::test]
    async fn a_request_is_routed_by_its_op_and_answered_from_another_thread() {
        let services = Services::new(vec![Arc::new(Echo)]);
        assert!(services.route("task.create").is_none());
        let (tx, mut rx) = crate::outbound::channel();
        let req = kite_proto::frame::parse_request(r#"{"id": 7, "op": "echo.say", "args": {"x": 1}}"#).unwrap();
        services.route("echo.say").unwrap().submit(req, Reply::new(7, tx));
        let line = rx.recv().await.unwrap();
        assert_eq!(line, r#"{"id":7,"ok":true,"result":{"x":1}}"#);
    }

    #[tokio::test]
    async fn the_door_answers_hello_itself_and_as_strictly_as_the_owner() {
        let services = Services::new(vec![Arc::new(Echo)]).with_first(Arc::new(Door::new(Path::new("/r"), Path::new("/r/.kite"))));
        let (tx, mut rx) = crate::outbound::channel();
        let req = kite_proto::frame::parse_request(r#"{"id": 1, "op": "hello"}"#).unwrap();
        services.route("hello").expect("the door takes hello").submit(req, Reply::new(1, tx.clone()));
        let v: Value = serde_json::from_str(&rx.recv().await.unwrap()).unwrap();
        assert_eq!((v["result"]["root"].as_str(), v["result"]["protocol"].as_u64()), (Some("/r"), Some(kite_proto::PROTOCOL_VERSION as u64)));
        let req = kite_proto::frame::parse_request(r#"{"id": 2, "op": "hello", "args": {"surprise": 1}}"#).unwrap();
        services.route("hello").unwrap().submit(req, Reply::new(2, tx));
        let v: Value = serde_json::from_str(&rx.recv().await.unwrap()).unwrap();
        assert_eq!(v["error"]["code"], "bad_request", "{v}");
    }
}
