//! Who is typing in a room on this node, and since when: a pure table the room actor asks what
//! changed (publish "starting"/"stopping") and what expired (a "starting" never renewed within
//! the TTL stops by itself, so a client that vanished does not type forever).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::ids::UserId;

#[derive(Debug)]
pub(crate) struct Typists {
    ttl: Duration,
    since: HashMap<UserId, Instant>,
}

impl Typists {
    pub(crate) fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            since: HashMap::new(),
        }
    }

    pub(crate) fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Records a user starting or stopping; true when that changes what others see (a renewal of
    /// "starting" only moves the expiry).
    pub(crate) fn set(&mut self, user: UserId, typing: bool, now: Instant) -> bool {
        if typing {
            self.since.insert(user, now).is_none()
        } else {
            self.since.remove(&user).is_some()
        }
    }

    /// Takes out the users whose last "starting" is older than the TTL.
    pub(crate) fn expire(&mut self, now: Instant) -> Vec<UserId> {
        let expired: Vec<UserId> = self
            .since
            .iter()
            .filter(|(_, since)| now.duration_since(**since) >= self.ttl)
            .map(|(user, _)| *user)
            .collect();
        for user in &expired {
            self.since.remove(user);
        }
        expired
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: UserId = UserId(1);
    const B: UserId = UserId(2);

    #[test]
    fn only_changes_are_reported() {
        let mut typists = Typists::new(Duration::from_secs(5));
        let now = Instant::now();
        assert!(typists.set(A, true, now));
        assert!(!typists.set(A, true, now), "a renewal is not news");
        assert!(typists.set(A, false, now));
        assert!(!typists.set(A, false, now), "stopping twice is not news");
    }

    #[test]
    fn a_start_not_renewed_within_the_ttl_expires() {
        let mut typists = Typists::new(Duration::from_secs(5));
        let start = Instant::now();
        typists.set(A, true, start);
        typists.set(B, true, start + Duration::from_secs(3));
        assert!(typists.expire(start + Duration::from_secs(4)).is_empty());
        assert_eq!(typists.expire(start + Duration::from_secs(5)), [A]);
        // Expired users are gone: starting again is news.
        assert!(typists.set(A, true, start + Duration::from_secs(6)));
        assert_eq!(typists.expire(start + Duration::from_secs(8)), [B]);
    }

    #[test]
    fn renewing_moves_the_expiry() {
        let mut typists = Typists::new(Duration::from_secs(5));
        let start = Instant::now();
        typists.set(A, true, start);
        typists.set(A, true, start + Duration::from_secs(4));
        assert!(typists.expire(start + Duration::from_secs(6)).is_empty());
    }
}
