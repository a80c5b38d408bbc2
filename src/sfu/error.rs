//! Why an SFU call failed; the session turns each into a status (`NetStream.Play.Failed`, ...).

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum SfuError {
    #[error("the media relay (SFU) is off on this gateway")]
    Off,
    #[error("bad SDP: {0}")]
    BadSdp(String),
    #[error("{0} is not published")]
    NotFound(String),
    #[error("{0} is served by the SFU at {1}, not by this node")]
    OtherNode(String, std::net::SocketAddr),
    #[error("this pipe already has a peer connection")]
    InUse,
    #[error("no offer of the gateway is waiting for an answer on this pipe")]
    NoOffer,
    #[error("limit reached: {0}")]
    Limit(String),
}
