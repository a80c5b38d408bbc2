//! Connections per IP address: one client machine cannot take every socket of the gateway.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

#[derive(Clone)]
pub struct PerIp {
    limit: usize,
    counts: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

/// Holds one connection's slot; frees it when dropped.
pub struct Slot {
    ip: IpAddr,
    counts: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

impl PerIp {
    pub fn new(limit: usize) -> PerIp {
        PerIp {
            limit,
            counts: Arc::default(),
        }
    }

    pub fn limit(&self) -> usize {
        self.limit
    }

    /// A slot for `ip`, or `None` when it already holds `limit` connections.
    pub fn acquire(&self, ip: IpAddr) -> Option<Slot> {
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        let n = counts.entry(ip).or_insert(0);
        if *n >= self.limit {
            return None;
        }
        *n += 1;
        Some(Slot {
            ip,
            counts: self.counts.clone(),
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = counts.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                counts.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_counted_and_freed() {
        let p = PerIp::new(2);
        let ip: IpAddr = "10.0.0.1".parse().expect("ip");
        let a = p.acquire(ip);
        let b = p.acquire(ip);
        assert!(a.is_some() && b.is_some());
        assert!(p.acquire(ip).is_none());
        assert!(p.acquire("10.0.0.2".parse().expect("ip")).is_some());
        drop(a);
        assert!(p.acquire(ip).is_some());
    }
}
