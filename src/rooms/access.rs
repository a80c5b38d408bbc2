//! Who may do what in a room: the one authorization decision every room-scoped act goes through.
//!
//! Two things must allow an act: the caller's token (its `rooms` claim, when it has one, lists the only rooms
//! it may touch at all) and the rights stored for the caller in the room (`r`, `w`, `x`). Keeping both checks
//! in one function, called by every act (join, send, history, payload download, chmod, room properties,
//! signaling streams of room apps, resume), is what keeps a narrow token narrow on paths added later.

use std::collections::HashSet;
use std::sync::Arc;

use super::RoomError;
use crate::protocol::args::Mask;

/// The rooms a token is limited to (`None`: any room its stored rights allow). Cheap to clone.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RoomClaims(Option<Arc<HashSet<String>>>);

impl RoomClaims {
    /// No limit beyond stored rights.
    pub fn any() -> RoomClaims {
        RoomClaims(None)
    }

    /// Only these rooms.
    pub fn only(rooms: impl IntoIterator<Item = String>) -> RoomClaims {
        RoomClaims(Some(Arc::new(rooms.into_iter().collect())))
    }

    /// The rooms the token is limited to (`None`: no limit).
    pub fn listed(&self) -> Option<Vec<String>> {
        self.0.as_ref().map(|r| r.iter().cloned().collect())
    }

    pub fn allows(&self, rid: &str) -> bool {
        self.0.as_ref().is_none_or(|r| r.contains(rid))
    }
}

/// A room-scoped act.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Act {
    /// Enter the room (needs any right: an empty mask is a ban).
    Join,
    /// Post to it (`w`).
    Send,
    /// Read its history (`r`).
    Read,
    /// Download a message's binary payload (`r`).
    Download,
    /// Change someone's rights (`x`).
    Chmod,
    /// Set a room property (`x`).
    SetProperty,
    /// Read a room property (the claim only: properties are not secret from users the token admits).
    GetProperty,
    /// Play a signaling stream whose app is this room (`r`).
    Play,
    /// Publish a stream (the SFU) whose app is this room (`w`).
    Publish,
    /// Keep a membership across a fast reconnect (the claim of the token presented now).
    Resume,
}

impl Act {
    /// The stored right this act needs (`Mask::NONE`: none beyond not being banned, or not checked).
    fn needs(self) -> Mask {
        match self {
            Act::Send | Act::Publish => Mask::W,
            Act::Read | Act::Download | Act::Play => Mask::R,
            Act::Chmod | Act::SetProperty => Mask::X,
            Act::Join | Act::GetProperty | Act::Resume => Mask::NONE,
        }
    }
}

/// Decides `act` in room `rid` for a caller with these token claims and, where known, these stored rights.
/// `stored = None` checks the claim alone (before the rights are loaded, or for acts that need none).
pub fn authorize(
    claims: &RoomClaims,
    act: Act,
    rid: &str,
    stored: Option<Mask>,
) -> Result<(), RoomError> {
    if !claims.allows(rid) {
        return Err(RoomError::NotGranted(rid.to_string()));
    }
    let Some(mask) = stored else {
        return Ok(());
    };
    let rid = rid.to_string();
    match act {
        Act::Join if mask == Mask::NONE => Err(RoomError::Banned(rid)),
        _ if mask.contains(act.needs()) => Ok(()),
        Act::Send | Act::Publish => Err(RoomError::NoWrite(rid)),
        Act::Chmod | Act::SetProperty => Err(RoomError::NotAdmin(rid)),
        _ => Err(RoomError::NoRead(rid)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claims_first_then_stored_rights() {
        let narrow = RoomClaims::only(["a".to_string()]);
        let all = [
            Act::Join,
            Act::Send,
            Act::Read,
            Act::Download,
            Act::Chmod,
            Act::SetProperty,
            Act::GetProperty,
            Act::Play,
            Act::Publish,
            Act::Resume,
        ];
        for act in all {
            assert!(matches!(
                authorize(&narrow, act, "b", Some(Mask::ALL)),
                Err(RoomError::NotGranted(_))
            ));
            assert!(authorize(&narrow, act, "a", Some(Mask::ALL)).is_ok());
            assert!(authorize(&RoomClaims::any(), act, "b", None).is_ok());
        }
        let ro = Some(Mask::R);
        assert!(matches!(
            authorize(&narrow, Act::Send, "a", ro),
            Err(RoomError::NoWrite(_))
        ));
        assert!(matches!(
            authorize(&narrow, Act::Chmod, "a", ro),
            Err(RoomError::NotAdmin(_))
        ));
        assert!(matches!(
            authorize(&narrow, Act::Download, "a", Some(Mask::W)),
            Err(RoomError::NoRead(_))
        ));
        assert!(matches!(
            authorize(&narrow, Act::Join, "a", Some(Mask::NONE)),
            Err(RoomError::Banned(_))
        ));
    }
}
