//! Command arguments parsed by name into one typed `Request`.
//!
//! Parsing happens in two steps: the `name` first, then the command's own struct. An unknown name is not an
//! error here: it becomes `Request::Unknown`, which the session answers with `NetConnection.Call.Failed`
//! while the connection stays up.

use serde::de::DeserializeOwned;
use serde::Deserialize;

use super::args::*;
use super::commands::{with_commands, Command, Place};
use super::error::ArgsError;

macro_rules! define_request {
    ($($wire:literal => $variant:ident($args:ident) on $place:ident,)*) => {
        /// A parsed command: one variant per entry of the command list (`commands.rs`), and three more.
        #[derive(Debug, Clone, PartialEq)]
        pub enum Request {
            $($variant($args),)*
            /// A command of the original server this gateway does not offer (`invoke`, `quit`: remote process
            /// execution): answered with a clear refusal, not "unknown".
            Unsupported(&'static str),
            /// A client's `status` (e.g. answering a server push): accepted and ignored.
            Status,
            Unknown(String),
        }

        impl Request {
            /// The wire name of every listed command.
            pub const NAMES: &'static [&'static str] = &[$($wire,)*];

            /// A listed command's arguments parsed by its wire name; `None` for a name not in the list.
            fn listed(name: &str, args: &[u8]) -> Option<Result<Request, ArgsError>> {
                Some(match name {
                    $($wire => typed::<$args>(name, args).map(Request::$variant),)*
                    _ => return None,
                })
            }

            /// The wire name of a known command; `"unknown"` for others.
            pub fn static_name(&self) -> &'static str {
                match self {
                    $(Request::$variant(_) => $wire,)*
                    Request::Unsupported(name) => name,
                    Request::Status => "status",
                    Request::Unknown(_) => "unknown",
                }
            }

            /// Where a listed command may be sent (`None`: `status`, refusals and unknown names, which any
            /// pipe may carry).
            pub fn place(&self) -> Option<Place> {
                match self {
                    $(Request::$variant(_) => Some(Place::$place),)*
                    _ => None,
                }
            }
        }

        $(impl Command for $args {
            const NAME: &'static str = $wire;
        })*
    };
}
with_commands!(define_request);

/// Parses one command's arguments; serde_path_to_error names the offending field (`kind: unknown variant ...`).
fn typed<T: DeserializeOwned>(name: &str, args: &[u8]) -> Result<T, ArgsError> {
    let mut de = serde_json::Deserializer::from_slice(args);
    serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = super::error::plain_json_error(&e.into_inner().to_string());
        ArgsError::Invalid {
            name: name.to_string(),
            reason: if path == "." {
                inner
            } else {
                format!("{path}: {inner}")
            },
        }
    })
}

#[derive(Deserialize)]
struct NameOnly<'a> {
    #[serde(borrow)]
    name: Option<std::borrow::Cow<'a, str>>,
}

impl Request {
    /// Parses JSON arguments. Never panics on any input.
    pub fn parse(args: &[u8]) -> Result<Request, ArgsError> {
        // Serde would also read a struct from a JSON array; arguments must be an object.
        if args.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
            return Err(ArgsError::NotObject);
        }
        // One walk checks what every later reader needs (depth, valid Unicode); see json_check.rs.
        super::json_check::check_json(args).map_err(|e| match e {
            super::json_check::JsonCheckError::TooDeep => ArgsError::TooDeep,
            super::json_check::JsonCheckError::Invalid(e) => ArgsError::Json(e),
        })?;
        let head: NameOnly =
            serde_json::from_slice(args).map_err(|e| ArgsError::Json(e.to_string()))?;
        let name = head.name.ok_or(ArgsError::NoName)?;
        if let Some(parsed) = Request::listed(&name, args) {
            return parsed;
        }
        Ok(match name.as_ref() {
            "invoke" => Request::Unsupported("invoke"),
            "quit" => Request::Unsupported("quit"),
            "status" => Request::Status,
            other => Request::Unknown(other.to_string()),
        })
    }

    /// The command's wire name, for logs and metrics.
    pub fn name(&self) -> &str {
        match self {
            Request::Unknown(name) => name,
            other => other.static_name(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_seed_examples() {
        let c = Request::parse(
            br#"{"name":"connect","device":"","os":"Mac/10.15.6","kernel":"AppleWebKit/605.1.15",
                "browser":"Safari/14.0.3","client":"odd.js/2.4.25","uuid":"","parameters":{"token":"t"}}"#,
        );
        match c {
            Ok(Request::Connect(c)) => assert_eq!(c.parameters.token, "t"),
            other => panic!("{other:?}"),
        }
        let s = Request::parse(
            br#"{"name":"send","type":"text","cast":"uni","id":"10001","data":"hello",
                "user":{"id":"10000","nick":"Spencer","avatar":""},"room":{"id":"001"}}"#,
        );
        match s {
            Ok(Request::Send(s)) => {
                assert_eq!(s.cast, Cast::Uni);
                assert_eq!(
                    s.data.map(|d| d.get().to_string()).as_deref(),
                    Some("\"hello\"")
                );
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            Request::parse(br#"{"name":"chmod","rid":"1","tid":"2","operator":"+","mask":"w"}"#),
            Ok(Request::Chmod(Chmod {
                mask: Mask::W,
                operator: Operator::Add,
                ..
            }))
        ));
        assert!(matches!(
            Request::parse(
                br#"{"name":"candidate","candidate":"c","sdpMid":"0","sdpMLineIndex":0}"#
            ),
            Ok(Request::Candidate(Candidate {
                sdp_mline_index: Some(0),
                ..
            }))
        ));
    }

    #[test]
    fn errors_are_typed() {
        assert!(matches!(Request::parse(b"{nope"), Err(ArgsError::Json(_))));
        assert_eq!(Request::parse(br#"{"x":1}"#), Err(ArgsError::NoName));
        assert!(matches!(
            Request::parse(br#"{"name":"join"}"#),
            Err(ArgsError::Invalid { name, reason }) if name == "join" && reason.contains("rid")
        ));
        assert!(matches!(
            Request::parse(br#"{"name":"join","rid":7}"#),
            Err(ArgsError::Invalid { .. })
        ));
        assert_eq!(
            Request::parse(br#"{"name":"dance","with":"me"}"#),
            Ok(Request::Unknown("dance".into()))
        );
    }
}
