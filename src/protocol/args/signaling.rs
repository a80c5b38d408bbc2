//! WebRTC signaling on `signaling` pipes: `play`, `stop`, `sdp`, `candidate`.

use serde::Deserialize;

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Play {
    /// `name@host/app`, matched as a whole.
    pub stream: String,
    #[serde(default = "default_mode")]
    pub mode: String,
}

fn default_mode() -> String {
    "all".to_string()
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Stop {
    pub stream: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Sdp {
    #[serde(rename = "type")]
    pub kind: String,
    pub sdp: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Candidate {
    pub candidate: String,
    #[serde(default)]
    pub sdp_mid: Option<String>,
    #[serde(default, rename = "sdpMLineIndex")]
    pub sdp_mline_index: Option<u32>,
}
