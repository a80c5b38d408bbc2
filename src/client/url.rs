//! Gateway URLs: the scheme picks the transport (`tcp://host:port`).

use std::str::FromStr;

use super::error::ClientError;
use crate::transport::{self, Link, LinkInfo, TransportKind};

/// Frames up to this size are accepted from the server.
const CLIENT_MAX_FRAME: usize = 64 * 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub kind: TransportKind,
    /// `host:port`.
    pub authority: String,
}

impl FromStr for Endpoint {
    type Err = ClientError;

    fn from_str(url: &str) -> Result<Endpoint, ClientError> {
        let bad = |reason: &str| ClientError::Url {
            url: url.to_string(),
            reason: reason.to_string(),
        };
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| bad("expected scheme://host:port, e.g. tcp://127.0.0.1:7100"))?;
        let kind = match scheme {
            "tcp" => TransportKind::Tcp,
            other => return Err(bad(&format!("unsupported scheme {other:?} (use tcp)"))),
        };
        let authority = rest.split('/').next().unwrap_or_default().to_string();
        if !authority.contains(':') {
            return Err(bad("a port is required, e.g. tcp://127.0.0.1:7100"));
        }
        Ok(Endpoint { kind, authority })
    }
}

impl Endpoint {
    pub async fn open(&self) -> Result<Link, ClientError> {
        let connect_err = |source| ClientError::Connect {
            target: self.authority.clone(),
            source,
        };
        match self.kind {
            TransportKind::Tcp => {
                let stream = tokio::net::TcpStream::connect(&self.authority)
                    .await
                    .map_err(connect_err)?;
                let _ = stream.set_nodelay(true);
                let peer = stream.peer_addr().map_err(connect_err)?;
                Ok(transport::tcp::link(
                    stream,
                    LinkInfo {
                        kind: TransportKind::Tcp,
                        peer,
                    },
                    CLIENT_MAX_FRAME,
                ))
            }
            other => Err(ClientError::Url {
                url: format!("{other}://{}", self.authority),
                reason: "transport not supported by this client yet".into(),
            }),
        }
    }
}
