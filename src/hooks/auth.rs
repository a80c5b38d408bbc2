//! One way to turn a token into a user, for `connect` on every transport, the HTTP API and WHIP/WHEP alike:
//! the backend's `connect` hook when one is configured (with its `fail_open` rule), else the configured
//! tokens and keys. So a token the hook refuses is refused everywhere, and a token only the hook knows works
//! everywhere (before, the HTTP API and WHIP/WHEP checked tokens without the hook).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::{ConnectHook, ConnectOutcome};
use crate::auth::{AuthError, Principal, TokenVerifier};
use crate::metrics::Metrics;

/// Tokens whose hook answers may be reused at once (the oldest are dropped past it).
const CACHED_TOKENS: usize = 10_000;

#[derive(Clone)]
pub struct Authenticator {
    verifier: Arc<dyn TokenVerifier>,
    hook: Option<ConnectHook>,
    metrics: Arc<Metrics>,
    /// Hook answers the backend allowed to reuse (`cache_s`): token -> (principal, until).
    cache: Arc<Mutex<HashMap<String, (Principal, Instant)>>>,
    /// The look of the server's own identity (`server_api.publisher_id`, its `skeleton`, made once): no
    /// member may be it or look like it, so what it sends (and the rooms it owns) cannot be imitated by a
    /// token.
    reserved: Option<Arc<str>>,
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
            cache: Arc::default(),
            reserved: None,
        }
    }

    /// Refuses every principal whose user id is `id` (the server's publisher identity) or looks like it
    /// (`protocol::args::user::skeleton`).
    pub fn reserving(mut self, id: &str) -> Authenticator {
        self.reserved = Some(Arc::from(crate::protocol::args::user::skeleton(id)));
        self
    }

    /// Who `token` names, asked for a client on `transport` (`tcp`, `quic`, `ws`, ..., `http`) from `peer`.
    pub async fn principal(
        &self,
        token: &str,
        transport: &str,
        peer: &str,
    ) -> Result<Principal, AuthError> {
        let p = self.resolve(token, transport, peer).await?;
        if let Some(reserved) = self.reserved.as_deref() {
            if crate::protocol::args::user::skeleton(&p.user.id) == reserved {
                return Err(AuthError::Invalid(format!(
                    "user id `{}` is or looks like the server's own identity (server_api.publisher_id)",
                    p.user.id
                )));
            }
        }
        Ok(p)
    }

    async fn resolve(
        &self,
        token: &str,
        transport: &str,
        peer: &str,
    ) -> Result<Principal, AuthError> {
        let Some(hook) = &self.hook else {
            return self.verifier.principal(token);
        };
        if let Some(p) = self.cached(token) {
            return Ok(p);
        }
        let started = std::time::Instant::now();
        let outcome = hook.ask(token, transport, peer).await;
        self.metrics
            .hook_duration_seconds
            .with_label_values(&["connect"])
            .observe(started.elapsed().as_secs_f64());
        let (label, result) = match outcome {
            ConnectOutcome::Accepted(p, keep) => {
                if let Some(keep) = keep {
                    self.remember(token, &p, keep);
                }
                ("accepted", Ok(p))
            }
            ConnectOutcome::Refused(e) => ("refused", Err(e)),
            ConnectOutcome::Unavailable(public, why) => {
                tracing::warn!(%transport, %peer, reason = %why, fail_open = hook.fail_open, "connect hook unavailable");
                let result = if hook.fail_open {
                    self.verifier.principal(token)
                } else {
                    // The details (the hook's URL, a redirect's target, a parse error) are the operator's, in the
                    // log above; the client learns only their category.
                    Err(AuthError::Unavailable(public.into()))
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

    fn cache(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Principal, Instant)>> {
        self.cache.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn cached(&self, token: &str) -> Option<Principal> {
        let mut cache = self.cache();
        match cache.get(token) {
            Some((p, until)) if *until > Instant::now() => Some(p.clone()),
            Some(_) => {
                cache.remove(token);
                None
            }
            None => None,
        }
    }

    fn remember(&self, token: &str, p: &Principal, keep: Duration) {
        let mut cache = self.cache();
        if cache.len() >= CACHED_TOKENS {
            let now = Instant::now();
            cache.retain(|_, (_, until)| *until > now);
            if cache.len() >= CACHED_TOKENS {
                cache.clear();
            }
        }
        cache.insert(token.to_string(), (p.clone(), Instant::now() + keep));
    }

    /// The configured tokens and keys only (a `refresh`, whose user is already known).
    pub fn verifier(&self) -> &Arc<dyn TokenVerifier> {
        &self.verifier
    }
}
