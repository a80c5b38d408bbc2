//! Answers in request order on each pipe, while the answers given later (a commit, a store query) are worked
//! out off the session task. Each pipe keeps the completion of its newest outstanding answer: an answer is
//! written only after the one before it on the same pipe, and an answer known at once waits its turn only
//! when its pipe has one outstanding. Pipes never wait for each other, so a slow search on one pipe holds up
//! nothing on another.

use std::collections::HashMap;

use tokio::sync::oneshot;

/// The outstanding answers of one connection, per pipe.
#[derive(Debug, Default)]
pub struct PipeOrder {
    /// Per pipe, resolved (or dropped) once its newest outstanding answer is written.
    tails: HashMap<u16, oneshot::Receiver<()>>,
}

/// One answer's place in its pipe's line: `wait` for the answer before it, write, then drop the turn.
#[derive(Debug)]
pub struct Turn {
    before: Option<oneshot::Receiver<()>>,
    _done: oneshot::Sender<()>,
}

impl Turn {
    /// Returns once every earlier answer on this pipe is written (or abandoned).
    pub async fn wait(&mut self) {
        if let Some(before) = self.before.take() {
            // An error means the earlier answer's task ended without writing: its turn is over all the same.
            let _ = before.await;
        }
    }
}

impl PipeOrder {
    /// The next place in `pipe`'s line.
    pub fn take(&mut self, pipe: u16) -> Turn {
        let (done, rx) = oneshot::channel();
        Turn {
            before: self.tails.insert(pipe, rx),
            _done: done,
        }
    }

    /// Whether `pipe` has an answer not yet written. Forgets pipes whose answers are all written, so the map
    /// holds only pipes with outstanding answers.
    pub fn busy(&mut self, pipe: u16) -> bool {
        let Some(tail) = self.tails.get_mut(&pipe) else {
            return false;
        };
        if let Err(oneshot::error::TryRecvError::Empty) = tail.try_recv() {
            return true;
        }
        self.tails.remove(&pipe);
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn answers_on_one_pipe_wait_for_each_other_and_pipes_do_not() {
        let mut order = PipeOrder::default();
        assert!(!order.busy(1));
        let first = order.take(1);
        let mut second = order.take(1);
        let mut other = order.take(2);
        assert!(order.busy(1) && order.busy(2));
        // Another pipe's turn is free at once.
        tokio::time::timeout(std::time::Duration::from_millis(10), other.wait())
            .await
            .expect("pipe 2 waits for nothing");
        drop(other);
        assert!(!order.busy(2));
        // The second answer on pipe 1 waits for the first.
        let waiting = tokio::spawn(async move {
            second.wait().await;
            second
        });
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished());
        drop(first);
        let second = waiting.await.expect("second turn");
        assert!(order.busy(1), "the second answer is not written yet");
        drop(second);
        assert!(!order.busy(1));
    }
}
