//! `connect`: authenticate, name the session, answer with who the client is; `refresh`, `ping` and `close`,
//! the other commands about the connection itself.

use serde_json::json;

use super::commands::{Cx, Handle};
use super::end::End;
use super::error::SessionError;
use super::resume::ClaimError;
use super::state::{Answer, Session};
use super::Identity;
use crate::auth::AuthError;
use crate::protocol::args::{Close, Connect, Ping, Refresh};
use crate::protocol::status::codes;
use crate::protocol::Status;

impl Session {
    pub(super) async fn connect(&mut self, args: Connect) -> Result<Answer, SessionError> {
        if self.identity.is_some() {
            return Err(SessionError::AlreadyConnected);
        }
        let principal = self.authenticate(&args.parameters.token).await?;
        let user = principal.user.clone();
        self.claims = principal.rooms;
        self.core.token_expires(
            principal.expires,
            u64::from(super::now_secs()),
            tokio::time::Instant::now(),
        );
        if !args.uuid.is_empty() {
            let guest = args.parameters.token.is_empty();
            match self
                .ctx
                .resumable
                .claim(&args.uuid, &user.id, guest, args.attempt())
                .await
            {
                Err(ClaimError::OtherUser) => return Err(SessionError::NotYourSession(args.uuid)),
                Ok(Some(handover)) => {
                    let splice = self.adopt(handover);
                    let left = self.leave_ungranted();
                    let identity = self
                        .identity
                        .clone()
                        .ok_or(SessionError::AlreadyConnected)?;
                    tracing::info!(conn = self.id, uuid = %identity.uuid, user = %identity.user.id, "session resumed");
                    self.ctx
                        .resumable
                        .live(&identity.uuid, &identity.user.id, self.kick.clone());
                    let (replay, replayed) =
                        self.replay_after(&identity.user.id, &args.after).await;
                    let mut info = json!({
                        "uuid": identity.uuid, "user": identity.user, "resumed": true
                    });
                    if !args.after.is_empty() {
                        info["replayed"] = replayed;
                    }
                    let status =
                        Status::ok(codes::CONNECT_SUCCESS, "connect success: session resumed")
                            .with_info(info);
                    let mut answer = Answer::from(status)
                        .then(left)
                        .then(self.ack_window())
                        .then(replay);
                    answer.splice = Some(splice);
                    return Ok(answer);
                }
                Ok(None) => {
                    if let Some(status) = self
                        .resume_from_other_node(&args.uuid, &user, guest, args.attempt())
                        .await?
                    {
                        return Ok(Answer::from(status).then(self.ack_window()));
                    }
                }
            }
        }
        // Keeping the users table current is not worth refusing a connect over.
        if let Err(e) = self
            .ctx
            .store
            .upsert_user(&user.id, &user.nick, &user.avatar)
            .await
        {
            tracing::warn!(error = %e, user = %user.id, "could not record the user");
        }
        // A uuid we do not know (or none) starts a fresh session; the client sees a new uuid and drops its
        // old pipes, as PROTOCOL.md §3.2 says.
        let identity = Identity {
            uuid: uuid::Uuid::new_v4().to_string(),
            user,
        };
        tracing::debug!(
            conn = self.id,
            uuid = %identity.uuid,
            user = %identity.user.id,
            client = %args.client,
            "connected"
        );
        let status = Status::ok(codes::CONNECT_SUCCESS, "connect success")
            .with_info(json!({ "uuid": identity.uuid, "user": identity.user }));
        self.ctx
            .resumable
            .live(&identity.uuid, &identity.user.id, self.kick.clone());
        // In a cluster, record where this session lives, so a reconnect through another node finds it.
        if let Some(bus) = self.ctx.rooms.bus().cluster() {
            let (store, node) = (self.ctx.store.clone(), bus.node().to_string());
            let (uuid, uid) = (identity.uuid.clone(), identity.user.id.clone());
            tokio::spawn(async move {
                if let Err(e) = store.record_session(&uuid, &uid, &node).await {
                    tracing::warn!(error = %e, "could not record the session's node");
                }
            });
        }
        self.ctx.events.record(
            "connect",
            &identity.user.id,
            None,
            json!({ "transport": self.info.kind.as_str(), "session": identity.uuid }),
        );
        self.identity = Some(identity);
        Ok(Answer::from(status).then(self.ack_window()))
    }
}

/// The most one resume replays, over all its rooms (each room's replay also stops at 8 MiB).
const RESUME_REPLAY_BYTES: usize = 8 << 20;

