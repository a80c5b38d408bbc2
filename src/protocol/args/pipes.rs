//! `create` and `release`: pipes (NetStreams) on pipe 0.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PipeKind {
    Messaging,
    Signaling,
}

impl PipeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            PipeKind::Messaging => "messaging",
            PipeKind::Signaling => "signaling",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Create {
    pub kind: PipeKind,
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub parameters: serde_json::Map<String, serde_json::Value>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Release {
    pub id: u16,
    #[serde(default)]
    pub reason: String,
}
