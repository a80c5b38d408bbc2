//! The pipes (NetStreams) of one connection: made by `create` on pipe 0, freed by `release` or by the
//! connection closing (the commands are in `pipe_commands.rs`).

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::error::SessionError;
use crate::protocol::args::PipeKind;

#[derive(Debug, Clone)]
pub struct Pipe {
    pub kind: PipeKind,
    /// Properties set by `setProperty` on this pipe.
    pub properties: Map<String, Value>,
}

/// The pipes of one connection. Ids are handed out upward from 1 and wrap, skipping ids in use, so a
/// just-released id is not immediately reused while stray frames for it may still be in flight.
#[derive(Debug)]
pub struct Pipes {
    open: BTreeMap<u16, Pipe>,
    max: usize,
    next: u16,
    /// The last few released ids: a second `release` of one of them is a harmless repeat (the odd.js SDK
    /// sends `release` twice when a pipe closes), not an error.
    released: std::collections::VecDeque<u16>,
}

/// How many released ids `Pipes` remembers.
const REMEMBER_RELEASED: usize = 16;

impl Pipes {
    pub fn new(max: usize) -> Pipes {
        Pipes {
            open: BTreeMap::new(),
            max,
            next: 1,
            released: std::collections::VecDeque::new(),
        }
    }

    pub fn get(&self, id: u16) -> Option<&Pipe> {
        self.open.get(&id)
    }

    pub fn get_mut(&mut self, id: u16) -> Option<&mut Pipe> {
        self.open.get_mut(&id)
    }

    pub fn len(&self) -> usize {
        self.open.len()
    }

    pub fn is_empty(&self) -> bool {
        self.open.is_empty()
    }

    pub fn ids(&self) -> impl Iterator<Item = u16> + '_ {
        self.open.keys().copied()
    }

    pub fn open(&mut self, kind: PipeKind) -> Result<u16, SessionError> {
        if self.open.len() >= self.max {
            return Err(SessionError::TooManyPipes(self.max));
        }
        let mut id = self.next;
        while id == 0 || self.open.contains_key(&id) {
            id = id.wrapping_add(1);
        }
        self.next = id.wrapping_add(1);
        self.open.insert(
            id,
            Pipe {
                kind,
                properties: Map::new(),
            },
        );
        Ok(id)
    }

    /// Every pipe with its id, in id order.
    pub fn iter(&self) -> impl Iterator<Item = (u16, &Pipe)> + '_ {
        self.open.iter().map(|(id, p)| (*id, p))
    }

    /// Puts back a pipe of a session moved from another node, under its old id.
    pub fn restore(&mut self, id: u16, kind: PipeKind, properties: Map<String, Value>) {
        if id != 0 && self.open.len() < self.max {
            self.open.insert(id, Pipe { kind, properties });
            self.next = self.next.max(id.wrapping_add(1));
        }
    }

    pub fn close(&mut self, id: u16) -> Result<Pipe, SessionError> {
        if id == 0 {
            return Err(SessionError::ReleaseControlPipe);
        }
        let pipe = self.open.remove(&id).ok_or(SessionError::UnknownPipe(id))?;
        self.released.retain(|r| *r != id);
        if self.released.len() == REMEMBER_RELEASED {
            self.released.pop_front();
        }
        self.released.push_back(id);
        Ok(pipe)
    }

    /// Whether `id` was released lately and not handed out again.
    pub fn was_released(&self, id: u16) -> bool {
        !self.open.contains_key(&id) && self.released.contains(&id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_skip_zero_and_live_ones_and_respect_the_limit() {
        let mut p = Pipes::new(3);
        assert_eq!(p.open(PipeKind::Messaging).ok(), Some(1));
        assert_eq!(p.open(PipeKind::Signaling).ok(), Some(2));
        assert!(p.close(1).is_ok());
        assert_eq!(p.open(PipeKind::Messaging).ok(), Some(3));
        assert_eq!(p.open(PipeKind::Messaging).ok(), Some(4));
        assert!(matches!(
            p.open(PipeKind::Messaging),
            Err(SessionError::TooManyPipes(3))
        ));
        assert!(matches!(p.close(0), Err(SessionError::ReleaseControlPipe)));
        assert!(matches!(p.close(9), Err(SessionError::UnknownPipe(9))));
        p.next = u16::MAX;
        assert!(p.close(2).is_ok());
        assert_eq!(p.open(PipeKind::Messaging).ok(), Some(u16::MAX));
        assert!(p.close(3).is_ok());
        assert_eq!(p.open(PipeKind::Messaging).ok(), Some(1));
    }
}
