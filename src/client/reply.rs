//! A command received by the client: an answer (`status` with our txid) or a push.

use bytes::Bytes;
use serde_json::Value;

use super::error::ClientError;
use crate::protocol::CommandMessage;

#[derive(Debug, Clone)]
pub struct Reply {
    pub pipe: u16,
    pub txid: u16,
    pub timestamp: u32,
    pub args: Value,
    /// The arguments exactly as they arrived.
    pub raw_args: Bytes,
    pub payload: Bytes,
}

static NULL: Value = Value::Null;

impl Reply {
    pub(super) fn decode(pipe: u16, cmd: CommandMessage) -> Result<Reply, String> {
        let args: Value = serde_json::from_slice(&cmd.args)
            .map_err(|e| format!("server sent arguments that are not JSON: {e}"))?;
        Ok(Reply {
            pipe,
            txid: cmd.txid,
            timestamp: cmd.timestamp,
            args,
            raw_args: cmd.args,
            payload: cmd.payload,
        })
    }

    pub fn name(&self) -> &str {
        self.args["name"].as_str().unwrap_or("")
    }

    pub fn code(&self) -> &str {
        self.args["code"].as_str().unwrap_or("")
    }

    pub fn level(&self) -> &str {
        self.args["level"].as_str().unwrap_or("")
    }

    pub fn description(&self) -> &str {
        self.args["description"].as_str().unwrap_or("")
    }

    pub fn info(&self) -> &Value {
        self.args.get("info").unwrap_or(&NULL)
    }

    pub fn is_error(&self) -> bool {
        self.level() == "error"
    }

    /// Turns an error status into `ClientError::Status`.
    pub fn ok(self) -> Result<Reply, ClientError> {
        if self.is_error() {
            Err(ClientError::Status {
                code: self.code().to_string(),
                description: self.description().to_string(),
            })
        } else {
            Ok(self)
        }
    }
}
