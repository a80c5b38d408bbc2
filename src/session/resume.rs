//! Fast reconnect: a connected session that loses its transport is parked for a grace period, with its pipes,
//! its room memberships (so nobody sees it leave) and its outgoing queue (which keeps collecting pushes). A
//! `connect` that names its uuid, from the same user, takes it over: the new transport first writes the
//! connect answer, then everything that queued up, in order, then the live traffic.
//!
//! A session whose transport is still up when its uuid reconnects (a phone that changed networks before the
//! gateway noticed) is kicked off its old transport and handed over the same way.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::{oneshot, Notify, Semaphore};

use super::pipes::Pipes;
use super::Identity;
use crate::transport::{OutboundRx, Outbox};

/// Everything a resumed session takes over.
pub struct Handover {
    pub id: u64,
    pub identity: Identity,
    pub pipes: Pipes,
    pub joined: super::joined::JoinedRooms,
    pub out: Outbox,
    pub in_flight: Arc<Semaphore>,
    /// The queue with what waited for the client.
    pub queued: OutboundRx,
}

type Claim = oneshot::Sender<Handover>;

/// How a live session is told to stop: taken over by a reconnect (it parks for the claimant), or
/// disconnected by the server API (it tells its client why and ends).
#[derive(Debug, Default)]
pub struct Kick {
    notify: Notify,
    disconnect: Mutex<Option<String>>,
    /// The first claim that kicked it, and that claim's attempt name.
    taker: Mutex<Option<(u64, String)>>,
}

/// Numbers claims, so the one that kicked a session is the one that gets it.
static CLAIMS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

/// How long a session parked by a takeover is kept for the claim that kicked it before any claim may have it
/// (that claimant may have given up).
const RESERVED_FOR: Duration = Duration::from_secs(2);

impl Kick {
    /// Kicks the session off its transport for claim `claim` (attempt `by`); false when another claim got
    /// there first (that one gets the session: the goodbye names its attempt).
    fn take_over(&self, claim: u64, by: &str) -> bool {
        let mut taker = self.taker.lock().unwrap_or_else(|e| e.into_inner());
        match &*taker {
            Some((first, _)) if *first != claim => return false,
            Some(_) => {}
            None => *taker = Some((claim, by.to_string())),
        }
        self.notify.notify_one();
        true
    }

    /// The attempt (`connect {attempt}`) that took this session over, when it named one.
    pub fn taken_by(&self) -> Option<String> {
        self.taker
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .map(|(_, by)| by.clone())
            .filter(|a| !a.is_empty())
    }

    /// The claim this session was kicked for, if any: its parked entry is kept for it a moment.
    pub fn claimed_by(&self) -> Option<u64> {
        self.taker
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .map(|(claim, _)| *claim)
    }

    fn disconnect(&self, reason: &str) {
        *self.disconnect.lock().unwrap_or_else(|e| e.into_inner()) = Some(reason.to_string());
        self.notify.notify_one();
    }

    pub async fn notified(&self) {
        self.notify.notified().await
    }

    /// Set once the server API disconnected this session: the reason its client is told.
    pub fn disconnect_reason(&self) -> Option<String> {
        self.disconnect
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

enum Entry {
    Live {
        user: String,
        kick: Arc<Kick>,
    },
    Parked {
        user: String,
        claim: oneshot::Sender<Claim>,
        /// The claim that kicked it off its transport, and since when.
        reserved: Option<(u64, tokio::time::Instant)>,
    },
    /// Handed to a claim that has not yet registered it as live (`live`): other claims wait instead of
    /// finding nothing and starting a fresh session. Stale after `MOVING_FOR` (the claimant failed).
    Moving {
        user: String,
        since: tokio::time::Instant,
    },
}

/// How long a session being handed over keeps other claims waiting.
const MOVING_FOR: Duration = Duration::from_secs(3);

/// Why a claim failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClaimError {
    /// The uuid belongs to another user's session.
    OtherUser,
}

#[derive(Default)]
pub struct Registry {
    entries: Mutex<HashMap<String, Entry>>,
}

impl crate::rooms::SessionDirectory for Registry {
    fn disconnect_user(&self, user: &str, reason: &str) -> usize {
        Registry::disconnect_user(self, user, reason)
    }

    fn sessions_of(&self, user: &str) -> (usize, usize) {
        Registry::sessions_of(self, user)
    }
}

impl Registry {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, Entry>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Ends every session of `user` on this node: live ones tell their client `reason` and close; parked
    /// ones are handed to a claimant that is already gone, so they end like an expired park (rooms left,
    /// presence told). Returns how many sessions it ended.
    pub fn disconnect_user(&self, user: &str, reason: &str) -> usize {
        let mut entries = self.lock();
        let mut ended = 0;
        let mut parked = Vec::new();
        for (uuid, entry) in entries.iter() {
            match entry {
                Entry::Live { user: u, kick } if u == user => {
                    kick.disconnect(reason);
                    ended += 1;
                }
                Entry::Parked { user: u, .. } if u == user => parked.push(uuid.clone()),
                _ => {}
            }
        }
        for uuid in parked {
            if let Some(Entry::Parked { claim, .. }) = entries.remove(&uuid) {
                let (gone, _) = oneshot::channel();
                let _ = claim.send(gone);
                ended += 1;
            }
        }
        ended
    }

