//! The Odd IM wire format, and nothing else.
//!
//! This layer is pure: no sockets, no tasks, no clock (callers pass timestamps in). That is what lets the
//! fuzzers and property tests drive it with arbitrary bytes, and what lets every transport (TCP, TLS, QUIC,
//! WebSocket) share one definition of a frame.
//!
//! The flow of an incoming message is `bytes -> Frame (frame.rs) -> Message (reassembly.rs + message.rs)
//! -> Request (request.rs + args/)`; outgoing is `Status / push args -> CommandMessage -> Frame -> bytes`.

pub mod args;
pub mod command;
pub mod commands;
pub mod error;
pub mod frame;
pub mod json_check;
pub mod message;
pub mod outgoing;
pub mod reassembly;
pub mod request;
pub mod status;

pub use command::CommandMessage;
pub use error::{plain_json_error, ArgsError, FrameError};
pub use frame::{Frame, MessageType, HEADER_LEN};
pub use message::Message;
pub use reassembly::Reassembler;
pub use request::Request;
pub use status::{Level, Status};
