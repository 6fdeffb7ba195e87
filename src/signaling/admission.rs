//! Admission: which connections the server takes, sans-IO (time is an input, in milliseconds).
//!
//! A connection is *pending* from its TCP accept until its user logs in, then a *member*.
//! Members are never pushed out by pending connections. Pending ones get a bounded share of the
//! slots; when the share is full, or every slot is taken, the pending connection of the
//! address holding the most pending slots (the oldest of them; of equal addresses, the one
//! whose oldest is oldest) is evicted to admit the new one. Many strangers therefore push out
//! each other, and a user who connects now and logs in at once is not their victim. A pending
//! connection must log in before its deadline, which shortens while the share is more than half
//! taken.

use std::cmp::Reverse;
use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;

/// A connection's number, as the transport gives it.
pub type ConnectionId = u64;

/// What admission allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AdmissionLimits {
    /// Connections at once, in all.
    pub max_connections: usize,
    /// Connections at once from one address.
    pub max_per_ip: usize,
    /// Connections from one address still in their WebSocket handshake.
    pub max_handshakes_per_ip: usize,
    /// Pending connections at once, in all (at most `max_connections`).
    pub max_pending: usize,
    /// A pending connection must log in this soon after it was accepted.
    pub pending_millis: u64,
    /// The same while more than half of the pending share is taken.
    pub pressed_pending_millis: u64,
}

/// Why a connection was turned away.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Every slot is a member's.
    Full,
    /// Its address holds as many connections as it may.
    AddressFull,
    /// Its address has as many handshakes in progress as it may.
    AddressHandshakes,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Handshaking,
    LoggingIn,
    Member,
}

#[derive(Debug, Clone, Copy)]
struct Slot {
    ip: IpAddr,
    since: u64,
    phase: Phase,
    /// Its log-in is being answered: neither evicted nor expired before this (0: never was).
    shielded_until: u64,
}

/// How long a pending connection that sent its log-in is left alone for the answer.
pub const SHIELD_MILLIS: u64 = 1_000;

/// One address's connections.
#[derive(Debug, Default)]
struct Address {
    connections: usize,
    handshakes: usize,
    /// Its pending connections, oldest first: (accepted at, id).
    pending: BTreeSet<(u64, ConnectionId)>,
}

impl Address {
    /// Its place in the eviction order, while it has pending connections.
    fn weight(&self, ip: IpAddr) -> Option<(usize, Reverse<u64>, IpAddr)> {
        let (oldest, _) = self.pending.first()?;
        Some((self.pending.len(), Reverse(*oldest), ip))
    }
}

/// What admission did so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AdmissionCounts {
    /// Connections admitted.
    pub admitted: u64,
    /// Pending connections evicted to admit another.
    pub evicted: u64,
    /// Pending connections closed at their deadline.
    pub expired: u64,
}

/// The admission state of one server.
#[derive(Debug)]
pub struct Admission {
    limits: AdmissionLimits,
    slots: HashMap<ConnectionId, Slot>,
    addresses: HashMap<IpAddr, Address>,
    /// Addresses with pending connections, the next to lose one last.
    heaviest: BTreeSet<(usize, Reverse<u64>, IpAddr)>,
    /// Every pending connection, oldest first.
    pending: BTreeSet<(u64, ConnectionId)>,
    counts: AdmissionCounts,
}

impl Admission {
    /// Nobody admitted yet.
    pub fn new(limits: AdmissionLimits) -> Self {
        Self {
            limits,
            slots: HashMap::new(),
            addresses: HashMap::new(),
            heaviest: BTreeSet::new(),
            pending: BTreeSet::new(),
            counts: AdmissionCounts::default(),
        }
    }

    /// Connections admitted and not closed.
    pub fn connections(&self) -> usize {
        self.slots.len()
    }

    /// Of those, the pending ones.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// What admission did so far.
    pub fn counts(&self) -> AdmissionCounts {
        self.counts
    }

    /// A connection `id` from `ip` accepted at `now`: admitted (with the pending connection
    /// evicted for it, if one was), or refused.
    pub fn admit(
        &mut self,
        id: ConnectionId,
        ip: IpAddr,
        now: u64,
    ) -> Result<Option<ConnectionId>, Refusal> {
        if let Some(address) = self.addresses.get(&ip) {
            if address.connections >= self.limits.max_per_ip {
                return Err(Refusal::AddressFull);
            }
            if address.handshakes >= self.limits.max_handshakes_per_ip {
                return Err(Refusal::AddressHandshakes);
            }
        }
        let mut evicted = None;
        if self.pending.len() >= self.limits.max_pending
            || self.slots.len() >= self.limits.max_connections
        {
            let victim = self.next_victim(now).ok_or(Refusal::Full)?;
            self.close(victim);
            self.counts.evicted += 1;
            evicted = Some(victim);
        }
        let slot = Slot {
            ip,
            since: now,
            phase: Phase::Handshaking,
            shielded_until: 0,
        };
        self.slots.insert(id, slot);
        self.reweigh(ip, |address| {
            address.connections += 1;
            address.handshakes += 1;
            address.pending.insert((now, id));
        });
        self.pending.insert((now, id));
        self.counts.admitted += 1;
        Ok(evicted)
    }

