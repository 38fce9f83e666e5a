//! One client connection: a reader that turns capped newline-delimited frames into requests for
//! the state owner, and a writer that sends replies and pushes in order. A connection that says
//! nothing costs one idle task and stalls no one; a frame over the cap gets an error and is
//! skipped; a connection that drops tells the owner, which cancels its waits (its session lives
//! on until the reaper's timeout).

use crate::state::{Command, StateHandle};
use futures::StreamExt;
use kite_proto::frame::parse_request;
use kite_proto::{ErrorBody, ErrorCode, ServerMessage, MAX_FRAME};
use tokio::io::{AsyncWriteExt, BufWriter};
use tokio::net::UnixStream;
use tokio::sync::mpsc;
use tokio_util::codec::{FramedRead, LinesCodec, LinesCodecError};

/// Serves `stream` until the client leaves or the daemon stops.
pub(crate) async fn serve_connection(id: u64, stream: UnixStream, state: StateHandle) {
    let (read, write) = stream.into_split();
    let (out_tx, mut out_rx) = mpsc::unbounded_channel::<String>();
    state.send(Command::Connect { conn: id, out: out_tx.clone() });

    let writer = tokio::spawn(async move {
        let mut w = BufWriter::new(write);
        while let Some(line) = out_rx.recv().await {
            if w.write_all(line.as_bytes()).await.is_err() || w.write_all(b"\n").await.is_err() {
                return;
            }
            // Flush when the queue is drained: one syscall for a burst of messages.
            while let Ok(line) = out_rx.try_recv() {
                if w.write_all(line.as_bytes()).await.is_err() || w.write_all(b"\n").await.is_err() {
                    return;
                }
            }
            if w.flush().await.is_err() {
                return;
            }
        }
    });

    let mut frames = FramedRead::new(read, LinesCodec::new_with_max_length(MAX_FRAME));
    while let Some(frame) = frames.next().await {
        match frame {
            Ok(line) => {
                if line.trim().is_empty() {
                    continue;
                }
                match parse_request(&line) {
                    Ok(req) => state.send(Command::Request { conn: id, req }),
                    Err((rid, err)) => {
                        let _ = out_tx.send(ServerMessage::Reply { id: rid, result: Err(err) }.encode());
                    }
                }
            }
            Err(LinesCodecError::MaxLineLengthExceeded) => {
                // The codec discards the rest of the line; the connection stays usable.
                let err = ErrorBody::new(ErrorCode::TooLarge, format!("frame larger than {MAX_FRAME} bytes was discarded"));
                let _ = out_tx.send(ServerMessage::Reply { id: None, result: Err(err) }.encode());
            }
            Err(LinesCodecError::Io(e)) => {
                let err = ErrorBody::new(ErrorCode::BadRequest, format!("unreadable frame ({e}); closing the connection"));
                let _ = out_tx.send(ServerMessage::Reply { id: None, result: Err(err) }.encode());
                break;
            }
        }
    }
    state.send(Command::Disconnect { conn: id });
    drop(out_tx);
    // The writer ends once the owner drops its sender too; give it the chance to flush.
    let _ = writer.await;
}
