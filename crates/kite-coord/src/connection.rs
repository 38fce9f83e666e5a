//! One client connection: a reader that turns capped newline-delimited frames into requests for
//! the state owner, and a writer that sends replies and pushes in order. A connection that says
//! nothing costs one idle task and stalls no one; a frame over the cap gets an error and is
//! skipped; a connection that drops tells the owner, which cancels its waits (its session lives
//! on until the reaper's timeout).

use crate::outbound;
use crate::service::{Reply, Services};
use crate::state::{Command, StateHandle};
use kite_proto::frame::parse_request;
use kite_proto::{ErrorBody, Refusal, ServerMessage, MAX_FRAME};
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader, BufWriter};

/// Who is at the other end of a connection.
#[derive(Debug, Clone)]
pub(crate) enum Peer {
    /// The local socket: the user who owns the home (the peer check said so).
    Local,
    /// The TCP listener: nothing is answered before `auth` with a valid token, and token
    /// operations never.
    Remote { addr: std::net::SocketAddr, authed: Option<String> },
}

impl Peer {
    /// Whether a request for `op` may go on; the refusal otherwise. `auth` is handled by the
    /// caller.
    fn admits(&self, op: &str, revoked: &crate::state::Revoked) -> Result<(), Refusal> {
        match self {
            Peer::Local => Ok(()),
            Peer::Remote { authed: None, .. } => Err(Refusal::NotAuthenticated),
            Peer::Remote { authed: Some(name), .. } => {
                if revoked.contains(name) {
                    Err(Refusal::TokenRevoked(name.clone()))
                } else if op.starts_with("token.") {
                    Err(Refusal::LocalOnly(op.to_string()))
                } else {
                    Ok(())
                }
            }
        }
    }
}

/// Serves `stream` until the client leaves or the daemon stops.
pub(crate) async fn serve_connection<S>(id: u64, stream: S, mut peer: Peer, state: StateHandle, services: Services)
where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let (read, write) = tokio::io::split(stream);
    let (out_tx, mut out_rx) = outbound::channel();
    state.send(Command::Connect { conn: id, out: out_tx.clone() });

    let mut writer = tokio::spawn(async move {
        let mut w = BufWriter::new(write);
        while let Some(line) = out_rx.recv().await {
            let len = line.len();
            if w.write_all(line.as_bytes()).await.is_err() || w.write_all(b"\n").await.is_err() {
                return;
            }
            out_rx.written(len);
            // Flush when the queue is drained: one syscall for a burst of messages.
            while let Some(line) = out_rx.try_recv() {
                let len = line.len();
                if w.write_all(line.as_bytes()).await.is_err() || w.write_all(b"\n").await.is_err() {
                    return;
                }
                out_rx.written(len);
            }
            if w.flush().await.is_err() {
                return;
            }
        }
    });

    let mut reader = BufReader::new(read);
    let mut buf = Vec::new();
    // The wait for the connection to be dropped for its queue, registered once, not per frame.
    {
        let died = out_tx.died();
        tokio::pin!(died);
        loop {
            // Backpressure: while its replies wait unread, the client's requests are not read.
            if out_tx.full() && !out_tx.room().await {
                break;
            }
            let frame = tokio::select! {
                f = read_frame(&mut reader, &mut buf) => f,
                _ = &mut died => break,
                // The writer ended (the client stopped reading for good): nothing can reach it.
                _ = &mut writer => break,
            };
            match frame {
                Ok(None) => break,
                Ok(Some(Frame::Line(line))) => {
                    if line.trim().is_empty() {
                        continue;
                    }
                    match parse_request(&line) {
                        Ok(req) if req.op == "auth" && matches!(peer, Peer::Remote { .. }) => {
                            let result = authenticate(&state, req.args.as_deref()).await;
                            if let (Ok(name), Peer::Remote { addr, authed }) = (&result, &mut peer) {
                                tracing::info!(%addr, token = %name, "remote client authenticated");
                                *authed = Some(name.clone());
                            }
                            let result = result.map(|name| serde_json::json!({ "name": name })).map_err(ErrorBody::from);
                            out_tx.send(ServerMessage::Reply { id: Some(req.id), result }.encode());
                        }
                        Ok(req) => {
                            // Checked once per request; always admitted on the local socket.
                            if let Err(refusal) = peer.admits(&req.op, state.revoked()) {
                                let revoked = matches!(refusal, Refusal::TokenRevoked(_));
                                out_tx.send(ServerMessage::Reply { id: Some(req.id), result: Err(refusal.into()) }.encode());
                                if revoked {
                                    break;
                                }
                                continue;
                            }
                            out_tx.sent_request();
                            match services.route(&req.op) {
                                Some(service) => {
                                    let reply = Reply::new(req.id, out_tx.clone());
                                    service.submit(req, reply);
                                }
                                None => state.send(Command::Request { conn: id, req }),
                            }
                        }
                        Err((rid, err)) => {
                            out_tx.send(ServerMessage::Reply { id: rid, result: Err(err) }.encode());
                        }
                    }
                }
                Ok(Some(Frame::TooLarge)) => {
                    let err = ErrorBody::from(Refusal::FrameTooLarge);
                    out_tx.send(ServerMessage::Reply { id: None, result: Err(err) }.encode());
                }
                Ok(Some(Frame::NotUtf8)) => {
                    let err = ErrorBody::from(Refusal::NotUtf8);
                    out_tx.send(ServerMessage::Reply { id: None, result: Err(err) }.encode());
                }
                Err(e) => {
                    tracing::debug!(conn = id, "connection read error: {e}");
                    break;
                }
            }
        }
    }
    state.send(Command::Disconnect { conn: id });
    if out_tx.is_dead() {
        // Dropped for not reading: do not wait for a write that will never finish; aborting
        // the writer frees what was queued for it.
        writer.abort();
        return;
    }
    drop(out_tx);
    // The writer ends once the owner drops its sender too; give it the chance to flush.
    if !writer.is_finished() {
        let _ = writer.await;
    }
}