    /// Sessions of `user` on this node: (live, parked).
    pub fn sessions_of(&self, user: &str) -> (usize, usize) {
        self.lock()
            .values()
            .fold((0, 0), |(live, parked), e| match e {
                Entry::Live { user: u, .. } if u == user => (live + 1, parked),
                Entry::Parked { user: u, .. } if u == user => (live, parked + 1),
                _ => (live, parked),
            })
    }

    /// Records a connected session.
    pub fn live(&self, uuid: &str, user: &str, kick: Arc<Kick>) {
        self.lock().insert(
            uuid.to_string(),
            Entry::Live {
                user: user.to_string(),
                kick,
            },
        );
    }

    /// Forgets a session that ended (only if the entry is still this session's).
    pub fn forget(&self, uuid: &str, kick: &Arc<Kick>) {
        let mut entries = self.lock();
        if let Some(Entry::Live { kick: k, .. }) = entries.get(uuid) {
            if Arc::ptr_eq(k, kick) {
                entries.remove(uuid);
            }
        }
    }

    /// Parks a session; the receiver yields a claim when a reconnect takes it over. `reserved`: the claim
    /// that kicked it (`Kick::claimed_by`), which gets it first.
    pub fn park(&self, uuid: &str, user: &str, reserved: Option<u64>) -> oneshot::Receiver<Claim> {
        let (tx, rx) = oneshot::channel();
        self.lock().insert(
            uuid.to_string(),
            Entry::Parked {
                user: user.to_string(),
                claim: tx,
                reserved: reserved.map(|c| (c, tokio::time::Instant::now())),
            },
        );
        rx
    }

    /// Removes a parked entry whose grace period ran out. False if a reconnect claimed it meanwhile.
    pub fn expire(&self, uuid: &str) -> bool {
        let mut entries = self.lock();
        match entries.get(uuid) {
            Some(Entry::Parked { .. }) => {
                entries.remove(uuid);
                true
            }
            _ => false,
        }
    }

    /// Takes over the session `uuid` for `user`: `Ok(None)` if there is none to take over. A `guest` (empty
    /// token) may take over a guest session: for guests, knowing the unguessable uuid is the proof.
    pub async fn claim(
        &self,
        uuid: &str,
        user: &str,
        guest: bool,
        attempt: &str,
    ) -> Result<Option<Handover>, ClaimError> {
        let other = |u: &str| u != user && !(guest && u.starts_with(crate::auth::GUEST_PREFIX));
        let me = CLAIMS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        // A live session is kicked off its transport first; it parks itself within moments.
        for _ in 0..100 {
            let claim = {
                let mut entries = self.lock();
                match entries.get(uuid) {
                    None => return Ok(None),
                    Some(Entry::Live { user: u, .. })
                    | Some(Entry::Parked { user: u, .. })
                    | Some(Entry::Moving { user: u, .. })
                        if other(u) =>
                    {
                        return Err(ClaimError::OtherUser)
                    }
                    Some(Entry::Moving { since, .. }) if since.elapsed() < MOVING_FOR => None,
                    Some(Entry::Moving { .. }) => {
                        entries.remove(uuid);
                        return Ok(None);
                    }
                    Some(Entry::Live { kick, .. }) => {
                        // Another claim kicked it first: it gets the session; wait to see what follows.
                        kick.take_over(me, attempt);
                        None
                    }
                    Some(Entry::Parked {
                        reserved: Some((claim, since)),
                        ..
                    }) if *claim != me && since.elapsed() < RESERVED_FOR => None,
                    Some(Entry::Parked { .. }) => match entries.remove(uuid) {
                        Some(Entry::Parked { claim, user: u, .. }) => {
                            entries.insert(
                                uuid.to_string(),
                                Entry::Moving {
                                    user: u,
                                    since: tokio::time::Instant::now(),
                                },
                            );
                            Some(claim)
                        }
                        _ => None,
                    },
                }
            };
            match claim {
                Some(claim) => {
                    let (tx, rx) = oneshot::channel();
                    let handed = match claim.send(tx) {
                        Ok(()) => tokio::time::timeout(Duration::from_secs(2), rx)
                            .await
                            .ok()
                            .and_then(Result::ok),
                        Err(_) => None,
                    };
                    if handed.is_none() {
                        self.moved(uuid);
                    }
                    return Ok(handed);
                }
                None => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
        Ok(None)
    }

    /// A session handed over by `claim` went elsewhere (another node), or its hand-over failed: forget
    /// the placeholder (a live entry registered meanwhile stays).
    pub fn moved(&self, uuid: &str) {
        let mut entries = self.lock();
        if let Some(Entry::Moving { .. }) = entries.get(uuid) {
            entries.remove(uuid);
        }
    }

    /// Sessions parked right now.
    pub fn parked(&self) -> usize {
        self.lock()
            .values()
            .filter(|e| matches!(e, Entry::Parked { .. }))
            .count()
    }
}
