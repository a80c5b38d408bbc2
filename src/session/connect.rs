//! `connect`: authenticate, name the session, answer with who the client is.

use serde_json::json;

use super::error::SessionError;
use super::resume::ClaimError;
use super::state::{Answer, Session};
use super::Identity;
use crate::auth::AuthError;
use crate::hooks::ConnectOutcome;
use crate::protocol::args::{Connect, Refresh};
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
        self.token_expires = principal.expires;
        if !args.uuid.is_empty() {
            let guest = args.parameters.token.is_empty();
            match self.ctx.resumable.claim(&args.uuid, &user.id, guest).await {
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
                        .resume_from_other_node(&args.uuid, &user, guest)
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
        if let Some(bus) = self.ctx.rooms.bus().nats() {
            let (store, node) = (self.ctx.store.clone(), bus.node().to_string());
            let (uuid, uid) = (identity.uuid.clone(), identity.user.id.clone());
            tokio::spawn(async move {
                if let Err(e) = store.record_session(&uuid, &uid, &node).await {
                    tracing::warn!(error = %e, "could not record the session's node");
                }
            });
        }
        self.identity = Some(identity);
        Ok(Answer::from(status).then(self.ack_window()))
    }
}

impl Session {
    /// A resuming client's `after` (last mid received per room): the stored messages after it in every room
    /// the session is still in, as the pushes it would have had, on the pipe it joined with. They come before
    /// what queued while it was away (which may repeat some: the client drops mids it has). Returns the
    /// frames and, per room, how many were replayed (or why not).
    async fn replay_after(
        &self,
        user: &str,
        after: &std::collections::BTreeMap<String, i64>,
    ) -> (Vec<crate::protocol::Frame>, serde_json::Value) {
        let mut frames = Vec::new();
        let mut replayed = serde_json::Map::new();
        for (pipe, rid) in self.joined.iter() {
            let Some(&mid) = after.get(rid) else { continue };
            match self
                .ctx
                .rooms
                .replay(user, &self.claims, *pipe, rid, mid)
                .await
            {
                Ok(r) => {
                    replayed.insert(
                        rid.clone(),
                        json!({"count": r.frames.len(), "last": r.last, "more": r.more}),
                    );
                    frames.extend(r.frames);
                }
                Err(e) => {
                    tracing::warn!(conn = self.id, room = %rid, error = %e, "resume replay failed");
                    replayed.insert(
                        rid.clone(),
                        json!({"count": 0, "more": true, "error": e.to_string()}),
                    );
                }
            }
        }
        (frames, serde_json::Value::Object(replayed))
    }

    /// Who the token names: the backend's `connect` hook when one is configured (docs/hooks.md), else the
    /// configured tokens and keys.
    async fn authenticate(&self, token: &str) -> Result<crate::auth::Principal, AuthError> {
        let Some(hook) = &self.ctx.connect_hook else {
            return self.ctx.verifier.principal(token);
        };
        let m = &self.ctx.metrics;
        let started = std::time::Instant::now();
        let peer = self.info.peer.to_string();
        let outcome = hook.ask(token, self.info.kind.as_str(), &peer).await;
        m.hook_duration_seconds
            .with_label_values(&["connect"])
            .observe(started.elapsed().as_secs_f64());
        let (label, result) = match outcome {
            ConnectOutcome::Accepted(p) => ("accepted", Ok(p)),
            ConnectOutcome::Refused(e) => ("refused", Err(e)),
            ConnectOutcome::Unavailable(why) => {
                tracing::warn!(conn = self.id, reason = %why, fail_open = hook.fail_open, "connect hook unavailable");
                let result = if hook.fail_open {
                    self.ctx.verifier.principal(token)
                } else {
                    Err(AuthError::Unavailable(why))
                };
                ("unavailable", result)
            }
        };
        m.hook_calls_total
            .with_label_values(&["connect", label])
            .inc();
        result
    }

    /// `refresh {token}`: a fresh token for this connection's user. Its claims and expiry replace the old
    /// token's; rooms it no longer grants are left (the client is told, as after a resume).
    pub(super) fn refresh(&mut self, args: Refresh) -> Result<Answer, SessionError> {
        let current = self
            .identity
            .as_ref()
            .map(|i| i.user.id.clone())
            .ok_or(SessionError::NotConnected("refresh".into()))?;
        let principal = self
            .ctx
            .verifier
            .principal(&args.token)
            .map_err(SessionError::Refresh)?;
        if principal.user.id != current {
            return Err(SessionError::Refresh(AuthError::Invalid(format!(
                "the token is for {}, this connection is {current}",
                principal.user.id
            ))));
        }
        self.claims = principal.rooms;
        self.token_expires = principal.expires;
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