/// Checks an `auth` request's token with the state owner: the token's name, or why not.
async fn authenticate(state: &StateHandle, args: Option<&serde_json::value::RawValue>) -> Result<String, Refusal> {
    let token = args
        .and_then(|a| serde_json::from_str::<kite_proto::ops::Auth>(a.get()).ok())
        .map(|a| a.token)
        .ok_or_else(|| Refusal::BadArgs { op: "auth".into(), why: "expected {\"token\": \"...\"}".into() })?;
    let (tx, rx) = tokio::sync::oneshot::channel();
    state.send(Command::Authenticate { hash: crate::tokens::hash(&token), reply: tx });
    rx.await.unwrap_or_else(|_| Err(Refusal::internal("the daemon is stopping")))
}

/// What one read from the socket produced.
#[derive(Debug, PartialEq)]
pub(crate) enum Frame {
    Line(String),
    /// A line over [`MAX_FRAME`]: its bytes were read and dropped, never buffered whole.
    TooLarge,
    NotUtf8,
}

/// Reads one newline-terminated frame, buffering at most [`MAX_FRAME`] bytes of it. `None` at a
/// clean end of stream; a frame cut off by the end of the stream is dropped.
pub(crate) async fn read_frame<R: AsyncBufRead + Unpin>(r: &mut R, buf: &mut Vec<u8>) -> std::io::Result<Option<Frame>> {
    buf.clear();
    let mut over = false;
    loop {
        let chunk = r.fill_buf().await?;
        if chunk.is_empty() {
            return Ok(None);
        }
        let (take, done) = match chunk.iter().position(|b| *b == b'\n') {
            Some(i) => (i, true),
            None => (chunk.len(), false),
        };
        if !over {
            if buf.len() + take > MAX_FRAME {
                over = true;
                buf.clear();
            } else {
                buf.extend_from_slice(&chunk[..take]);
            }
        }
        r.consume(if done { take + 1 } else { take });
        if done {
            if over {
                return Ok(Some(Frame::TooLarge));
            }
            return Ok(Some(match String::from_utf8(std::mem::take(buf)) {
                Ok(s) => Frame::Line(s),
                Err(_) => Frame::NotUtf8,
            }));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 500, ..Default::default() })]

        /// The frame decoder, fed arbitrary bytes (long lines, no newline, invalid UTF-8), never
        /// panics, never holds a frame over the cap, and ends at the end of the input.
        #[test]
        fn arbitrary_bytes_decode_into_capped_frames(chunks in proptest::collection::vec(
            proptest::prop_oneof![
                proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64),
                proptest::collection::vec(proptest::prelude::Just(b'x'), MAX_FRAME - 8..MAX_FRAME + 8),
                proptest::prelude::Just(b"\n".to_vec()),
            ],
            0..8,
        )) {
            let input: Vec<u8> = chunks.concat();
            let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
            rt.block_on(async {
                let mut r = BufReader::new(&input[..]);
                let mut buf = Vec::new();
                let mut frames = 0;
                while let Some(f) = read_frame(&mut r, &mut buf).await.unwrap() {
                    if let Frame::Line(l) = &f {
                        assert!(l.len() <= MAX_FRAME);
                    }
                    frames += 1;
                    assert!(frames <= input.len() + 1);
                }
            });
        }
    }

    #[tokio::test]
    async fn frames_are_split_capped_and_checked() {
        let mut input = Vec::new();
        input.extend_from_slice(b"{\"a\":1}\n");
        input.extend(std::iter::repeat_n(b'x', MAX_FRAME + 10));
        input.extend_from_slice(b"\n\xff\n{\"b\":2}\npartial");
        let mut r = BufReader::new(&input[..]);
        let mut buf = Vec::new();
        assert_eq!(read_frame(&mut r, &mut buf).await.unwrap(), Some(Frame::Line("{\"a\":1}".into())));
        assert_eq!(read_frame(&mut r, &mut buf).await.unwrap(), Some(Frame::TooLarge));
        assert_eq!(read_frame(&mut r, &mut buf).await.unwrap(), Some(Frame::NotUtf8));
        assert_eq!(read_frame(&mut r, &mut buf).await.unwrap(), Some(Frame::Line("{\"b\":2}".into())));
        assert_eq!(read_frame(&mut r, &mut buf).await.unwrap(), None);
    }
}
