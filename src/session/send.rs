//! `send`: check the message, queue it for the journal, and answer once it is committed and delivered.
//!
//! The answer is awaited off the session task, so a client can keep many messages in flight (the journal then
//! commits them in larger batches) while the session goes on reading. The journal is first-in first-out, so
//! a connection's messages keep their order. At most `MAX_IN_FLIGHT` are pending per connection; past that
//! the session stops reading until one is answered.

use serde_json::json;
use serde_json::value::RawValue;

use super::commands::{Cx, Handle};
use super::error::{RoomContext, SessionError};
use super::state::{Answer, Session, MAX_IN_FLIGHT};
use crate::hooks::{Asked, PublishHook, Verdict};
use crate::protocol::args::{Cast, Send};
use crate::protocol::status::codes;
use crate::protocol::Status;
use crate::rooms::{Begun, Post, Posted, RoomError, MAX_CID};
use tokio::sync::oneshot::error::TryRecvError;

impl Session {
    pub(super) async fn send(
        &mut self,
        pipe: u16,
        args: Send,
        payload: bytes::Bytes,
    ) -> Result<Answer, SessionError> {
        let identity = self
            .identity
            .as_ref()
            .ok_or(SessionError::NotConnected("send".into()))?;
        let temporary = self
            .pipes
            .get(pipe)
            .and_then(|p| p.properties.get("temporary"))
            .and_then(|v| v.as_bool())
            .unwrap_or(false);
        let context = match args.cast {
            Cast::Multi => RoomContext::Post,
            Cast::Uni => RoomContext::SendTo,
        };
        let data = args
            .data
            .unwrap_or_else(|| RawValue::from_string("null".into()).unwrap_or_default());
        if let Some(cid) = &args.cid {
            if cid.is_empty() || cid.chars().count() > MAX_CID {
                return Err(SessionError::Args(crate::protocol::ArgsError::Invalid {
                    name: "send".into(),
                    reason: format!("cid: 1 to {MAX_CID} characters"),
                }));
            }
        }
        let permit = self
            .in_flight
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| SessionError::Room(context, crate::rooms::RoomError::ShuttingDown))?;
        let target = args.id.clone();
        // A repeat of a recent `cid`: the first send's outcome, nothing stored or delivered again.
        let resolver = match args.cid.as_deref() {
            None => None,
            Some(cid) => match self.ctx.rooms.dedupe().begin(&identity.user.id, cid) {
                Begun::Repeat(first) => {
                    let later = async move {
                        let result = first.await.map_err(RoomError::Earlier);
                        outcome(result, true, context, &target)
                    };
                    return Ok(Answer::later(Box::pin(later), permit));
                }
                Begun::First(resolver) => Some(resolver),
            },
        };
        let post = Post {
            sender: identity.user.clone(),
            conn: self.id,
            kind: args.kind,
            cast: args.cast,
            target: args.id.clone(),
            data,
            payload,
            persist: !temporary,
            origin: None,
        };
        let room = (args.cast == Cast::Multi).then_some(args.id.as_str());
        let hook = self.ctx.publish_hook.clone().filter(|h| h.applies(room));
        // A message still waiting for the hook holds this connection's later ones behind it (order).
        let waiting = self
            .send_gate
            .as_mut()
            .is_some_and(|g| matches!(g.try_recv(), Err(TryRecvError::Empty)));
        if !waiting {
            // Done (or never set): a finished receiver must not be awaited again.
            self.send_gate = None;
        }
        if hook.is_some() || waiting {
            return self.send_gated(post, hook, resolver, permit, context, target);
        }
        let submitted = self.ctx.rooms.submit(post).await;
        let pending = match submitted {
            Ok(p) => p,
            Err(e) => {
                if let Some(r) = resolver {
                    self.ctx.rooms.dedupe().resolve(r, Err(e.to_string()));
                }
                return Err(SessionError::Room(context, e));
            }
        };
        let rooms = self.ctx.rooms.clone();
        let later = async move {
            let result = pending.committed().await;
            if let Some(r) = resolver {
                let shared = match &result {
                    Ok(posted) => Ok(*posted),
                    Err(e) => Err(e.to_string()),
                };
                rooms.dedupe().resolve(r, shared);
            }
            outcome(result, false, context, &target)
        };
        Ok(Answer::later(Box::pin(later), permit))
    }

    /// A send that first asks the `publish` hook, or follows one that does: checked here (so only a message
    /// that could be sent reaches the backend), then asked and queued off the session task, after the
    /// connection's previous gated message is queued, so the connection's messages keep their order.
    fn send_gated(
        &mut self,
        post: Post,
        hook: Option<std::sync::Arc<PublishHook>>,
        resolver: Option<crate::rooms::Resolver>,
        permit: tokio::sync::OwnedSemaphorePermit,
        context: RoomContext,
        target: String,
    ) -> Result<Answer, SessionError> {
        if let Err(e) = self.ctx.rooms.check_post(&post) {
            if let Some(r) = resolver {
                self.ctx.rooms.dedupe().resolve(r, Err(e.to_string()));
            }
            return Err(SessionError::Room(context, e));
        }
        let before = self.send_gate.take();
        let (queued, gate) = tokio::sync::oneshot::channel::<()>();
        self.send_gate = Some(gate);
        let rooms = self.ctx.rooms.clone();
        let share = self.hook_share.clone();
        let later = async move {
            let mut post = post;
            let verdict = match &hook {
                Some(h) => {
                    let _mine = share.acquire_owned().await;
                    h.ask(&Asked {
                        sender: &post.sender,
                        room: (post.cast == Cast::Multi).then_some(post.target.as_str()),
                        target: &post.target,
                        kind: post.kind.as_str(),
                        data: &post.data,
                        payload_bytes: post.payload.len(),
                    })
                    .await
                }
                None => Verdict::Accept,
            };
            if let Some(before) = before {
                let _ = before.await;
            }
            let replaced = matches!(verdict, Verdict::Replace(_));
            let result = match verdict {
                Verdict::Reject(reason) => {
                    drop(queued);
                    Err(RoomError::Moderated(reason))
                }
                verdict => {
                    if let Verdict::Replace(data) = verdict {
                        // The moderated message goes without the payload the backend never saw.
                        post.data = data;
                        post.payload = bytes::Bytes::new();
                    }
                    let submitted = rooms.submit(post).await;
                    drop(queued);
                    match submitted {
                        Ok(pending) => pending.committed().await,
                        Err(e) => Err(e),
                    }
                }
            };
            if let Some(r) = resolver {
                let shared = match &result {
                    Ok(posted) => Ok(*posted),
                    Err(e) => Err(e.to_string()),
                };
                rooms.dedupe().resolve(r, shared);
            }
            // The sender learns its message went out as the backend rewrote it.
            outcome(result, false, context, &target).map(|status| match (replaced, status.info) {
                (true, Some(crate::protocol::status::Info::Value(mut info))) => {
                    info["replaced"] = json!(true);
                    Status {
                        info: Some(crate::protocol::status::Info::Value(info)),
                        ..status
                    }
                }
                (_, info) => Status { info, ..status },
            })
        };
        Ok(Answer::later(Box::pin(later), permit))
    }

    /// Waits (bounded) for this connection's messages in flight to be committed and answered, and its
    /// store queries to be answered.
    pub(super) async fn settle_in_flight(&self, wait: std::time::Duration) {
        let everything = async {
            let _sends = self.in_flight.acquire_many(MAX_IN_FLIGHT).await;
            let _queries = self
                .queued
                .acquire_many(super::state::MAX_QUERIES_QUEUED)
                .await;
        };
        let _ = tokio::time::timeout(wait, everything).await;
    }
}

/// A `send`'s answer once its outcome is known: `NetConnection.Call.Success` with `{mid, timestamp,
/// delivered}` (and `duplicate: true` for a repeated `cid`), or the error. Never a Notify code: clients
/// dispatch those as incoming messages (PROTOCOL.md §4).
fn outcome(
    result: Result<Posted, RoomError>,
    duplicate: bool,
    context: RoomContext,
    target: &str,
) -> Result<Status, SessionError> {
    let posted = result.map_err(|e| SessionError::Room(context, e))?;
    let mut info = json!({
        "mid": posted.mid,
        "timestamp": posted.timestamp,
        "delivered": posted.delivered,
    });
    if duplicate {
        info["duplicate"] = json!(true);
    }
    Ok(Status::ok(codes::CALL_SUCCESS, format!("sent to {target}")).with_info(info))
}

impl Handle for Send {
    async fn handle(self, s: &mut Session, cx: Cx<'_>) -> Result<Answer, SessionError> {
        s.send(cx.call.pipe, self, cx.payload).await
    }
}
