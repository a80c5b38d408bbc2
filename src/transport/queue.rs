//! A connection's outgoing queue: a bounded channel of many senders and one receiver whose buffer is given
//! back once it drains.
//!
//! Why not a channel crate: each one keeps the buffer a burst grew (flume's and tokio's hold their peak
//! capacity, or a fixed block, for the channel's whole life). A member of a 1,000-member room is handed a
//! burst of presence pushes while the room fills, and a queue that kept that capacity held ~0.5-1 KB of every
//! member's connection long after (a massif profile of a settled room). Here the buffer is dropped whenever
//! the receiver empties a queue that had grown past a few items, so an idle connection holds at most
//! `KEEP` slots.
//!
//! The rules are flume's, which this replaced: `try_send` never waits and fails when the queue holds `cap`
//! items; `send_async` waits for room; once every sender is gone the receiver still drains what is queued,
//! then sees `Disconnected`; once the receiver is gone, sends fail. Waiting is two `tokio::sync::Notify`s,
//! one each way; items move only under the mutex, so a dropped wait (a `select!` branch not taken) never
//! loses one.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::Notify;

/// A drained queue keeps its buffer up to this many slots (what a request and its answer need), and gives
/// back anything larger.
const KEEP: usize = 4;

/// Why `try_send` did not queue the item (which it hands back).
#[derive(Debug)]
pub enum TrySendError<T> {
    Full(T),
    Disconnected(T),
}

/// Why `try_recv` returned nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TryRecvError {
    Empty,
    /// Every sender is gone and nothing is left.
    Disconnected,
}

/// The receiver is gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SendError;

/// Every sender is gone and nothing is left.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecvError;

struct Shared<T> {
    state: Mutex<State<T>>,
    cap: usize,
    /// Senders alive; the last one to go wakes the receiver.
    senders: AtomicUsize,
    /// Senders waiting in `send_async`: only then does a receive wake anyone.
    waiting: AtomicUsize,
    /// Something was queued, or the last sender went.
    items: Notify,
    /// Room was made, or the receiver went.
    room: Notify,
}

struct State<T> {
    queue: VecDeque<T>,
    receiver_gone: bool,
}

impl<T> Shared<T> {
    fn lock(&self) -> MutexGuard<'_, State<T>> {
        // Nothing here panics while holding the lock; if something did, the queue itself is still whole.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A bounded queue of at most `cap` items (at least one).
pub fn bounded<T>(cap: usize) -> (Sender<T>, Receiver<T>) {
    let shared = Arc::new(Shared {
        state: Mutex::new(State {
            queue: VecDeque::new(),
            receiver_gone: false,
        }),
        cap: cap.max(1),
        senders: AtomicUsize::new(1),
        waiting: AtomicUsize::new(0),
        items: Notify::new(),
        room: Notify::new(),
    });
    (
        Sender {
            shared: shared.clone(),
        },
        Receiver { shared },
    )
}

pub struct Sender<T> {
    shared: Arc<Shared<T>>,
}

impl<T> Sender<T> {
    /// Queues `item` now, or hands it back.
    pub fn try_send(&self, item: T) -> Result<(), TrySendError<T>> {
        {
            let mut state = self.shared.lock();
            if state.receiver_gone {
                return Err(TrySendError::Disconnected(item));
            }
            if state.queue.len() >= self.shared.cap {
                return Err(TrySendError::Full(item));
            }
            state.queue.push_back(item);
        }
        self.shared.items.notify_one();
        Ok(())
    }

    /// Queues `item`, waiting for room; fails only when the receiver is gone.
    pub async fn send_async(&self, item: T) -> Result<(), SendError> {
        let _waiting = Waiting::raise(&self.shared.waiting);
        let mut item = item;
        loop {
            let room = self.shared.room.notified();
            tokio::pin!(room);
            // Registered before the check, so a receive between the check and the wait still wakes us.
            room.as_mut().enable();
            match self.try_send(item) {
                Ok(()) => return Ok(()),
                Err(TrySendError::Disconnected(_)) => return Err(SendError),
                Err(TrySendError::Full(back)) => {
                    item = back;
                    room.await;
                }
            }
        }
    }

