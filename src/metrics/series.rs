//! Series that exist from the first scrape: every labelled counter whose label values are known up front.

use super::Metrics;

impl Metrics {
    /// Creates, at 0, every labelled series whose label values are known up front. A counter that appears only
    /// at its first increment hides that increment from `rate()` and `increase()` (and shows "No data" on a
    /// fresh gateway), so the first slow consumer or auth failure would go unseen by the dashboard and alerts.
    pub(super) fn start_at_zero(&self) {
        use crate::protocol::status::codes;
        let reasons = [
            "peer_closed",
            "client_closed",
            "lost",
            "transport_error",
            "refused",
            "handshake_timeout",
            "slow_consumer",
            "taken_over",
            "shutdown",
            "token_expired",
            "internal_error",
            "over_ip_limit",
        ];
        for t in super::TRANSPORTS {
            let _ = self.link(t);
            self.connections_open.with_label_values(&[t]);
            self.connections_total.with_label_values(&[t]);
            self.slow_consumer_disconnects_total.with_label_values(&[t]);
            for r in reasons {
                self.connections_closed_total.with_label_values(&[t, r]);
            }
        }
        for thread in ["room", "conversation"] {
            self.history_pruned_total.with_label_values(&[thread]);
        }
        for t in ["http", "https"] {
            self.connections_total.with_label_values(&[t]);
            self.connections_closed_total
                .with_label_values(&[t, "over_ip_limit"]);
        }
        for r in [
            "token_required",
            "unknown_token",
            "invalid_token",
            "expired_token",
            "not_your_session",
        ] {
            self.auth_failures_total.with_label_values(&[r]);
        }
        for k in [
            "truncated",
            "reserved_bits",
            "unknown_type",
            "bad_control_length",
            "fragmented_control",
            "short_command",
            "bad_offset",
            "message_too_large",
            "bad_abort",
            "args_too_long",
            "transport",
            "bad_args",
            "unknown_command",
            "unknown_pipe",
            "wrong_pipe",
            "not_connected",
        ] {
            self.protocol_errors_total.with_label_values(&[k]);
        }
        for k in [
            "message",
            "join",
            "leave",
            "snapshot",
            "hello",
            "bye",
            "rights",
            "room_properties",
            "post",
            "takeover",
        ] {
            self.bus_published_total.with_label_values(&[k]);
            self.bus_received_total.with_label_values(&[k]);
        }
        for k in ["publish", "decode", "encode"] {
            self.bus_errors_total.with_label_values(&[k]);
        }
        for dir in ["in", "out"] {
            self.rtc_datagrams_total.with_label_values(&[dir]);
            self.rtc_datagram_bytes_total.with_label_values(&[dir]);
            self.rtc_rtp_packets_total.with_label_values(&[dir]);
            self.rtc_rtp_bytes_total.with_label_values(&[dir]);
        }
        for dir in ["sent", "received"] {
            self.rtc_nacks_total.with_label_values(&[dir]);
        }
        for role in ["publisher", "player"] {
            self.rtc_peers_total.with_label_values(&[role]);
        }
        for why in ["new_player", "player", "loss"] {
            self.rtc_keyframe_requests_total.with_label_values(&[why]);
        }
        for stage in [
            "sdp", "connect", "ice", "consent", "dtls", "rtc", "send", "engine",
        ] {
            self.rtc_failures_total.with_label_values(&[stage]);
        }
        for what in ["reassembly", "http_body"] {
            self.memory_budget_refusals_total.with_label_values(&[what]);
        }
        let calls = [
            "create",
            "release",
            "send",
            "chmod",
            "history",
            "setProperty",
            "getProperty",
            "sdp",
            "candidate",
            "refresh",
            "ping",
            "typing",
        ];
        for c in calls {
            for code in [codes::CALL_SUCCESS, codes::CALL_FAILED] {
                self.commands_total.with_label_values(&[c, code]);
            }
        }
        for (c, code) in [
            ("connect", codes::CONNECT_SUCCESS),
            ("connect", codes::CONNECT_REJECTED),
            ("close", codes::CONNECT_CLOSED),
            ("join", codes::GROUP_CONNECT_SUCCESS),
            ("join", codes::GROUP_CONNECT_REJECTED),
            ("join", codes::GROUP_CONNECT_FAILED),
            ("send", codes::GROUP_POSTING_FAILED),
            ("send", codes::GROUP_SENDTO_FAILED),
            ("unknown", codes::CALL_FAILED),
            ("invalid", codes::CALL_FAILED),
        ] {
            self.commands_total.with_label_values(&[c, code]);
        }
        // Latency histograms from the first scrape: every listed command, every hook.
        for c in crate::protocol::Request::NAMES {
            self.command_duration_seconds.with_label_values(&[c]);
        }
        for hook in ["connect", "publish", "message", "offline", "events"] {
            self.hook_duration_seconds.with_label_values(&[hook]);
        }
        for (hook, outcomes) in [
            ("connect", &["accepted", "refused", "unavailable"][..]),
            (
                "publish",
                &["accepted", "replaced", "refused", "unavailable"][..],
            ),
            ("message", &["delivered", "failed"][..]),
            ("offline", &["delivered", "failed"][..]),
            ("events", &["delivered", "failed"][..]),
        ] {
            for outcome in outcomes {
                self.hook_calls_total.with_label_values(&[hook, outcome]);
            }
        }
        for hook in super::OUTBOX_HOOKS {
            self.hook_backlog_messages.with_label_values(&[hook]);
        }
        // Refused server-API calls are counted under key `-`: their series exist from the start, so a first
        // wrong key shows in `rate()` (the calls' own key names are configuration, not known here).
        for call in [
            "publish",
            "broadcast",
            "disconnect",
            "chmod",
            "ban",
            "unban",
            "presence",
            "rooms",
            "room",
            "create_room",
            "user",
            "redact",
            "erase",
            "history",
            "nodes",
            "room_messages",
            "room_rights",
            "search",
            "media",
            "end_media",
        ] {
            self.server_api_requests_total
                .with_label_values(&["-", call, "unauthorized"]);
        }
    }
}
