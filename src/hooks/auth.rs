//! One way to turn a token into a user, for `connect` on every transport, the HTTP API and WHIP/WHEP alike:
//! the backend's `connect` hook when one is configured (with its `fail_open` rule), else the configured
//! tokens and keys. So a token the hook refuses is refused everywhere, and a token only the hook knows works
//! everywhere (before, the HTTP API and WHIP/WHEP checked tokens without the hook).

use std::sync::Arc;

use super::{ConnectHook, ConnectOutcome};
use crate::auth::{AuthError, Principal, TokenVerifier};
use crate::metrics::Metrics;

#[derive(Clone)]
pub struct Authenticator {
    verifier: Arc<dyn TokenVerifier>,
    hook: Option<ConnectHook>,
    metrics: Arc<Metrics>,
}

impl Authenticator {
    pub fn new(
        verifier: Arc<dyn TokenVerifier>,
        hook: Option<ConnectHook>,
        metrics: Arc<Metrics>,
    ) -> Authenticator {
        Authenticator {
            verifier,
            hook,
            metrics,
        }
    }

    /// Who `token` names, asked for a client on `transport` (`tcp`, `quic`, `ws`, ..., `http`) from `peer`.
    pub async fn principal(
        &self,
        token: &str,
        transport: &str,
        peer: &str,
    ) -> Result<Principal, AuthError> {
        let Some(hook) = &self.hook else {
            return self.verifier.principal(token);
        };
        let started = std::time::Instant::now();
        let outcome = hook.ask(token, transport, peer).await;
        self.metrics
            .hook_duration_seconds
            .with_label_values(&["connect"])
            .observe(started.elapsed().as_secs_f64());
        let (label, result) = match outcome {
            ConnectOutcome::Accepted(p) => ("accepted", Ok(p)),
            ConnectOutcome::Refused(e) => ("refused", Err(e)),
            ConnectOutcome::Unavailable(why) => {
                tracing::warn!(%transport, %peer, reason = %why, fail_open = hook.fail_open, "connect hook unavailable");
                let result = if hook.fail_open {
                    self.verifier.principal(token)
                } else {
                    Err(AuthError::Unavailable(why))
                };
                ("unavailable", result)
            }
        };
        self.metrics
            .hook_calls_total
            .with_label_values(&["connect", label])
            .inc();
        result
    }

    /// The configured tokens and keys only (a `refresh`, whose user is already known).
    pub fn verifier(&self) -> &Arc<dyn TokenVerifier> {
        &self.verifier
    }
}
