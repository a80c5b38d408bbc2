//! The rooms' state in shards: a room lives in the shard its id hashes to, each shard behind its own lock, so
//! work on two rooms (a fan-out, a join, a presence change) contends only when their ids share a shard; the
//! other nodes' presence is kept beside the rooms it is about, in the same shard. Uni-cast inboxes and the
//! list of other nodes have locks of their own. No code holds two of these locks at once: a walk over every
//! room takes the shards one after another.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::{Mutex, MutexGuard};

use super::cluster::remote::Nodes;
use super::member::Member;
use super::state::State;

/// Enough that two busy rooms rarely share a lock on any machine this runs on; few enough that a walk over
/// every shard (metrics, snapshots, a user's rooms) costs nothing.
const SHARDS: usize = 64;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Held for in-memory work only, never across an await; a panic while held leaves data still usable.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

pub(super) struct Shards {
    shards: Box<[Mutex<State>]>,
    hasher: rustc_hash::FxBuildHasher,
    /// user id -> the messaging pipe of each of that user's connections that can take uni-cast pushes.
    inboxes: Mutex<HashMap<String, Vec<Member>>>,
    /// The other nodes of a cluster: when each was last heard, its figures.
    nodes: Mutex<Nodes>,
}

impl Default for Shards {
    fn default() -> Shards {
        Shards {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            hasher: rustc_hash::FxBuildHasher,
            inboxes: Mutex::default(),
            nodes: Mutex::default(),
        }
    }
}

impl Shards {
    /// The number of the shard of room `rid` (`each()` yields the shards in this numbering).
    pub fn index(&self, rid: &str) -> usize {
        (self.hasher.hash_one(rid) as usize) % self.shards.len()
    }

    /// The shard of room `rid`, locked.
    pub fn of(&self, rid: &str) -> MutexGuard<'_, State> {
        lock(&self.shards[self.index(rid)])
    }

    /// Every shard, each locked in turn as the iteration reaches it (and released before the next).
    pub fn each(&self) -> impl Iterator<Item = MutexGuard<'_, State>> {
        self.shards.iter().map(lock)
    }

    pub fn inboxes(&self) -> MutexGuard<'_, HashMap<String, Vec<Member>>> {
        lock(&self.inboxes)
    }

    pub fn nodes(&self) -> MutexGuard<'_, Nodes> {
        lock(&self.nodes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_room_always_lands_in_the_same_shard_and_rooms_spread() {
        let shards = Shards::default();
        let index = |rid: &str| shards.index(rid);
        assert_eq!(index("lobby"), index("lobby"));
        let used: std::collections::HashSet<usize> =
            (0..1000).map(|i| index(&format!("room-{i}"))).collect();
        assert!(used.len() > SHARDS * 3 / 4, "{} shards used", used.len());
    }
}
