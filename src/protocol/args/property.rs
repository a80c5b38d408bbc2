//! `setProperty {info}` and `getProperty {keys}` on pipe 0 or a pipe.

use serde::Deserialize;
use serde_json::{Map, Value};

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct SetProperty {
    pub info: Map<String, Value>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct GetProperty {
    pub keys: Vec<String>,
}
