//! `connect`: the first command on pipe 0, carrying the client's description and its token.

use serde::Deserialize;

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Default)]
#[serde(default)]
pub struct Connect {
    pub device: String,
    pub os: String,
    pub kernel: String,
    pub browser: String,
    pub client: String,
    /// Empty, or the uuid of an earlier session to resume (fast reconnect).
    pub uuid: String,
    pub parameters: ConnectParameters,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Default)]
#[serde(default)]
pub struct ConnectParameters {
    pub token: String,
}

/// `refresh {token}` on pipe 0: a fresh token for a live connection, before the old one expires. The user must
/// stay the same; the new token's claims (rooms, expiry) replace the old ones.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Refresh {
    pub token: String,
}
