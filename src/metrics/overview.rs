//! A node's figures for the admin console's overview (`GET /api/server/nodes`, docs/admin.md): read off this
//! registry's own series, so the console and `/metrics` can never disagree. Counters are totals since start;
//! the console turns two samples into rates, as Prometheus's `rate()` does.

use std::sync::OnceLock;
use std::time::SystemTime;

use serde_json::{json, Map, Value};

use super::{Metrics, OUTBOX_HOOKS, TRANSPORTS};

/// When this process made its first registry: the start the overview's uptime counts from.
static STARTED: OnceLock<SystemTime> = OnceLock::new();

pub(super) fn mark_start() {
    STARTED.get_or_init(SystemTime::now);
}

/// Milliseconds since the Unix epoch.
fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

impl Metrics {
    /// `{"at","uptime_s","connections","frames","messages_stored","store","memory","hooks","rooms","members",
    /// "sessions_parked","rtc","bus"}`; the caller adds who the node is.
    pub fn overview(&self) -> Value {
        let now = SystemTime::now();
        let started = *STARTED.get_or_init(SystemTime::now);
        let mut connections = Map::new();
        for t in TRANSPORTS {
            let open = self.connections_open.with_label_values(&[t]).get();
            connections.insert(t.to_string(), json!(open.max(0)));
        }
        // Every series of the family (transport x message type), summed.
        let frames_by = |vec: &prometheus::IntCounterVec| -> u64 {
            prometheus::core::Collector::collect(vec)
                .iter()
                .flat_map(|family| family.get_metric())
                .map(|m| m.get_counter().get_value() as u64)
                .sum()
        };
        let mut hooks = Map::new();
        for hook in OUTBOX_HOOKS {
            let backlog = self.hook_backlog_messages.with_label_values(&[hook]).get();
            hooks.insert(hook.to_string(), json!(backlog.max(0)));
        }
        json!({
            "at": unix_ms(now),
            "uptime_s": now.duration_since(started).map(|d| d.as_secs()).unwrap_or(0),
            "connections": connections,
            "frames": {
                "received": frames_by(&self.frames_received_total),
                "sent": frames_by(&self.frames_sent_total),
            },
            "messages_stored": self.messages_stored_total.get(),
            "store": { "up": self.store_up.get() == 1 },
            "memory": {
                "budget_bytes": self.memory_budget_bytes.get().max(0),
                "used_bytes": self.memory_budget_used_bytes.get().max(0),
            },
            "hooks": hooks,
            "rooms": self.rooms_loaded.get().max(0),
            "members": self.room_members.get().max(0),
            "sessions_parked": self.sessions_parked.get().max(0),
            "rtc": {
                "publications": self.rtc_publications.get().max(0),
                "players": self.rtc_players.get().max(0),
            },
            "bus": {
                "connected": self.bus_connected.get() == 1,
                "nodes": self.cluster_nodes.get().max(1),
            },
        })
    }
}
