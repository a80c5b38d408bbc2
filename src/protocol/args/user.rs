//! The user object clients display: `{"id","nick","avatar"}`.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct User {
    pub id: String,
    pub nick: String,
    pub avatar: String,
}