    /// The pending connection to evict next at `now`: of the heaviest address, the oldest
    /// that is not shielded (then the next address).
    fn next_victim(&self, now: u64) -> Option<ConnectionId> {
        self.heaviest.iter().rev().find_map(|(_, _, ip)| {
            let address = self.addresses.get(ip)?;
            address
                .pending
                .iter()
                .map(|(_, id)| *id)
                .find(|id| !self.shielded(*id, now))
        })
    }

    fn shielded(&self, id: ConnectionId, now: u64) -> bool {
        self.slots
            .get(&id)
            .is_some_and(|slot| slot.shielded_until > now)
    }

    /// Pending connection `id` sent its log-in at `now`: it is left alone while the answer
    /// comes ([`SHIELD_MILLIS`], once).
    pub fn shield(&mut self, id: ConnectionId, now: u64) {
        if let Some(slot) = self.slots.get_mut(&id)
            && slot.phase != Phase::Member
            && slot.shielded_until == 0
        {
            slot.shielded_until = now + SHIELD_MILLIS;
        }
    }

    /// Connection `id` finished its WebSocket handshake.
    pub fn handshake_done(&mut self, id: ConnectionId) {
        if let Some(slot) = self.slots.get_mut(&id)
            && slot.phase == Phase::Handshaking
        {
            slot.phase = Phase::LoggingIn;
            let ip = slot.ip;
            self.reweigh(ip, |address| address.handshakes -= 1);
        }
    }

    /// Connection `id`'s user logged in: a member from now on.
    pub fn logged_in(&mut self, id: ConnectionId) {
        self.handshake_done(id);
        let Some(slot) = self.slots.get_mut(&id) else {
            return;
        };
        if slot.phase == Phase::Member {
            return;
        }
        slot.phase = Phase::Member;
        let Slot { ip, since, .. } = *slot;
        self.pending.remove(&(since, id));
        self.reweigh(ip, |address| {
            address.pending.remove(&(since, id));
        });
    }

    /// Connection `id` is gone (closing one twice is harmless).
    pub fn close(&mut self, id: ConnectionId) {
        let Some(Slot {
            ip, since, phase, ..
        }) = self.slots.remove(&id)
        else {
            return;
        };
        self.pending.remove(&(since, id));
        self.reweigh(ip, |address| {
            address.connections -= 1;
            if phase == Phase::Handshaking {
                address.handshakes -= 1;
            }
            address.pending.remove(&(since, id));
        });
    }

    /// The pending connections past their deadline at `now`, closed here (their transport
    /// closes them).
    pub fn expire(&mut self, now: u64) -> Vec<ConnectionId> {
        let allowed = if self.pending.len() * 2 > self.limits.max_pending {
            self.limits.pressed_pending_millis
        } else {
            self.limits.pending_millis
        };
        let late: Vec<ConnectionId> = self
            .pending
            .iter()
            .take_while(|(since, _)| since + allowed <= now)
            .map(|(_, id)| *id)
            .filter(|id| !self.shielded(*id, now))
            .collect();
        for id in &late {
            self.close(*id);
        }
        self.counts.expired += late.len() as u64;
        late
    }

