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
