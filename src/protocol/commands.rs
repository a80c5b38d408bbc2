//! The one list of in-band commands: for each, its wire name, its `Request` variant, its argument type
//! (`args/`) and where it may be sent. `Request` (its variants, parsing by name, names for logs and metrics,
//! places) is generated from this list here, and the session's dispatch from the same list
//! (`session/commands.rs`), so adding a command is an argument type, a line here, and its handler
//! (`impl Handle for <Args>` beside the session's other handlers). docs/architecture.md, "Adding a command".

/// Where a command may be sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    /// Pipe 0: the connection itself.
    Connection,
    /// A messaging pipe.
    Messaging,
    /// A signaling pipe (WebRTC).
    Signaling,
    /// Any pipe, 0 included.
    Any,
}

impl Place {
    /// Whether a command of this place may arrive on a pipe of `kind` (`None`: pipe 0).
    pub fn admits(self, kind: Option<super::args::PipeKind>) -> bool {
        use super::args::PipeKind;
        matches!(
            (self, kind),
            (Place::Any, _)
                | (Place::Connection, None)
                | (Place::Messaging, Some(PipeKind::Messaging))
                | (Place::Signaling, Some(PipeKind::Signaling))
        )
    }
}

/// Calls `$then!` with the list: `"wire name" => Variant(ArgsType) on Place,` for every command.
macro_rules! with_commands {
    ($then:ident) => {
        $then! {
            "connect" => Connect(Connect) on Connection,
            "refresh" => Refresh(Refresh) on Connection,
            "ping" => Ping(Ping) on Connection,
            "close" => Close(Close) on Connection,
            "create" => Create(Create) on Connection,
            "release" => Release(Release) on Connection,
            "join" => Join(Join) on Messaging,
            "leave" => Leave(Leave) on Messaging,
            "send" => Send(Send) on Messaging,
            "chmod" => Chmod(Chmod) on Messaging,
            "typing" => Typing(Typing) on Messaging,
            "history" => History(History) on Any,
            "read" => Read(Read) on Any,
            "redact" => Redact(Redact) on Any,
            "setProperty" => SetProperty(SetProperty) on Any,
            "getProperty" => GetProperty(GetProperty) on Any,
            "play" => Play(Play) on Signaling,
            "stop" => Stop(Stop) on Signaling,
            "sdp" => Sdp(Sdp) on Signaling,
            "candidate" => Candidate(Candidate) on Signaling,
        }
    };
}
pub(crate) use with_commands;

/// The wire name of a command's arguments, for whoever writes them (the client library): with `Command`,
/// `serde_json::to_value` of the arguments plus the name is the command.
pub trait Command {
    const NAME: &'static str;

    /// The arguments as a command's JSON object: `{"name": NAME, ...fields}`.
    fn to_args(&self) -> serde_json::Value
    where
        Self: serde::Serialize,
    {
        let mut v = serde_json::to_value(self).unwrap_or_else(|_| serde_json::json!({}));
        if let Some(map) = v.as_object_mut() {
            map.insert("name".into(), Self::NAME.into());
        }
        v
    }
}
