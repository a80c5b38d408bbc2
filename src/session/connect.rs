//! `connect`: authenticate, name the session, answer with who the client is.

use serde_json::json;

use super::connection::Session;
use super::error::SessionError;
use super::Identity;
use crate::protocol::args::Connect;
use crate::protocol::status::codes;
use crate::protocol::Status;

impl Session {
    pub(super) async fn connect(&mut self, args: Connect) -> Result<Status, SessionError> {
        if self.identity.is_some() {
            return Err(SessionError::AlreadyConnected);
        }
        let user = self.ctx.verifier.verify(&args.parameters.token)?;
        // Keeping the users table current is not worth refusing a connect over.
        if let Err(e) = self.ctx.store.upsert_user(&user).await {
            tracing::warn!(error = %e, user = %user.id, "could not record the user");
        }
        // A uuid we do not know (or none) starts a fresh session; the client sees a new uuid and drops its
        // old pipes, as PROTOCOL.md §3.2 says.
        let identity = Identity {
            uuid: uuid::Uuid::new_v4().to_string(),
            user,
        };
        tracing::debug!(
            conn = self.id,
            uuid = %identity.uuid,
            user = %identity.user.id,
            client = %args.client,
            "connected"
        );
        let status = Status::ok(codes::CONNECT_SUCCESS, "connect success")
            .with_info(json!({ "uuid": identity.uuid, "user": identity.user }));
        self.identity = Some(identity);
        Ok(status)
    }
}
