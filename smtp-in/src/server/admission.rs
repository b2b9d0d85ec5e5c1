//! Connection admission: total and per-IP counts, decided at accept time.
//!
//! The accept loop's semaphore bounds open sockets (a few more than `max_connections`, so that
//! the excess can still be told `421 4.7.0` instead of waiting silently in the kernel backlog);
//! this module decides which accepted sockets get a session.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};

/// Counts of live sessions, shared by a listener's accept loop and its sessions.
#[derive(Debug, Default)]
pub(crate) struct Admission {
    state: Mutex<Counts>,
}

#[derive(Debug, Default)]
struct Counts {
    total: usize,
    per_ip: HashMap<IpAddr, usize>,
}

/// A session's place in the counts; released on drop.
#[derive(Debug)]
pub(crate) struct Ticket {
    admission: Arc<Admission>,
    ip: IpAddr,
}

impl Admission {
    /// Admits a connection from `ip` if both limits allow it.
    pub(crate) fn admit(
        self: &Arc<Admission>,
        ip: IpAddr,
        max_total: usize,
        max_per_ip: usize,
    ) -> Option<Ticket> {
        // A panic while holding this lock cannot leave the counts half-updated (single
        // statements), so a poisoned lock is still usable.
        let mut counts = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let from_ip = counts.per_ip.get(&ip).copied().unwrap_or(0);
        if counts.total >= max_total || from_ip >= max_per_ip {
            return None;
        }
        counts.total += 1;
        counts.per_ip.insert(ip, from_ip + 1);
        Some(Ticket {
            admission: Arc::clone(self),
            ip,
        })
    }

    /// Live sessions.
    #[cfg(test)]
    pub(crate) fn total(&self) -> usize {
        self.state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .total
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let mut counts = self
            .admission
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        counts.total = counts.total.saturating_sub(1);
        if let Some(count) = counts.per_ip.get_mut(&self.ip) {
            *count -= 1;
            if *count == 0 {
                counts.per_ip.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_total_and_per_ip_and_releases() {
        let admission = Arc::new(Admission::default());
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let first = admission.admit(a, 3, 2).unwrap();
        let _second = admission.admit(a, 3, 2).unwrap();
        assert!(admission.admit(a, 3, 2).is_none());
        let _third = admission.admit(b, 3, 2).unwrap();
        assert!(admission.admit(b, 3, 2).is_none());
        drop(first);
        assert_eq!(admission.total(), 2);
        assert!(admission.admit(a, 3, 2).is_some());
    }
}