impl Session {
    /// A resuming client's `after` (last mid received per room): the stored messages after it in every room
    /// the session is still in, as the pushes it would have had, on the pipe it joined with. They come before
    /// what queued while it was away (which may repeat some: the client drops mids it has). Returns the
    /// frames and how many rooms and messages were replayed, and in how many rooms more were left (a room's
    /// replay stops at 8 MiB: the client pages the rest with `history {after}`). The frames are queued at the
    /// client's pace (`Outbox::reply` waits for the queue's bytes), never all at once.
    async fn replay_after(
        &self,
        user: &str,
        after: &std::collections::BTreeMap<String, i64>,
    ) -> (Vec<crate::protocol::Frame>, serde_json::Value) {
        let mut frames: Vec<crate::protocol::Frame> = Vec::new();
        let (mut rooms, mut more, mut bytes) = (0, 0, 0);
        for (pipe, rid) in self.joined.iter() {
            let Some(&mid) = after.get(rid) else { continue };
            rooms += 1;
            // One resume replays at most `RESUME_REPLAY_BYTES` in all: past it, rooms are left to `history`.
            if bytes >= RESUME_REPLAY_BYTES {
                more += 1;
                continue;
            }
            match self
                .ctx
                .rooms
                .replay(user, &self.claims, *pipe, rid, mid)
                .await
            {
                Ok(r) => {
                    more += usize::from(r.more);
                    bytes += r.frames.iter().map(|f| f.wire_len()).sum::<usize>();
                    frames.extend(r.frames);
                }
                Err(e) => {
                    more += 1;
                    tracing::warn!(conn = self.id, room = %rid, error = %e, "resume replay failed");
                }
            }
        }
        // Counts only: an answer naming every room could outgrow what one command carries (64 KiB).
        let replayed = json!({"rooms": rooms, "messages": frames.len(), "rooms_with_more": more});
        (frames, replayed)
    }

    /// Who the token names: the backend's `connect` hook when one is configured (docs/hooks.md), else the
    /// configured tokens and keys (`hooks::Authenticator`, shared with the HTTP API).
    async fn authenticate(&self, token: &str) -> Result<crate::auth::Principal, AuthError> {
        let peer = self.info.peer.to_string();
        self.ctx
            .auth
            .principal(token, self.info.kind.as_str(), &peer)
            .await
    }

    /// `refresh {token}`: a fresh token for this connection's user. Its claims and expiry replace the old
    /// token's; rooms it no longer grants are left (the client is told, as after a resume). The token is
    /// resolved like `connect`'s (through the hook when one is configured).
    pub(super) async fn refresh(&mut self, args: Refresh) -> Result<Answer, SessionError> {
        let current = self
            .identity
            .as_ref()
            .map(|i| i.user.id.clone())
            .ok_or(SessionError::NotConnected("refresh".into()))?;
        let principal = self
            .authenticate(&args.token)
            .await
            .map_err(SessionError::Refresh)?;
        if principal.user.id != current {
            return Err(SessionError::Refresh(AuthError::Invalid(format!(
                "the token is for {}, this connection is {current}",
                principal.user.id
            ))));
        }
        self.claims = principal.rooms;
        self.core.token_expires(
            principal.expires,
            u64::from(super::now_secs()),
            tokio::time::Instant::now(),
        );
        let left = self.leave_ungranted();
        let status = Status::ok(codes::CALL_SUCCESS, "token refreshed")
            .with_info(json!({ "expires": principal.expires }));
        Ok(Answer::from(status).then(left))
    }

    /// Follows the connect answer: asks the client to ACK every `limits.ack_window_bytes` bytes (none if 0).
    fn ack_window(&self) -> Option<crate::protocol::Frame> {
        let window = self.ctx.limits.ack_window_bytes;
        (window > 0).then(|| {
            crate::protocol::Frame::new(
                crate::protocol::MessageType::AckWindowSize,
                0,
                bytes::Bytes::copy_from_slice(&window.to_be_bytes()),
            )
        })
    }
}

impl Handle for Connect {
    /// A second `connect` on a connected session (the first is the run loop's: `connection.rs`).
    async fn handle(self, s: &mut Session, _: Cx<'_>) -> Result<Answer, SessionError> {
        s.connect(self).await
    }
}

impl Handle for Refresh {
    async fn handle(self, s: &mut Session, _: Cx<'_>) -> Result<Answer, SessionError> {
        s.refresh(self).await
    }
}

impl Handle for Ping {
    /// Answered at once: a client's liveness check (docs/resilience.md).
    async fn handle(self, _: &mut Session, _: Cx<'_>) -> Result<Answer, SessionError> {
        Ok(Status::ok(codes::CALL_SUCCESS, "pong").into())
    }
}

impl Handle for Close {
    /// A goodbye: answered, then the session ends for good (not parked; its rooms see it leave at once).
    async fn handle(self, _: &mut Session, _: Cx<'_>) -> Result<Answer, SessionError> {
        // The reason is logged: a newline forging a log line, terminal escapes and the like become spaces.
        let reason = crate::transport::link::one_line(&self.reason, 200);
        let reason = if reason.trim().is_empty() {
            "client said goodbye".to_string()
        } else {
            reason
        };
        let status = Status::ok(codes::CONNECT_CLOSED, format!("closed: {reason}"));
        Ok(Answer {
            end: Some(End::Goodbye(reason)),
            ..status.into()
        })
    }
}
