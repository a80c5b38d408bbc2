//! Typed arguments, one file per command family of the seed document.
//!
//! Unknown fields are ignored (clients may add their own); missing optional fields take defaults; a field of
//! the wrong JSON type is an error with serde's description, which the session hands back in a `status`.

pub mod chmod;
pub mod connect;
pub mod history;
pub mod pipes;
pub mod property;
pub mod rooms;
pub mod send;
pub mod signaling;
pub mod user;

pub use chmod::{Chmod, Mask, Operator};
pub use connect::{Close, Connect, Ping, Refresh};
pub use history::{History, Read, Redact};
pub use pipes::{Create, PipeKind, Release};
pub use property::{GetProperty, SetProperty};
pub use rooms::{Join, Leave, Typing};
pub use send::{Cast, RoomRef, Send, SendKind, SendPush};
pub use signaling::{Candidate, Play, Sdp, Stop};
pub use user::User;
