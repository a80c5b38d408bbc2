//! What JSON the gateway accepts: only text that every later reader can read back.
//!
//! Command arguments are stored (`send`'s `data`, properties) and later embedded in pushes, history pages and
//! HTTP answers, each of which adds a few levels of nesting around them, and are then parsed by clients whose
//! JSON parsers have limits (serde_json refuses more than 128 levels and lone UTF-16 surrogates; browsers
//! accept both). A message that the send path relays verbatim but that a reader cannot parse would poison a
//! room's history for everyone, so the edge refuses it: at most `MAX_DEPTH` levels of arrays and objects, and
//! every string (keys included) valid Unicode once its escapes are decoded. The history read path applies the
//! same check to stored rows, so data stored before this rule existed cannot break a page either.

use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

/// Most levels of arrays and objects in a command's arguments (the arguments object itself is level 1), so a
/// `send`'s `data` may nest 31 levels. Pages and pushes add at most 6 levels; clients' parsers allow 128.
pub const MAX_DEPTH: usize = 32;

/// Why a JSON text was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JsonCheckError {
    #[error("JSON nests deeper than {MAX_DEPTH} levels")]
    TooDeep,
    #[error("not valid JSON: {0}")]
    Invalid(String),
}

/// Checks a whole JSON text (one value, nothing after it but whitespace). Never panics, never recurses more
/// than `MAX_DEPTH + 1` levels.
pub fn check_json(text: &[u8]) -> Result<(), JsonCheckError> {
    let mut de = serde_json::Deserializer::from_slice(text);
    let mut too_deep = false;
    let result = Check {
        depth: 0,
        too_deep: &mut too_deep,
    }
    .deserialize(&mut de)
    .and_then(|()| de.end());
    match result {
        Ok(()) => Ok(()),
        Err(_) if too_deep => Err(JsonCheckError::TooDeep),
        Err(e) => Err(JsonCheckError::Invalid(e.to_string())),
    }
}

/// Walks a value without building it: strings are decoded (so escapes are validated), containers counted.
struct Check<'a> {
    depth: usize,
    too_deep: &'a mut bool,
}

impl<'de> DeserializeSeed<'de> for Check<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

/// A map key: decoded like any string.
struct Key;

impl<'de> DeserializeSeed<'de> for Key {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_str(KeyVisitor)
    }
}

struct KeyVisitor;

impl Visitor<'_> for KeyVisitor {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string key")
    }

    fn visit_str<E: serde::de::Error>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
}

impl Check<'_> {
    fn enter<E: serde::de::Error>(&mut self) -> Result<(), E> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            *self.too_deep = true;
            return Err(E::custom("too deep"));
        }
        Ok(())
    }
}

impl<'de> Visitor<'de> for Check<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<(), A::Error> {
        self.enter()?;
        while seq
            .next_element_seed(Check {
                depth: self.depth,
                too_deep: self.too_deep,
            })?
            .is_some()
        {}
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<(), A::Error> {
        self.enter()?;
        while map.next_key_seed(Key)?.is_some() {
            map.next_value_seed(Check {
                depth: self.depth,
                too_deep: self.too_deep,
            })?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nested(n: usize) -> String {
        format!("{}{}", "[".repeat(n), "]".repeat(n))
    }

    #[test]
    fn accepts_ordinary_json() {
        for ok in [
            r#"{"name":"send","data":{"a":[1,2.5,-3,"x\u00e9\ud83d\ude00",null,true]}}"#,
            "\"plain\"",
            "  0  ",
            &nested(MAX_DEPTH),
        ] {
            assert_eq!(check_json(ok.as_bytes()), Ok(()), "{ok}");
        }
    }

    #[test]
    fn refuses_what_readers_cannot_parse() {
        assert_eq!(
            check_json(nested(MAX_DEPTH + 1).as_bytes()),
            Err(JsonCheckError::TooDeep)
        );
        // Far deeper than serde_json's own recursion limit: refused, not a stack overflow.
        assert_eq!(
            check_json(nested(100_000).as_bytes()),
            Err(JsonCheckError::TooDeep)
        );
        for bad in [
            r#""\ud800""#,
            r#"{"\udc00":1}"#,
            r#"["\ud800x"]"#,
            "{\"a\":1} trailing",
            "{\"a\":",
            "",
        ] {
            assert!(
                matches!(check_json(bad.as_bytes()), Err(JsonCheckError::Invalid(_))),
                "{bad}"
            );
        }
        assert!(check_json(b"\"\xff\"").is_err());
    }
}
