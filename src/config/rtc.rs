//! `[rtc]`: the SFU (WebRTC media relay, docs/rtc.md). Its UDP port is `listen.rtc`.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Rtc {
    /// The address browsers reach the SFU at, when it is not the bound one (behind NAT, or bound to
    /// 0.0.0.0). It goes into the SFU's ICE candidates and its stream names.
    pub public_ip: Option<IpAddr>,
    /// The last part of the names of streams published on a signaling pipe that sets no `app` property.
    pub app: String,
    /// Publications one connection may hold at once.
    pub max_publications_per_connection: usize,
    /// Players one publication may have at once.
    pub max_players_per_stream: usize,
    /// A peer connection whose ICE and DTLS have not completed this long after the offer/answer is dropped
    /// (its owner gets `NetStream.Failed`).
    pub connect_timeout_ms: u64,
    /// A connected peer connection from which nothing at all (consent checks, media, RTCP) arrived for this
    /// long is ended, its metrics given back and its owner told (RFC 7675's consent window is 30 s).
    pub consent_timeout_ms: u64,
    /// The SFU's UDP receive buffer (0: the OS default, ~200 KiB on Linux, which a hundred players joining
    /// at once overflow).
    pub udp_recv_buffer_bytes: usize,
}

impl Default for Rtc {
    fn default() -> Rtc {
        Rtc {
            public_ip: None,
            app: "im".to_string(),
            max_publications_per_connection: 4,
            max_players_per_stream: 100,
            connect_timeout_ms: 20_000,
            consent_timeout_ms: 30_000,
            udp_recv_buffer_bytes: 4 << 20,
        }
    }
}

impl Rtc {
    /// The SFU's settings, once its socket is bound and its announced address known.
    pub fn settings(&self, announce: std::net::SocketAddr) -> crate::sfu::SfuSettings {
        crate::sfu::SfuSettings {
            announce,
            max_publications_per_connection: self.max_publications_per_connection.max(1),
            max_players_per_stream: self.max_players_per_stream.max(1),
            connect_timeout: std::time::Duration::from_millis(self.connect_timeout_ms.max(1_000)),
            consent_timeout: std::time::Duration::from_millis(self.consent_timeout_ms.max(1_000)),
        }
    }
}
