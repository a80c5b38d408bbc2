//! A node's hold on one named cursor of `hook_cursors`: the asynchronous hooks, the search indexer and the
//! retention pruner each work through the messages table behind such a cursor, and in a cluster the nodes
//! share the cursor and take turns by lease, so one node at a time does the work.

use std::time::Duration;

use super::{Store, StoreError};

/// How long a lease lasts; renewed once half of it has run out, so a dead node's lease lapses after this.
pub const LEASE: Duration = Duration::from_secs(10);

pub struct CursorLease {
    name: String,
    node: String,
    /// While this node holds the lease: until when, and the cursor (only the holder moves it, so the copy
    /// here is the stored one).
    held: Option<(i64, i64)>,
    /// Another node held the lease when last asked: do not ask again before this (a node that is not the
    /// holder asks every half lease, not on every round of its task).
    not_before: i64,
}

impl CursorLease {
    pub fn new(name: &str, node: &str) -> CursorLease {
        CursorLease {
            name: name.to_string(),
            node: node.to_string(),
            held: None,
            not_before: 0,
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn node(&self) -> &str {
        &self.node
    }

    /// The cursor while this node holds the lease (taking or renewing it when half of it has run out, not on
    /// every round); `None` while another node holds it. A node that finds the lease taken asks again after
    /// half a lease, so a dead holder is replaced within one and a half leases (15 s).
    pub async fn cursor(&mut self, store: &Store) -> Result<Option<i64>, StoreError> {
        let now = crate::clock::now_ms();
        let lease_ms = i64::try_from(LEASE.as_millis()).unwrap_or(i64::MAX);
        if let Some((until, last)) = self.held {
            if now < until.saturating_sub(lease_ms / 2) {
                return Ok(Some(last));
            }
        }
        if now < self.not_before {
            return Ok(None);
        }
        let until = now.saturating_add(lease_ms);
        let last = store.hook_lease(&self.name, &self.node, now, until).await?;
        self.held = last.map(|last| (until, last));
        if last.is_none() {
            self.not_before = now.saturating_add(lease_ms / 2);
        }
        Ok(last)
    }

    /// The cursor was moved to `last` (`held`: the store accepted it) or, not held, the lease was lost
    /// meanwhile: ask the store again next round rather than trust the copy.
    pub fn moved(&mut self, last: i64, held: bool) {
        self.held = self.held.filter(|_| held).map(|(until, _)| (until, last));
    }
}
