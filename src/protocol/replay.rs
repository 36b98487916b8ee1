//! Replayed messages. A signed message that someone captured (iopub is readable by anyone who
//! can reach the port, and so is traffic on a shared network) stays valid for ever, since the
//! signature covers only the message itself. Like `jupyter_client`'s `Session`, the kernel
//! remembers the signatures it has accepted in this session and drops a message whose
//! signature it has seen before. A message header carries a fresh `msg_id` and date, so an
//! honest client never sends the same signature twice.
//!
//! The history is bounded: the oldest signature is forgotten when a new one would exceed
//! [`ReplayGuard::DEFAULT_CAPACITY`] (`jupyter_client` keeps 65536 too). Only messages whose
//! signature was verified are recorded, so a peer without the key cannot fill it.
//!
//! With an empty key (signing disabled, which the spec allows) every signature is empty: there
//! is nothing to tell one message from its replay, and the guard lets every message through.

use std::collections::{HashSet, VecDeque};

use sha2::{Digest, Sha256};

/// Remembers the signatures of accepted messages and recognises one seen before.
///
/// One guard serves every channel of a session (shell, control, and stdin when input is
/// served), so that a message captured on one channel cannot be replayed on another.
#[derive(Debug)]
pub struct ReplayGuard {
    /// Digests of the signatures seen, for lookup (32 bytes each, whatever the signature).
    seen: HashSet<[u8; 32]>,
    /// The same digests, oldest first, for eviction.
    order: VecDeque<[u8; 32]>,
    capacity: usize,
}

impl Default for ReplayGuard {
    fn default() -> Self {
        Self::with_capacity(Self::DEFAULT_CAPACITY)
    }
}

impl ReplayGuard {
    /// How many signatures a default guard remembers (about 6 MiB when full).
    pub const DEFAULT_CAPACITY: usize = 65536;

    /// A guard that remembers the last `capacity` signatures (at least one).
    pub fn with_capacity(capacity: usize) -> Self {
        ReplayGuard {
            seen: HashSet::new(),
            order: VecDeque::new(),
            capacity: capacity.max(1),
        }
    }

    /// Whether `signature` (the signature frame of a verified message) is new in this session,
    /// recording it if so. `false` means a replay: drop the message. An empty signature
    /// (signing disabled) is always new and never recorded.
    pub fn is_new(&mut self, signature: &[u8]) -> bool {
        if signature.is_empty() {
            return true;
        }
        let digest: [u8; 32] = Sha256::digest(signature).into();
        if !self.seen.insert(digest) {
            return false;
        }
        self.order.push_back(digest);
        if self.order.len() > self.capacity {
            if let Some(oldest) = self.order.pop_front() {
                self.seen.remove(&oldest);
            }
        }
        true
    }

    /// How many signatures are remembered now.
    pub fn len(&self) -> usize {
        self.order.len()
    }

    /// Whether no signature is remembered.
    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_is_accepted_once() {
        let mut guard = ReplayGuard::default();
        assert!(guard.is_new(b"aaaa"));
        assert!(guard.is_new(b"bbbb"));
        assert!(!guard.is_new(b"aaaa"), "the replay is recognised");
        assert!(!guard.is_new(b"aaaa"), "and again");
        assert!(!guard.is_new(b"bbbb"));
        assert_eq!(guard.len(), 2);
    }

    #[test]
    fn empty_signatures_are_not_tracked() {
        let mut guard = ReplayGuard::default();
        assert!(guard.is_new(b""));
        assert!(guard.is_new(b""));
        assert!(guard.is_empty());
    }

    #[test]
    fn the_oldest_signature_is_forgotten_first() {
        let mut guard = ReplayGuard::with_capacity(3);
        for s in [b"s1", b"s2", b"s3", b"s4"] {
            assert!(guard.is_new(s));
        }
        assert_eq!(guard.len(), 3);
        // s1 was evicted by s4; s2..s4 are still known.
        assert!(!guard.is_new(b"s2"));
        assert!(!guard.is_new(b"s3"));
        assert!(!guard.is_new(b"s4"));
        assert!(
            guard.is_new(b"s1"),
            "forgotten, so accepted again (and s2 evicted)"
        );
        assert!(guard.is_new(b"s2"));
        assert_eq!(guard.len(), 3);
    }

    #[test]
    fn the_history_stays_bounded() {
        let mut guard = ReplayGuard::with_capacity(100);
        for i in 0..10_000u32 {
            assert!(guard.is_new(&i.to_be_bytes()));
        }
        assert_eq!(guard.len(), 100);
        assert_eq!(guard.seen.len(), 100);
        assert!(!guard.is_new(&9_999u32.to_be_bytes()));
        assert!(guard.is_new(&0u32.to_be_bytes()));
    }

    #[test]
    fn default_capacity_is_jupyter_clients() {
        assert_eq!(ReplayGuard::default().capacity, 65536);
        assert_eq!(ReplayGuard::with_capacity(0).capacity, 1);
    }
}