    /// Changes `ip`'s counts with `change`, keeping the eviction order and forgetting an
    /// address left with nothing.
    fn reweigh(&mut self, ip: IpAddr, change: impl FnOnce(&mut Address)) {
        let address = self.addresses.entry(ip).or_default();
        if let Some(weight) = address.weight(ip) {
            self.heaviest.remove(&weight);
        }
        change(address);
        if let Some(weight) = address.weight(ip) {
            self.heaviest.insert(weight);
        }
        if address.connections == 0 {
            self.addresses.remove(&ip);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;

    const LIMITS: AdmissionLimits = AdmissionLimits {
        max_connections: 8,
        max_per_ip: 6,
        max_handshakes_per_ip: 4,
        max_pending: 4,
        pending_millis: 15_000,
        pressed_pending_millis: 3_000,
    };

    fn ip(last: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(127, 0, 0, last))
    }

    #[test]
    fn strangers_push_out_each_other_never_a_member_nor_a_newcomer_with_one_connection() {
        let mut admission = Admission::new(LIMITS);
        // Four members log in.
        for id in 0..4 {
            assert_eq!(admission.admit(id, ip(1), id), Ok(None));
            admission.logged_in(id);
        }
        // A stranger fills the pending share with three connections, another with one.
        for id in 10..13 {
            assert_eq!(admission.admit(id, ip(2), 100 + id), Ok(None));
        }
        assert_eq!(admission.admit(20, ip(3), 200), Ok(None));
        assert_eq!(admission.pending(), 4);
        // A user's new connection evicts the heaviest address's oldest.
        assert_eq!(admission.admit(30, ip(1), 300), Ok(Some(10)));
        // More strangers keep evicting the heaviest: ip 2 until it is down to one, then the
        // oldest of the addresses left with one each.
        assert_eq!(admission.admit(21, ip(3), 301), Ok(Some(11)));
        assert_eq!(admission.admit(22, ip(3), 302), Ok(Some(20)));
        assert_eq!(admission.admit(23, ip(3), 303), Ok(Some(21)));
        assert_eq!(admission.admit(24, ip(4), 304), Ok(Some(22)));
        // Now ips 1, 2, 3 and 4 hold one pending each: the oldest goes, 12 of ip 2.
        assert_eq!(admission.admit(25, ip(5), 305), Ok(Some(12)));
        // The user logs in meanwhile: a member, never evicted.
        admission.logged_in(30);
        for id in 40..50 {
            let evicted = admission
                .admit(id, ip(6), 400 + id)
                .expect("a pending one goes");
            assert_ne!(evicted, Some(30));
            assert!(evicted.is_none_or(|evicted| evicted >= 23), "{evicted:?}");
        }
        assert_eq!(admission.connections(), 8);
        assert_eq!(admission.counts().evicted, 6 + 10);
    }

    #[test]
    fn with_every_slot_a_members_the_newcomer_is_refused_and_address_caps_hold() {
        let mut admission = Admission::new(LIMITS);
        for id in 0..8 {
            let from = ip(u8::try_from(id).unwrap_or(0) % 2 + 1);
            assert_eq!(admission.admit(id, from, 0), Ok(None));
            admission.logged_in(id);
        }
        assert_eq!(admission.admit(8, ip(9), 1), Err(Refusal::Full));
        admission.close(0);
        admission.close(0);
        assert_eq!(admission.connections(), 7);
        // One slot free: an address's handshakes are capped before anything is evicted.
        let mut admission = Admission::new(LIMITS);
        for id in 0..4 {
            assert_eq!(admission.admit(id, ip(2), 0), Ok(None));
        }
        assert_eq!(
            admission.admit(4, ip(2), 0),
            Err(Refusal::AddressHandshakes)
        );
        admission.handshake_done(0);
        admission.handshake_done(1);
        // Pending share full: ip 2 evicts its own oldest.
        assert_eq!(admission.admit(4, ip(2), 1), Ok(Some(0)));
        for id in [1, 2, 3, 4] {
            admission.logged_in(id);
        }
        for id in [5, 6] {
            admission.admit(id, ip(2), 2).expect("room");
            admission.logged_in(id);
        }
        assert_eq!(admission.admit(7, ip(2), 3), Err(Refusal::AddressFull));
    }

    #[test]
    fn a_connection_whose_log_in_is_being_answered_is_neither_evicted_nor_expired_meanwhile() {
        let mut admission = Admission::new(LIMITS);
        for id in 0..4 {
            admission.admit(id, ip(2), id).expect("room");
        }
        // The oldest sent its log-in: the next oldest goes instead.
        admission.shield(0, 10);
        assert_eq!(admission.admit(4, ip(3), 20), Ok(Some(1)));
        // Under pressure (three of four pending) the deadline is 3 s; a connection shielded
        // then outlives it until its shield ends, and the shield is given once.
        let mut admission = Admission::new(LIMITS);
        for id in 0..3 {
            admission.admit(id, ip(2), 0).expect("room");
        }
        admission.shield(0, 2_500);
        admission.shield(0, 2_900);
        assert_eq!(admission.expire(3_000), [1, 2]);
        // Its shield over, the pressure is gone too (one of four): the normal 15 s apply.
        assert!(admission.expire(2_500 + SHIELD_MILLIS).is_empty());
        assert_eq!(admission.expire(15_000), [0]);
    }

    #[test]
    fn pending_connections_expire_at_their_deadline_which_shortens_under_pressure() {
        let mut admission = Admission::new(LIMITS);
        admission.admit(1, ip(2), 0).expect("room");
        admission.admit(2, ip(3), 1_000).expect("room");
        admission.admit(3, ip(1), 1_000).expect("room");
        admission.logged_in(3);
        // Two pending of four: no pressure, 15 s each.
        assert!(admission.expire(14_999).is_empty());
        assert_eq!(admission.expire(15_000), [1]);
        assert_eq!(admission.expire(16_000), [2]);
        // Three pending of four: the pressed 3 s.
        for id in 10..13 {
            admission.admit(id, ip(4), 20_000).expect("room");
        }
        assert!(admission.expire(22_999).is_empty());
        assert_eq!(admission.expire(23_000), [10, 11, 12]);
        assert_eq!(admission.pending(), 0);
        assert_eq!(admission.connections(), 1);
        assert_eq!(admission.counts().expired, 5);
    }
}
