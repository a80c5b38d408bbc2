//! The `[limits]` section: every bound the gateway enforces on a client, a connection or the process, with
//! the defaults the dev profile runs with (docs/configuration.md explains each).

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Largest single frame (header + payload) a transport accepts; a longer length prefix closes the connection.
    pub max_frame_bytes: usize,
    /// Largest reassembled message; a longer one is refused with an error status.
    pub max_message_bytes: usize,
    /// Pipes a connection may hold besides pipe 0.
    pub max_pipes: usize,
    /// A connection that has not sent `connect` within this time is closed.
    pub handshake_timeout_ms: u64,
    /// Frames that may wait for a slow client before it is cut off.
    pub outbound_queue: usize,
    /// Bytes that may wait for a slow client before it is cut off (a single larger message still goes).
    pub outbound_queue_bytes: usize,
    /// Malformed frames tolerated on one connection before it is closed.
    pub max_protocol_errors: u32,
    /// Rooms one connection may be in at once.
    pub max_rooms_per_connection: usize,
    /// A QUIC connection with no traffic for this long is closed (clients keep it alive with pings).
    pub quic_idle_timeout_ms: u64,
    /// The gateway pings idle QUIC connections this often, so NATs keep their mapping.
    pub quic_keep_alive_ms: u64,
    /// QUIC's congestion controller: `bbr` (default: a 64 KiB push at 5 % loss took 218 ms against Cubic's
    /// 999 and TLS's 246, RTT 100 ms; benches/README.md, "Mobile"), `cubic` (quinn's own default) or
    /// `newreno`.
    pub quic_congestion: crate::transport::quic::Congestion,
    /// The congestion window a QUIC connection starts with, in bytes (0: the controller's default, 14,720).
    pub quic_initial_window_bytes: u64,
    /// Receive buffer asked for the QUIC UDP socket (0: the OS default); a warning says when the OS grants less.
    pub quic_udp_recv_buffer_bytes: usize,
    /// How long a session whose transport was lost is kept for a fast reconnect. 0 turns resuming off.
    pub resume_grace_ms: u64,
    /// A WebSocket whose peer shows no sign of life (no frame, no answer to the gateway's pings, sent every
    /// third of this) for this long is lost, and its session parked. A quiet user is not a dead one: pings
    /// are answered by the browser itself. 0: no pings.
    pub idle_timeout_ms: u64,
    /// TCP and TLS connections: keep-alive probes start after this much silence (three probes a third of
    /// it apart), so a vanished peer is noticed without closing quiet ones. 0: off.
    pub tcp_keepalive_ms: u64,
    /// Commands per second one connection may send (a burst of twice this is allowed).
    pub commands_per_second: u32,
    /// The ACK window the gateway announces after `connect`: clients ACK every this many bytes. 0: none.
    pub ack_window_bytes: u32,
    /// Connections one IP address may hold. Unset: unlimited in the dev profile, 1,000 in prod.
    pub max_connections_per_ip: Option<usize>,
    /// An HTTP (or WebSocket) connection must deliver each request header within this time.
    pub http_header_timeout_ms: u64,
    /// Largest HTTP request header.
    pub http_max_header_bytes: usize,
    /// A request body (server API, WHIP/WHEP) must arrive whole within this, once its caller is authenticated;
    /// else `408` and the connection is closed.
    pub http_body_timeout_ms: u64,
    /// HTTP/2 streams one connection may have open at once.
    pub http2_max_streams: u32,
    /// An HTTP connection with no request in flight this long is closed (HTTP/1 keep-alive waits only
    /// `http_header_timeout_ms` for its next request header; this bounds HTTP/2, which has no such limit).
    pub http_idle_timeout_ms: u64,
    /// WebSocket upgrades being set up at once; more get `503`.
    pub max_pending_upgrades: usize,
    /// Bytes all connections together may hold in reassembly buffers and outbound queues.
    pub memory_budget_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_frame_bytes: 1024 * 1024 + 64,
            max_message_bytes: 16 * 1024 * 1024,
            max_pipes: 64,
            handshake_timeout_ms: 10_000,
            outbound_queue: 4096,
            outbound_queue_bytes: 64 * 1024 * 1024,
            max_protocol_errors: 16,
            max_rooms_per_connection: 256,
            quic_idle_timeout_ms: 30_000,
            quic_keep_alive_ms: 10_000,
            quic_congestion: crate::transport::quic::Congestion::Bbr,
            quic_initial_window_bytes: 0,
            quic_udp_recv_buffer_bytes: 4 << 20,
            resume_grace_ms: 60_000,
            idle_timeout_ms: 90_000,
            tcp_keepalive_ms: 30_000,
            commands_per_second: 1_000,
            ack_window_bytes: 1 << 20,
            max_connections_per_ip: None,
            memory_budget_bytes: 1 << 30,
            http_header_timeout_ms: 10_000,
            http_max_header_bytes: 16 * 1024,
            http_body_timeout_ms: 10_000,
            http_idle_timeout_ms: 60_000,
            http2_max_streams: 64,
            max_pending_upgrades: 256,
        }
    }
}
