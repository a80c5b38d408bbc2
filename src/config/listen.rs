//! A listener setting: a socket address, or `off` to disable that transport.

use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListenAddr(Option<SocketAddr>);

impl ListenAddr {
    pub fn local(port: u16) -> ListenAddr {
        ListenAddr(Some(SocketAddr::from((Ipv4Addr::LOCALHOST, port))))
    }

    pub fn off() -> ListenAddr {
        ListenAddr(None)
    }

    pub fn addr(&self) -> Option<SocketAddr> {
        self.0
    }
}

impl FromStr for ListenAddr {
    type Err = String;

    fn from_str(s: &str) -> Result<ListenAddr, String> {
        match s.trim() {
            "off" | "" => Ok(ListenAddr(None)),
            other => other.parse().map(|a| ListenAddr(Some(a))).map_err(|e| {
                format!("{other:?} is neither `off` nor an address like 127.0.0.1:7100: {e}")
            }),
        }
    }
}

impl fmt::Display for ListenAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(a) => write!(f, "{a}"),
            None => f.write_str("off"),
        }
    }
}

impl<'de> Deserialize<'de> for ListenAddr {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<ListenAddr, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl Serialize for ListenAddr {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl schemars::JsonSchema for ListenAddr {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "ListenAddr".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "description": "An address like 127.0.0.1:7100, or `off`."
        })
    }
}
