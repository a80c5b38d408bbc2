//! Fast reconnect across nodes of a cluster (the local registry is `resume.rs`). A phone that changes networks may come back through the load
//! balancer on another node. The store records which node holds each session (uuid); a `connect` naming a
//! uuid this node does not hold asks the owner over the bus to hand it over. The owner takes the session off
//! its transport (or out of its parked state) as for a local reconnect, answers with what the session was
//! (user, pipes with their properties, rooms), and a moment later lets its copy leave the rooms, after the new
//! node has joined them, so nobody sees the user flap.
//!
//! What does not move: the pushes the old node had queued for the client. The client catches up from history
//! (`after` = the last `mid` it saw), as docs/cluster.md says. If the owner is dead or does not answer, the
//! connect starts a fresh session, as for any unknown uuid.

use crate::rooms::{authorize, Act};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use super::error::SessionError;
use super::state::Session;
use super::{Context, Identity};
use crate::bus::ClusterBus;
use crate::protocol::args::{PipeKind, User};
use crate::protocol::status::codes;
use crate::protocol::Status;

/// How long the old node keeps its copy in the rooms after handing a session over.
const LEAVE_AFTER: Duration = Duration::from_secs(1);

#[derive(Serialize, Deserialize)]
struct Takeover {
    uuid: String,
    user: String,
    guest: bool,
    /// The claimant's `connect {attempt}` (nodes of an older version send none).
    #[serde(default)]
    attempt: String,
}

#[derive(Serialize, Deserialize)]
struct MovedPipe {
    id: u16,
    kind: PipeKind,
    properties: Map<String, Value>,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Answer {
    Moved {
        user: User,
        pipes: Vec<MovedPipe>,
        rooms: Vec<(u16, String)>,
    },
    NotHere,
    OtherUser,
}

impl Session {
    /// Takes session `uuid` over from the node that holds it. `Ok(None)`: nothing to take over, start fresh.
    pub(super) async fn resume_from_other_node(
        &mut self,
        uuid: &str,
        user: &User,
        guest: bool,
        attempt: &str,
    ) -> Result<Option<Status>, SessionError> {
        let Some(bus) = self.ctx.rooms.bus().cluster().cloned() else {
            return Ok(None);
        };
        let owner = match self.ctx.store.session_owner(uuid).await {
            Ok(Some(o)) => o,
            Ok(None) => return Ok(None),
            Err(e) => {
                tracing::warn!(error = %e, "cannot look up a session's node; starting a fresh session");
                return Ok(None);
            }
        };
        let (owner_user, node) = owner;
        if node == bus.node() {
            return Ok(None);
        }
        let other =
            owner_user != user.id && !(guest && owner_user.starts_with(crate::auth::GUEST_PREFIX));
        if other {
            return Err(SessionError::NotYourSession(uuid.to_string()));
        }
        // A dead node hands nothing over; do not make the client wait for its silence.
        if !self.ctx.rooms.node_alive(&node) {
            tracing::info!(%node, %uuid, "the session's node is gone; starting a fresh session");
            return Ok(None);
        }
        let ask = Takeover {
            uuid: uuid.to_string(),
            user: user.id.clone(),
            guest,
            attempt: attempt.to_string(),
        };
        let answer = match bus
            .request(&node, "takeover", &ask, &[])
            .answer()
            .await
            .map_err(|e| e.to_string())
            .and_then(|b| crate::bus::decode::<Answer>(&b).map_err(|e| e.to_string()))
        {
            Ok((a, _)) => a,
            Err(e) => {
                tracing::info!(%node, error = %e, "the session's node did not hand it over; starting a fresh session");
                return Ok(None);
            }
        };
        let (user, pipes, rooms) = match answer {
            Answer::Moved { user, pipes, rooms } => (user, pipes, rooms),
            Answer::NotHere => return Ok(None),
            Answer::OtherUser => return Err(SessionError::NotYourSession(uuid.to_string())),
        };
        self.identity = Some(Identity {
            uuid: uuid.to_string(),
            user: user.clone(),
        });
        for p in pipes {
            self.pipes.restore(p.id, p.kind, p.properties);
        }
        for (pipe, rid) in rooms {
            // The token presented now decides, as for any join.
            if authorize(&self.claims, Act::Resume, &rid, None).is_err() {
                continue;
            }
            let Some(member) = self.member(pipe) else {
                continue;
            };
            match self.ctx.rooms.join(member, &rid, false).await {
                Ok(_) => {
                    self.joined.insert((pipe, rid));
                }
                Err(e) => {
                    tracing::warn!(room = %rid, error = %e, "a moved session could not rejoin")
                }
            }
        }
        self.refresh_inbox();
        if let Err(e) = self
            .ctx
            .store
            .record_session(uuid, &user.id, bus.node())
            .await
        {
            tracing::warn!(error = %e, "could not record the moved session");
        }
        self.ctx.resumable.live(uuid, &user.id, self.kick.clone());
        self.ctx.metrics.session_resumes_total.inc();
        tracing::info!(conn = self.id, %uuid, user = %user.id, from = %node, "session moved here");
        Ok(Some(
            Status::ok(
                codes::CONNECT_SUCCESS,
                "connect success: session resumed from another node",
            )
            .with_info(json!({ "uuid": uuid, "user": user, "resumed": true, "moved_from": node })),
        ))
    }
}

/// Answers other nodes' takeover requests for sessions held here, until the bus subscription ends.
pub async fn serve_takeovers(
    ctx: Arc<Context>,
    bus: ClusterBus,
) -> Result<(), crate::bus::BusError> {
    let mut requests = bus.serve("takeover").await?;
    tokio::spawn(async move {
        loop {
            let request = tokio::select! {
                r = requests.next() => r,
                _ = ctx.shutdown.cancelled() => None,
            };
            let Some(request) = request else { break };
            let ctx = ctx.clone();
            tokio::spawn(async move {
                let answer = match crate::bus::decode::<Takeover>(&request.body) {
                    Ok((t, _)) => hand_over(&ctx, &t).await,
                    Err(_) => Answer::NotHere,
                };
                request.respond(&answer);
            });
        }
    });
    Ok(())
}

async fn hand_over(ctx: &Arc<Context>, t: &Takeover) -> Answer {
    let h = match ctx
        .resumable
        .claim(&t.uuid, &t.user, t.guest, &t.attempt)
        .await
    {
        Ok(Some(h)) => {
            // It lives on the other node now: nothing of it stays registered here.
            ctx.resumable.moved(&t.uuid);
            h
        }
        Ok(None) => return Answer::NotHere,
        Err(_) => return Answer::OtherUser,
    };
    let pipes = h
        .pipes
        .iter()
        .map(|(id, p)| MovedPipe {
            id,
            kind: p.kind,
            properties: p.properties.clone(),
        })
        .collect();
    let rooms: Vec<(u16, String)> = h.joined.iter().cloned().collect();
    let user = h.identity.user.clone();
    tracing::info!(uuid = %t.uuid, user = %user.id, "session handed over to another node");
    // Leave once the new node has joined, so the user never looks absent; the queue goes with the handover.
    let ctx2 = ctx.clone();
    tokio::spawn(async move {
        tokio::time::sleep(LEAVE_AFTER).await;
        for (pipe, rid) in &h.joined {
            ctx2.rooms.leave(h.id, *pipe, rid, "moved to another node");
        }
        for (id, _) in h.pipes.iter() {
            ctx2.rooms
                .stop_stream(h.id, id, None, "moved to another node");
        }
        ctx2.rooms.set_inbox(h.id, &h.identity.user, None);
    });
    Answer::Moved { user, pipes, rooms }
}
