//! Every room has a home node (rendezvous hashing of the room id over the live nodes), and only the home
//! commits the room's messages: a node whose member posts to a room homed elsewhere forwards the checked
//! message to the home (a bus request), which commits it in its journal and answers with the stored id.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::bus::{ClusterBus, Request};
use crate::protocol::args::{Cast, SendKind, User};
use crate::rooms::journal::PendingPost;
use crate::rooms::post::{Post, Posted, PushArgs};
use crate::rooms::{RoomError, Rooms};

/// A message forwarded to its room's home node.
#[derive(Serialize, Deserialize)]
struct Forwarded {
    origin: String,
    conn: u64,
    sender: User,
    kind: SendKind,
    target: String,
    data: Box<RawValue>,
    persist: bool,
}

/// The home node's answer.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Answer {
    Committed { mid: Option<i64>, timestamp: u32 },
    Failed { error: String },
}

/// The home of room `rid` among the live `nodes` (rendezvous hashing: the highest score wins, ties by name), so
/// every node that sees the same set of nodes picks the same home, and a node leaving moves only its own rooms.
/// Public so that operators' tools and tests can tell which node a room's messages go through.
pub fn home_node<'a>(nodes: impl IntoIterator<Item = &'a str>, rid: &str) -> Option<&'a str> {
    nodes.into_iter().max_by_key(|n| (score(n, rid), *n))
}

/// Rendezvous score of a node for a room: the node with the highest score is the room's home.
fn score(node: &str, rid: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in node.bytes().chain([0u8]).chain(rid.bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    // splitmix64 finalizer: FNV alone mixes the last bytes poorly.
    h ^= h >> 30;
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^= h >> 27;
    h = h.wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

impl Rooms {
    /// The room's home node and the bus to reach it, when that is another node (`None`: this node commits,
    /// or no cluster).
    pub(in crate::rooms) fn home_elsewhere(&self, rid: &str) -> Option<(&ClusterBus, String)> {
        // Cut off from NATS, this node cannot reach any home: it commits for every room itself.
        let bus = self.inner.bus.cluster().filter(|b| b.connected())?;
        let me = bus.node();
        let nodes = self.nodes();
        let best = home_node(nodes.names().chain([me]), rid)?;
        (best != me).then(|| (bus, best.to_string()))
    }

    /// Sends a checked message to its room's home node; the handle resolves with the home's answer.
    pub(in crate::rooms) fn forward(bus: &ClusterBus, home: &str, post: &Post) -> PendingPost {
        let (done, answer) = tokio::sync::oneshot::channel();
        let header = Forwarded {
            origin: bus.node().to_string(),
            conn: post.conn,
            sender: post.sender.clone(),
            kind: post.kind,
            target: post.target.clone(),
            data: post.data.clone(),
            persist: post.persist,
        };
        let pending = bus.request(home, "post", &header, &post.payload);
        let home = home.to_string();
        tokio::spawn(async move {
            let result = match pending.answer().await {
                Ok(bytes) => match crate::bus::decode::<Answer>(&bytes) {
                    Ok((Answer::Committed { mid, timestamp }, _)) => Ok(Posted {
                        mid,
                        timestamp,
                        delivered: None,
                    }),
                    Ok((Answer::Failed { error }, _)) => Err(RoomError::Cluster(error)),
                    Err(e) => Err(RoomError::Cluster(format!("bad answer from {home}: {e}"))),
                },
                Err(e) => Err(RoomError::Cluster(format!("{home}: {e}"))),
            };
            let _ = done.send(result);
        });
        PendingPost(answer)
    }

    /// Commits a message forwarded by another node (this node is the room's home) and answers it.
    pub(super) async fn commit_forwarded(&self, request: Request) {
        let (f, payload) = match crate::bus::decode::<Forwarded>(&request.body) {
            Ok(x) => x,
            Err(e) => {
                request
                    .bus()
                    .metrics()
                    .bus_errors_total
                    .with_label_values(&["decode"])
                    .inc();
                let error = format!("undecodable forwarded message: {e}");
                request.respond(&Answer::Failed { error });
                return;
            }
        };
        let post = Post {
            sender: f.sender,
            conn: f.conn,
            kind: f.kind,
            cast: Cast::Multi,
            target: f.target,
            data: f.data,
            payload,
            persist: f.persist,
            origin: Some(f.origin),
        };
        // Queued in arrival order, so one sender's messages keep their order; answered when committed.
        let pending = match PushArgs::build(&post) {
            Ok(push) => self.enqueue(post, push).await,
            Err(e) => Err(e),
        };
        tokio::spawn(async move {
            let result = match pending {
                Ok(p) => p.committed().await,
                Err(e) => Err(e),
            };
            let a = match result {
                Ok(p) => Answer::Committed {
                    mid: p.mid,
                    timestamp: p.timestamp,
                },
                Err(e) => Answer::Failed {
                    error: e.to_string(),
                },
            };
            request.respond(&a);
        });
    }
}
