//! `[history]`: how long stored history is kept (docs/storage.md, "Retention").

use serde::{Deserialize, Serialize};

/// Retention defaults and the pruner's pace. A room's `retention_age_s` / `retention_count` properties
/// override the defaults for that room; conversations follow the default age.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct History {
    /// Messages older than this many seconds are pruned. 0: kept forever.
    pub retention_age_s: u64,
    /// A room keeps at most this many of its newest messages. 0: no limit.
    pub retention_count: u64,
    /// How often the pruner runs.
    pub prune_interval_ms: u64,
    /// Messages deleted per transaction: the longest the pruner holds the store's write lock at once.
    pub prune_batch: u32,
}

impl Default for History {
    fn default() -> History {
        History {
            retention_age_s: 0,
            retention_count: 0,
            prune_interval_ms: 60_000,
            prune_batch: 500,
        }
    }
}

impl History {
    /// The pruner's settings these describe.
    pub fn prune_settings(&self) -> crate::archive::PruneSettings {
        crate::archive::PruneSettings {
            defaults: crate::archive::Retention {
                age_s: self.retention_age_s,
                count: self.retention_count,
            },
            interval: std::time::Duration::from_millis(self.prune_interval_ms),
            batch: self.prune_batch,
        }
    }
}
