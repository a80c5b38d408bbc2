//! Stream names the SFU hands out: `<id>@<ip:port>/<app>`.
//!
//! `<id>` is the publisher's MediaStream id (its `a=msid`), made unique on this node: the odd.js SDK keys its
//! players by the part before `@`. The address is where the SFU's media is served (its announced UDP
//! address), so a name says which node holds the publication and a name of any other form is never taken
//! for one (those still pair two players, as before the SFU: docs/rtc.md).

use std::net::SocketAddr;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamName {
    pub id: String,
    pub addr: SocketAddr,
    pub app: String,
}

/// Longest id kept from an offer's msid (RFC 8830 allows 64 token characters).
const MAX_ID: usize = 64;

impl StreamName {
    /// `None` unless `s` is `<id>@<ip:port>/<app>` with a non-empty id and app.
    pub fn parse(s: &str) -> Option<StreamName> {
        let (id, rest) = s.split_once('@')?;
        let (host, app) = rest.split_once('/')?;
        let addr = host.parse::<SocketAddr>().ok()?;
        (!id.is_empty() && !app.is_empty()).then(|| StreamName {
            id: id.to_string(),
            addr,
            app: app.to_string(),
        })
    }

    /// Whether `app` may end a stream name: a room id's rule (`valid_room_id`: no markup, control or invisible
    /// characters), and no `@`.
    pub fn valid_app(app: &str) -> bool {
        crate::protocol::args::rooms::valid_room_id(app) && !app.contains('@')
    }

    /// The id part of a name from an msid stream id: token characters only (no `@` or `/`), at most 64, and
    /// never `.` or `..` (it ends a URL: `Location`, `/whep/{app}/{id}`, where those are path steps).
    pub fn id_from_msid(msid: &str) -> String {
        let id: String = msid.chars().filter(|c| id_char(*c)).take(MAX_ID).collect();
        if StreamName::is_id(&id) {
            id
        } else {
            "stream".to_string()
        }
    }

    /// Whether `id` could be the id part of a name this SFU hands out (`id_from_msid`).
    pub fn is_id(id: &str) -> bool {
        !id.is_empty()
            && id != "."
            && id != ".."
            && id.chars().count() <= MAX_ID
            && id.chars().all(id_char)
    }
}

/// An msid token character kept in a name's id (RFC 8830's token characters that are safe in a URL path).
fn id_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "-_.+".contains(c)
}

/// An msid part as str0m writes it into an SDP (RFC 8830 token characters, at most 64): the track ids the
/// gateway reports (`Publish.Start`, `Play.Stop {track}`) must be the ones a player's offer carries.
pub fn msid_token(s: &str) -> String {
    s.chars()
        .filter(|c| {
            let u = *c as u32;
            u == 0x21
                || (0x23..=0x27).contains(&u)
                || (0x2a..=0x2b).contains(&u)
                || (0x2d..=0x2e).contains(&u)
                || (0x30..=0x39).contains(&u)
                || (0x41..=0x5a).contains(&u)
                || (0x5e..0x7e).contains(&u)
        })
        .take(MAX_ID)
        .collect()
}

impl std::fmt::Display for StreamName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}@{}/{}", self.id, self.addr, self.app)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_other_forms_are_not_sfu_names() {
        let n = StreamName::parse("abc-1@127.0.0.1:7103/im").expect("an SFU name");
        assert_eq!(n.id, "abc-1");
        assert_eq!(n.app, "im");
        assert_eq!(n.to_string(), "abc-1@127.0.0.1:7103/im");
        let v6 = StreamName::parse("x@[::1]:7103/lobby/a").expect("v6");
        assert_eq!(v6.app, "lobby/a");
        for other in [
            "call-1@gw.example/lobby",
            "a@1.2.3.4/x",
            "@1.2.3.4:1/x",
            "a@1.2.3.4:1/",
            "plain",
        ] {
            assert!(StreamName::parse(other).is_none(), "{other}");
        }
        assert_eq!(StreamName::id_from_msid("{a@b/c}"), "abc");
        assert_eq!(StreamName::id_from_msid("@/"), "stream");
        assert_eq!(StreamName::id_from_msid(".."), "stream");
        assert_eq!(StreamName::id_from_msid("."), "stream");
        assert_eq!(StreamName::id_from_msid("..."), "...");
        assert_eq!(
            msid_token("a b/c@d{e}"),
            "abcd{e}",
            "as str0m writes an msid"
        );
    }
}
