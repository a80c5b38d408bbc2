//! One memory budget for the whole process: bytes held in reassembly buffers and outbound queues.
//!
//! Per-connection limits bound what one client can make the gateway hold, but ten thousand clients each just
//! under their limit would still exhaust the machine. The budget is the ceiling across all of them: a
//! connection whose reassembly would push the total past it is closed with a reason, and a push to a
//! connection that already has a backlog is refused (that connection is cut as a slow consumer) rather than
//! growing the total. A push into an empty queue always goes, so connections that keep up are never cut.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

#[derive(Clone, Debug)]
pub struct MemoryBudget {
    used: Arc<AtomicUsize>,
    limit: usize,
}

impl MemoryBudget {
    pub fn new(limit: usize) -> MemoryBudget {
        MemoryBudget {
            used: Arc::default(),
            limit,
        }
    }

    /// A budget that never refuses (clients, tools).
    pub fn unlimited() -> MemoryBudget {
        MemoryBudget::new(usize::MAX)
    }

    pub fn used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Whether `bytes` more would stay within the budget (a hint: concurrent charges may still overshoot
    /// by at most one frame each).
    pub fn has_room(&self, bytes: usize) -> bool {
        self.used().saturating_add(bytes) <= self.limit
    }

    /// Charges `bytes` if they fit.
    pub fn try_charge(&self, bytes: usize) -> bool {
        let mut current = self.used();
        loop {
            let next = current.saturating_add(bytes);
            if next > self.limit {
                return false;
            }
            match self.used.compare_exchange_weak(
                current,
                next,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return true,
                Err(now) => current = now,
            }
        }
    }

    /// Charges `bytes` whatever the total (for frames already admitted by `has_room`).
    pub fn charge(&self, bytes: usize) {
        self.used.fetch_add(bytes, Ordering::Relaxed);
    }

    pub fn release(&self, bytes: usize) {
        self.used.fetch_sub(bytes, Ordering::Relaxed);
    }
}

/// Bytes one owner holds against the budget, given back when it is dropped (whatever ends the owner).
#[derive(Debug)]
pub struct Hold {
    budget: MemoryBudget,
    bytes: usize,
}

impl Hold {
    pub fn new(budget: MemoryBudget) -> Hold {
        Hold { budget, bytes: 0 }
    }

    /// Moves the hold to `bytes`; false (and unchanged) if growing it would exceed the budget.
    pub fn resize(&mut self, bytes: usize) -> bool {
        if bytes > self.bytes {
            if !self.budget.try_charge(bytes - self.bytes) {
                return false;
            }
        } else {
            self.budget.release(self.bytes - bytes);
        }
        self.bytes = bytes;
        true
    }
}

impl Drop for Hold {
    fn drop(&mut self) {
        self.budget.release(self.bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holds_charge_and_give_back() {
        let b = MemoryBudget::new(100);
        let mut h = Hold::new(b.clone());
        assert!(h.resize(60));
        assert!(!b.try_charge(50));
        assert!(!h.resize(101));
        assert_eq!(b.used(), 60);
        assert!(h.resize(10));
        assert!(b.try_charge(90));
        b.release(90);
        drop(h);
        assert_eq!(b.used(), 0);
    }
}
