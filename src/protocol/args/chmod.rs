//! `chmod {rid, tid, operator, mask}`: change a user's rights in a room.
//!
//! Masks come as letters (`"rw"`) or as the numbers clients also know (r=0x0000FF, w=0x00FF00, x=0xFF0000);
//! both parse to the same `Mask`.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Mask(pub u32);

impl Mask {
    pub const R: Mask = Mask(0x0000FF);
    pub const W: Mask = Mask(0x00FF00);
    pub const X: Mask = Mask(0xFF0000);
    pub const NONE: Mask = Mask(0);
    pub const ALL: Mask = Mask(0xFFFFFF);

    pub fn contains(self, other: Mask) -> bool {
        self.0 & other.0 == other.0
    }

    pub fn union(self, other: Mask) -> Mask {
        Mask(self.0 | other.0)
    }

    pub fn minus(self, other: Mask) -> Mask {
        Mask(self.0 & !other.0)
    }

    /// Parses `"rwx"`-style letters; any other character is refused. Empty means no rights.
    pub fn from_letters(s: &str) -> Option<Mask> {
        let mut m = Mask::NONE;
        for c in s.chars() {
            m = m.union(match c {
                'r' => Mask::R,
                'w' => Mask::W,
                'x' => Mask::X,
                _ => return None,
            });
        }
        Some(m)
    }

    /// Numeric masks: any bit in a right's byte grants that right; bits above 0xFFFFFF are refused.
    pub fn from_number(n: u64) -> Option<Mask> {
        if n > 0xFF_FFFF {
            return None;
        }
        let n = n as u32;
        let mut m = Mask::NONE;
        for right in [Mask::R, Mask::W, Mask::X] {
            if n & right.0 != 0 {
                m = m.union(right);
            }
        }
        Some(m)
    }

    /// Canonical letters, e.g. `"rw"`.
    pub fn letters(self) -> String {
        let mut s = String::new();
        for (right, c) in [(Mask::R, 'r'), (Mask::W, 'w'), (Mask::X, 'x')] {
            if self.contains(right) {
                s.push(c);
            }
        }
        s
    }
}

/// Written as letters when the mask is whole r, w and x bytes (as clients write it), else as its number.
impl Serialize for Mask {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let letters = self.letters();
        if Mask::from_letters(&letters) == Some(*self) {
            s.serialize_str(&letters)
        } else {
            s.serialize_u32(self.0)
        }
    }
}

impl schemars::JsonSchema for Mask {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Mask".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "Rights: letters from r, w, x (\"rw\"), or a number whose bytes 0xFF, 0xFF00, 0xFF0000 are r, w, x.",
            "type": ["string", "integer"]
        })
    }
}

impl<'de> Deserialize<'de> for Mask {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Mask, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Letters(String),
            Number(u64),
        }
        match Raw::deserialize(d)? {
            Raw::Letters(s) => Mask::from_letters(&s).ok_or_else(|| {
                serde::de::Error::custom(format!("mask {s:?} may only hold the letters r, w, x"))
            }),
            Raw::Number(n) => Mask::from_number(n).ok_or_else(|| {
                serde::de::Error::custom(format!("mask {n:#x} has bits above 0xFFFFFF"))
            }),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub enum Operator {
    #[serde(rename = "+")]
    Add,
    #[serde(rename = "-")]
    Remove,
    #[serde(rename = "=")]
    Set,
}

impl Operator {
    pub fn apply(self, current: Mask, mask: Mask) -> Mask {
        match self {
            Operator::Add => current.union(mask),
            Operator::Remove => current.minus(mask),
            Operator::Set => mask,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Chmod {
    pub rid: String,
    pub tid: String,
    pub operator: Operator,
    pub mask: Mask,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn letters_and_numbers_agree() {
        assert_eq!(Mask::from_letters("rw"), Mask::from_number(0x00FFFF));
        assert_eq!(Mask::from_letters("x"), Some(Mask::X));
        assert_eq!(Mask::from_letters("rq"), None);
        assert_eq!(Mask::from_number(0x1000000), None);
        assert_eq!(Mask::ALL.letters(), "rwx");
    }

    #[test]
    fn masks_and_chmod_round_trip() {
        for m in [Mask::NONE, Mask::R, Mask::W.union(Mask::X), Mask::ALL] {
            let json = serde_json::to_string(&m).expect("json");
            assert_eq!(
                serde_json::from_str::<Mask>(&json).expect("back"),
                m,
                "{json}"
            );
        }
        assert_eq!(
            serde_json::to_string(&Mask::R.union(Mask::W)).expect("json"),
            r#""rw""#
        );
        let c = Chmod {
            rid: "r".into(),
            tid: "t".into(),
            operator: Operator::Remove,
            mask: Mask::W,
        };
        let json = serde_json::to_string(&c).expect("json");
        assert_eq!(json, r#"{"rid":"r","tid":"t","operator":"-","mask":"w"}"#);
        assert_eq!(serde_json::from_str::<Chmod>(&json).expect("back"), c);
    }

    #[test]
    fn operators() {
        let rw = Mask::R.union(Mask::W);
        assert_eq!(Operator::Remove.apply(rw, Mask::W), Mask::R);
        assert_eq!(
            Operator::Add.apply(Mask::R, Mask::X),
            Mask::R.union(Mask::X)
        );
        assert_eq!(Operator::Set.apply(rw, Mask::X), Mask::X);
    }
}
