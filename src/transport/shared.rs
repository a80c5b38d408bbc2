//! One recipient's pushes from one journal batch, as one queue item whose bodies are shared by every
//! recipient of the batch.
//!
//! A batch's message bodies are built once (`rooms::journal`); what differs per recipient is only which of
//! them it gets and on which pipe. So a recipient's item holds the batch's shared body list and its picks from
//! it, and the writer makes the frames as it writes them. In the common case (a member of the one room the
//! batch is about, on one pipe) the picks are a run of consecutive bodies: the recipient's item needs no
//! allocation of its own, where a list of frames per recipient per batch had cost one to four.

use std::sync::Arc;

use bytes::Bytes;

use crate::protocol::{Frame, MessageType, HEADER_LEN};

/// Which bodies of a batch go to one recipient, in order, and on which pipe.
#[derive(Debug, Clone)]
pub enum Picks {
    /// Bodies `start..end`, all on `pipe`.
    Run { pipe: u16, start: u32, end: u32 },
    /// Anything else: (pipe, body index) in order (boxed, so a queue slot stays 64 bytes).
    List(Box<Vec<(u16, u32)>>),
}

impl Picks {
    /// A recipient's first pick.
    pub fn first(pipe: u16, body: u32) -> Picks {
        Picks::Run {
            pipe,
            start: body,
            end: body.saturating_add(1),
        }
    }

    /// Adds the next pick (bodies are picked in batch order).
    pub fn add(&mut self, pipe: u16, body: u32) {
        match self {
            Picks::Run { pipe: p, end, .. } if *p == pipe && *end == body => *end += 1,
            Picks::Run {
                pipe: p,
                start,
                end,
            } => {
                let mut list: Vec<(u16, u32)> = (*start..*end).map(|i| (*p, i)).collect();
                list.push((pipe, body));
                *self = Picks::List(Box::new(list));
            }
            Picks::List(list) => list.push((pipe, body)),
        }
    }

    pub fn len(&self) -> usize {
        match self {
            Picks::Run { start, end, .. } => end.saturating_sub(*start) as usize,
            Picks::List(list) => list.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The `k`-th pick: (pipe, body index).
    fn get(&self, k: usize) -> Option<(u16, u32)> {
        match self {
            Picks::Run { pipe, start, end } => {
                let i = start.checked_add(u32::try_from(k).ok()?)?;
                (i < *end).then_some((*pipe, i))
            }
            Picks::List(list) => list.get(k).copied(),
        }
    }
}

/// A recipient's pushes from one batch: command frames made from shared bodies as the writer takes them.
#[derive(Debug, Clone)]
pub struct SharedBatch {
    /// A thin pointer (not `Arc<[Bytes]>`): the item rides in a queue slot, which stays 64 bytes this way.
    bodies: Arc<Vec<Bytes>>,
    picks: Picks,
    /// The next pick the writer takes.
    next: u32,
}

impl SharedBatch {
    pub fn new(bodies: Arc<Vec<Bytes>>, picks: Picks) -> SharedBatch {
        SharedBatch {
            bodies,
            picks,
            next: 0,
        }
    }

    /// Frames not yet taken.
    pub fn len(&self) -> usize {
        self.picks.len().saturating_sub(self.next as usize)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes of the frames not yet taken, as the wire counts them (header + body).
    pub fn wire_len(&self) -> usize {
        (self.next as usize..self.picks.len())
            .filter_map(|k| self.picks.get(k))
            .map(|(_, i)| HEADER_LEN + self.body_len(i))
            .sum()
    }

    fn body_len(&self, i: u32) -> usize {
        self.bodies.get(i as usize).map_or(0, Bytes::len)
    }

    /// The next frame, `None` once all are taken. A pick past the bodies (a bug) is skipped, not a panic.
    pub fn take(&mut self) -> Option<Frame> {
        while (self.next as usize) < self.picks.len() {
            let (pipe, i) = self.picks.get(self.next as usize)?;
            self.next += 1;
            if let Some(body) = self.bodies.get(i as usize) {
                return Some(Frame::new(MessageType::Command, pipe, body.clone()));
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bodies(n: u8) -> Arc<Vec<Bytes>> {
        Arc::new((0..n).map(|i| Bytes::from(vec![i; 3])).collect())
    }

    /// A queue slot holds one `Outbound`: every connection's queue grows in slots of this size.
    #[test]
    fn a_queue_slot_stays_64_bytes() {
        assert_eq!(std::mem::size_of::<crate::transport::Outbound>(), 64);
    }

    fn drain(mut b: SharedBatch) -> Vec<(u16, u8)> {
        std::iter::from_fn(|| b.take())
            .map(|f| (f.pipe, f.payload[0]))
            .collect()
    }

    #[test]
    fn consecutive_picks_on_one_pipe_stay_a_run() {
        let mut p = Picks::first(7, 1);
        p.add(7, 2);
        p.add(7, 3);
        assert!(matches!(
            p,
            Picks::Run {
                pipe: 7,
                start: 1,
                end: 4
            }
        ));
        let b = SharedBatch::new(bodies(5), p);
        assert_eq!(b.wire_len(), 3 * (HEADER_LEN + 3));
        assert_eq!(drain(b), [(7, 1), (7, 2), (7, 3)]);
    }

    #[test]
    fn a_gap_or_another_pipe_turns_the_run_into_a_list_in_order() {
        let mut p = Picks::first(1, 0);
        p.add(1, 1);
        p.add(2, 1);
        p.add(1, 4);
        assert!(matches!(p, Picks::List(_)));
        assert_eq!(p.len(), 4);
        assert_eq!(
            drain(SharedBatch::new(bodies(5), p)),
            [(1, 0), (1, 1), (2, 1), (1, 4)]
        );
    }

    #[test]
    fn a_pick_past_the_bodies_is_skipped() {
        let mut p = Picks::first(1, 0);
        p.add(1, 9);
        p.add(1, 2);
        assert_eq!(drain(SharedBatch::new(bodies(3), p)), [(1, 0), (1, 2)]);
    }
}
