//! Idempotent sends: a `send` with a client id (`cid`) that repeats one the same user sent within the window
//! is answered with the first one's result and neither stored nor delivered again.
//!
//! A phone that lost its connection before the answer came cannot know whether its message was stored; with
//! a `cid` it simply sends again after reconnecting. The first send's outcome is shared: a repeat that arrives
//! while the first is still in flight waits for it. A first send that failed is forgotten, so a retry is a
//! real retry. The window is in memory on the node that accepted the send (a restart forgets it).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use futures::future::{BoxFuture, FutureExt, Shared};
use tokio::sync::oneshot;

use super::post::Posted;

/// The first send's outcome, awaited by its repeats.
pub type SharedPosted = Shared<BoxFuture<'static, Result<Posted, String>>>;

/// Longest client id.
pub const MAX_CID: usize = 64;
/// Most remembered ids; past it expired ones are dropped, and if none expired, new ids are not remembered.
const MAX_ENTRIES: usize = 200_000;

pub struct Dedupe {
    window: Duration,
    recent: Mutex<HashMap<(String, String), (Instant, SharedPosted)>>,
}

/// What `begin` found.
pub enum Begun {
    /// The first send with this id: report its outcome through `Resolver::resolve`.
    First(Resolver),
    /// A repeat: the first's outcome.
    Repeat(SharedPosted),
}

/// Hands the first send's outcome to its repeats.
pub struct Resolver {
    key: (String, String),
    tx: oneshot::Sender<Result<Posted, String>>,
}

impl Dedupe {
    pub fn new(window: Duration) -> Dedupe {
        Dedupe {
            window,
            recent: Mutex::new(HashMap::new()),
        }
    }

    pub fn begin(&self, user: &str, cid: &str) -> Begun {
        let key = (user.to_string(), cid.to_string());
        let now = Instant::now();
        let mut recent = self.recent.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((at, shared)) = recent.get(&key) {
            if now.duration_since(*at) < self.window {
                return Begun::Repeat(shared.clone());
            }
        }
        let (tx, rx) = oneshot::channel();
        let shared: SharedPosted = async move {
            rx.await
                .unwrap_or_else(|_| Err("the first send with this cid was not answered".into()))
        }
        .boxed()
        .shared();
        if recent.len() >= MAX_ENTRIES {
            let window = self.window;
            recent.retain(|_, (at, _)| now.duration_since(*at) < window);
        }
        if recent.len() < MAX_ENTRIES {
            recent.insert(key.clone(), (now, shared));
        }
        Begun::First(Resolver { key, tx })
    }

    /// Records the first send's outcome; a failure is forgotten so that a retry is stored.
    pub fn resolve(&self, resolver: Resolver, outcome: Result<Posted, String>) {
        if outcome.is_err() {
            self.recent
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&resolver.key);
        }
        let _ = resolver.tx.send(outcome);
    }
}
