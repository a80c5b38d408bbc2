//! Bringing a client back on a new session (the old one expired while it was away): its pipes are created
//! again, in the order they were, and its rooms joined again with `after` = the last message id it had, so the
//! messages it missed are replayed before live ones. Runs beside the reader (which hands it the answers);
//! the app gets `Client.Reconnected` with `resumed: false` and `restored` once it is done.

use serde_json::{json, Value};
use tokio::sync::oneshot;

use super::conn::{command_on, next_txid, reconnected, Conn, CALL_TIMEOUT};
use super::reply::Reply;

/// Sends one command and waits for its answer.
async fn call(conn: &Conn, pipe: u16, args: &Value) -> Option<Reply> {
    let txid = next_txid(&conn.txids, pipe);
    let (tx, rx) = oneshot::channel();
    conn.pending
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert((pipe, txid), tx);
    let frame = command_on(pipe, txid, args)?;
    let out = conn.tx.lock().unwrap_or_else(|e| e.into_inner()).clone();
    out.send_async(frame).await.ok()?;
    let reply = tokio::time::timeout(CALL_TIMEOUT, rx).await.ok()?.ok()?;
    (!reply.is_error()).then_some(reply)
}

/// Creates `pipes` again and joins `rooms` with their `rejoins` arguments; then tells the app.
pub(super) async fn restore(
    conn: Conn,
    pipes: Vec<(u16, String)>,
    rooms: Vec<(u16, String)>,
    rejoins: Vec<Value>,
    mut info: Value,
) {
    let mut restored = true;
    for (old, kind) in &pipes {
        let created = call(&conn, 0, &super::commands::create_args(kind)).await;
        let id = created.and_then(|r| r.info()["id"].as_u64());
        // The app holds the old pipe ids: a pipe that comes back under another id cannot be used as it was.
        if id != Some(u64::from(*old)) {
            restored = false;
            break;
        }
    }
    if restored {
        for ((pipe, _), args) in rooms.iter().zip(&rejoins) {
            if call(&conn, *pipe, args).await.is_none() {
                restored = false;
            }
        }
    }
    info["restored"] = json!(restored);
    let _ = conn.pushes.send(reconnected(info));
}
