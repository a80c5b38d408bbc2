//! Rooms: membership, presence, rights (chmod), fan-out, and the message journal.
//!
//! Presence is in memory (who is joined right now, on which connection and pipe); rights and messages are in
//! the store. A room is loaded into memory when its first member joins and dropped when its last member leaves.
//! All message fan-out happens in one task, the journal (`journal.rs`), right after the batch holding the
//! message is committed, in id order: so every member sees a room's messages in the order of their stored ids,
//! and nobody ever sees a message the store does not have.

mod access;
mod admin;
mod catchup;
mod cluster;
mod dedupe;
mod error;
mod history;
mod journal;
mod member;
mod post;
mod presence;
mod publish;
mod reads;
mod redact;
mod rights;
mod search;
mod shards;
mod state;
mod streams;
mod typing;

use std::sync::{Arc, Mutex, MutexGuard};

pub use access::{authorize, Act, RoomClaims};
pub use catchup::Replay;
pub use cluster::{home_node, run_cluster, Figures};
pub use dedupe::{Begun, Dedupe, Resolver, SharedPosted, MAX_CID};
pub use error::RoomError;
pub use history::{page_json, HistoryRequest, HistoryThread};
pub use journal::{JournalStats, PendingPost};
pub use member::Member;
pub use post::{Post, Posted};
pub use presence::{Joined, PresencePage};
pub use redact::RedactBy;
pub use search::{hits_json, Hits, SearchRequest};
pub use streams::{Played, Player};

use crate::bus::Bus;
use crate::metrics::Metrics;
use crate::protocol::args::Mask;
use crate::store::Store;
use state::State;

/// Room policy from the config file (`[rooms]`).
#[derive(Debug, Clone)]
pub struct RoomPolicy {
    /// Rights of a user joining a room they have no stored rights in. The creator gets `rwx`.
    pub default_mask: Mask,
    /// Joining a room that does not exist creates it (the joiner becomes its owner).
    pub create_on_join: bool,
    /// History page size when the request names none, and the most a request may ask for.
    pub history_default: u32,
    pub history_max: u32,
    /// Most messages the journal commits in one transaction.
    pub max_batch: usize,
    /// How long a `send`'s client id (`cid`) is remembered for idempotent resends.
    pub cid_window: std::time::Duration,
    /// Users present from which a room is crowded (no presence pushes, capped coverage list).
    pub presence_limit: usize,
}

impl RoomPolicy {
    /// A page size a history or search request asked for (or the default), checked against the maximum.
    pub fn page_limit(&self, asked: Option<u32>) -> Result<u32, RoomError> {
        let limit = asked.unwrap_or(self.history_default);
        if limit == 0 || limit > self.history_max {
            return Err(RoomError::Invalid {
                what: "limit",
                reason: format!("must be between 1 and {}", self.history_max),
            });
        }
        Ok(limit)
    }
}

impl Default for RoomPolicy {
    fn default() -> Self {
        RoomPolicy {
            default_mask: Mask::R.union(Mask::W),
            create_on_join: true,
            history_default: 50,
            history_max: 500,
            max_batch: 512,
            cid_window: std::time::Duration::from_secs(600),
            presence_limit: 1000,
        }
    }
}

/// The room service. Cheap to clone; all clones share one state.
#[derive(Clone)]
pub struct Rooms {
    inner: Arc<Inner>,
}

struct Inner {
    /// Loaded rooms and the other nodes' presence, in shards by room id; inboxes; the other nodes (shards.rs).
    shards: shards::Shards,
    /// Peer-to-peer stream pairings (streams.rs), apart from the rooms' state.
    streams: Mutex<streams::Streams>,
    store: Store,
    policy: RoomPolicy,
    journal: journal::JournalHandle,
    metrics: Arc<Metrics>,
    bus: Bus,
    dedupe: Dedupe,
    /// The session layer's registry of this node's sessions (set once at start; see `admin.rs`).
    sessions: std::sync::OnceLock<Arc<dyn SessionDirectory>>,
}

/// This node's sessions, as the rooms service may ask about them: rooms do not know sessions, so the gateway
/// hands the session registry in at start (it holds nothing of the rooms service, so no cycle).
pub trait SessionDirectory: Send + Sync {
    /// Ends every session of `user` here, telling its clients `reason`; returns how many it ended.
    fn disconnect_user(&self, user: &str, reason: &str) -> usize;
    /// `user`'s sessions here: (live, parked).
    fn sessions_of(&self, user: &str) -> (usize, usize);
}

impl Rooms {
    /// Starts the journal task; it ends when the last `Rooms` clone is dropped.
    /// `bus` is `Bus::Local` for a single node; with NATS, also start `run_cluster`.
    pub fn new(store: Store, policy: RoomPolicy, metrics: Arc<Metrics>, bus: Bus) -> Rooms {
        let (journal, rx) = journal::JournalHandle::channel();
        let policy_cid_window = policy.cid_window;
        let rooms = Rooms {
            inner: Arc::new(Inner {
                shards: shards::Shards::default(),
                streams: Mutex::default(),
                store,
                policy,
                journal,
                metrics,
                bus,
                dedupe: Dedupe::new(policy_cid_window),
                sessions: std::sync::OnceLock::new(),
            }),
        };
        tokio::spawn(journal::run(Arc::downgrade(&rooms.inner), rx));
        rooms
    }

    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// Group-commit counters.
    pub fn journal_stats(&self) -> &JournalStats {
        &self.inner.journal.stats
    }

    /// Client ids of recent sends (idempotent resends).
    pub fn dedupe(&self) -> &Dedupe {
        &self.inner.dedupe
    }

    pub fn policy(&self) -> &RoomPolicy {
        &self.inner.policy
    }

    /// The shard holding room `rid` (and the other nodes' presence in it), locked.
    fn room_state(&self, rid: &str) -> MutexGuard<'_, State> {
        self.inner.shards.of(rid)
    }

    /// Each user's inboxes for uni-cast, locked.
    fn inboxes(&self) -> MutexGuard<'_, std::collections::HashMap<String, Vec<Member>>> {
        self.inner.shards.inboxes()
    }

    /// The other live nodes, locked.
    fn nodes(&self) -> MutexGuard<'_, cluster::remote::Nodes> {
        self.inner.shards.nodes()
    }

    /// Every shard, locked one after another.
    fn each_shard(&self) -> impl Iterator<Item = MutexGuard<'_, State>> {
        self.inner.shards.each()
    }
}