    /// Items queued now.
    pub fn len(&self) -> usize {
        self.shared.lock().queue.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether both ends are of one queue.
    pub fn same_channel(&self, other: &Sender<T>) -> bool {
        Arc::ptr_eq(&self.shared, &other.shared)
    }
}

/// Counts a sender inside `send_async` for as long as it is there, however it leaves (a dropped future too).
struct Waiting<'a>(&'a AtomicUsize);

impl Waiting<'_> {
    fn raise(count: &AtomicUsize) -> Waiting<'_> {
        count.fetch_add(1, Ordering::SeqCst);
        Waiting(count)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        self.shared.senders.fetch_add(1, Ordering::Relaxed);
        Sender {
            shared: self.shared.clone(),
        }
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        if self.shared.senders.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.shared.items.notify_one();
        }
    }
}

impl<T> std::fmt::Debug for Sender<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sender")
            .field("cap", &self.shared.cap)
            .finish()
    }
}

pub struct Receiver<T> {
    shared: Arc<Shared<T>>,
}

impl<T> Receiver<T> {
    /// The next item without waiting.
    pub fn try_recv(&self) -> Result<T, TryRecvError> {
        let item = {
            let mut state = self.shared.lock();
            match state.queue.pop_front() {
                Some(item) => {
                    if state.queue.is_empty() && state.queue.capacity() > KEEP {
                        state.queue = VecDeque::new();
                    }
                    Some(item)
                }
                None => None,
            }
        };
        match item {
            Some(item) => {
                if self.shared.waiting.load(Ordering::SeqCst) > 0 {
                    self.shared.room.notify_waiters();
                }
                Ok(item)
            }
            None if self.shared.senders.load(Ordering::Acquire) == 0 => {
                Err(TryRecvError::Disconnected)
            }
            None => Err(TryRecvError::Empty),
        }
    }

    /// The next item, waiting for one; fails once every sender is gone and nothing is left. Cancel-safe:
    /// dropping the future takes nothing out of the queue.
    pub async fn recv_async(&self) -> Result<T, RecvError> {
        loop {
            match self.try_recv() {
                Ok(item) => return Ok(item),
                Err(TryRecvError::Disconnected) => return Err(RecvError),
                // A send between `try_recv` and the wait leaves a permit, so the wait returns at once.
                Err(TryRecvError::Empty) => self.shared.items.notified().await,
            }
        }
    }

    /// Items queued now.
    pub fn len(&self) -> usize {
        self.shared.lock().queue.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        self.shared.lock().receiver_gone = true;
        self.shared.room.notify_waiters();
    }
}

impl<T> std::fmt::Debug for Receiver<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Receiver")
            .field("cap", &self.shared.cap)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_full_queue_refuses_and_hands_the_item_back() {
        let (tx, rx) = bounded(2);
        tx.try_send(1).expect("first");
        tx.try_send(2).expect("second");
        assert!(matches!(tx.try_send(3), Err(TrySendError::Full(3))));
        assert_eq!(rx.try_recv(), Ok(1));
        tx.try_send(3).expect("room again");
        assert_eq!((rx.try_recv(), rx.try_recv()), (Ok(2), Ok(3)));
        assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
    }

    #[test]
    fn a_drained_queue_gives_its_buffer_back() {
        let (tx, rx) = bounded(1000);
        for i in 0..100 {
            tx.try_send(i).expect("send");
        }
        assert!(rx.shared.lock().queue.capacity() >= 100);
        while rx.try_recv().is_ok() {}
        assert_eq!(rx.shared.lock().queue.capacity(), 0);
        // A small queue keeps its few slots: a request and its answer do not allocate each time.
        tx.try_send(1).expect("send");
        let kept = rx.shared.lock().queue.capacity();
        assert_eq!(rx.try_recv(), Ok(1));
        assert_eq!(rx.shared.lock().queue.capacity(), kept);
        assert!(kept <= KEEP);
    }

    #[test]
    fn the_receiver_drains_after_the_senders_go_then_sees_the_end() {
        let (tx, rx) = bounded(4);
        let tx2 = tx.clone();
        tx.try_send(1).expect("send");
        drop(tx);
        assert_eq!(rx.try_recv(), Ok(1));
        assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
        tx2.try_send(2).expect("send");
        drop(tx2);
        assert_eq!(rx.try_recv(), Ok(2));
        assert_eq!(rx.try_recv(), Err(TryRecvError::Disconnected));
    }

    #[test]
    fn sends_fail_once_the_receiver_is_gone() {
        let (tx, rx) = bounded(4);
        drop(rx);
        assert!(matches!(tx.try_send(1), Err(TrySendError::Disconnected(1))));
    }

    #[tokio::test]
    async fn a_waiting_receiver_wakes_for_an_item_and_for_the_last_sender() {
        let (tx, rx) = bounded::<u32>(4);
        let got = tokio::spawn(async move {
            let first = rx.recv_async().await;
            let second = rx.recv_async().await;
            (first, second)
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        tx.try_send(7).expect("send");
        tokio::time::sleep(Duration::from_millis(20)).await;
        drop(tx);
        let (first, second) = tokio::time::timeout(Duration::from_secs(5), got)
            .await
            .expect("the receiver woke")
            .expect("task");
        assert_eq!((first, second), (Ok(7), Err(RecvError)));
    }

    #[tokio::test]
    async fn a_waiting_sender_gets_room_or_learns_the_receiver_went() {
        let (tx, rx) = bounded::<u32>(1);
        tx.try_send(1).expect("send");
        let tx2 = tx.clone();
        let sent = tokio::spawn(async move { tx2.send_async(2).await });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(
            !sent.is_finished(),
            "the queue was full; the sender must wait"
        );
        assert_eq!(rx.try_recv(), Ok(1));
        let r = tokio::time::timeout(Duration::from_secs(5), sent)
            .await
            .expect("the sender woke")
            .expect("task");
        assert_eq!(r, Ok(()));
        assert_eq!(rx.try_recv(), Ok(2));

        tx.try_send(3).expect("send");
        let tx3 = tx.clone();
        let refused = tokio::spawn(async move { tx3.send_async(4).await });
        tokio::time::sleep(Duration::from_millis(20)).await;
        drop(rx);
        let r = tokio::time::timeout(Duration::from_secs(5), refused)
            .await
            .expect("the sender woke")
            .expect("task");
        assert_eq!(r, Err(SendError));
    }

    /// Many senders and one receiver on several threads: every item arrives exactly once, in each sender's
    /// order, with the receiver waiting whenever the queue runs dry and senders waiting whenever it is full.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn many_senders_lose_nothing_and_keep_their_order() {
        let (tx, rx) = bounded::<(u32, u32)>(8);
        let mut tasks = Vec::new();
        for s in 0..4u32 {
            let tx = tx.clone();
            tasks.push(tokio::spawn(async move {
                for i in 0..5_000u32 {
                    tx.send_async((s, i)).await.expect("receiver alive");
                }
            }));
        }
        drop(tx);
        let mut next = [0u32; 4];
        let reader = tokio::spawn(async move {
            while let Ok((s, i)) = rx.recv_async().await {
                assert_eq!(i, next[s as usize], "sender {s} out of order");
                next[s as usize] += 1;
            }
            next
        });
        for t in tasks {
            t.await.expect("sender");
        }
        let next = tokio::time::timeout(Duration::from_secs(20), reader)
            .await
            .expect("the reader finished")
            .expect("reader");
        assert_eq!(next, [5_000; 4]);
    }
}
