//! Expectation table: data flows a control channel announced but that have not started yet
//! (FTP PORT/PASV/EPRT/EPSV data connections, TFTP transfers after a RRQ/WRQ).
//!
//! An [`Expectation`] fixes one endpoint of the future flow — the *listener*, which receives
//! its first packet — and constrains the other (the *peer*: an address or any, a port or
//! any). That covers every case this sensor links:
//!
//! | announcement | listener | peer |
//! |---|---|---|
//! | FTP passive (227/229/228) | control server : announced port | control client, any port |
//! | FTP active (PORT/EPRT/LPRT) | announced address : port | control server, any port (20 or other) |
//! | TFTP RRQ/WRQ | requesting client : its port | server address, any port (new TID) |
//!
//! A TFTP transfer flow is normally started by the server (its first DATA/OACK/ACK goes to
//! the client's port); when the capture shows the client's packet first, the flow's
//! endpoints are the other way round. Expectations marked `reversible` therefore also match
//! a flow whose *client* is the listener. Both lookups use the one index, keyed by the
//! listener's fixed address and port, so the wildcard port on the peer side costs nothing.
//!
//! Bounds and clocks: at most `cap` entries; inserting into a full table evicts the oldest.
//! Entries expire `ttl` seconds of packet time after insertion (all entries share one ttl,
//! so insertion order is expiry order). Every way an entry leaves is counted.

use std::collections::VecDeque;
use std::net::IpAddr;

use hashbrown::HashMap;
use serde::Serialize;

use crate::app_proto::AppProto;
use crate::time::Ts;

/// IANA protocol number for TCP.
pub const TCP: u8 = 6;
/// IANA protocol number for UDP.
pub const UDP: u8 = 17;

/// One expected flow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expectation {
    /// Label the matching flow gets (`ftp-data`, `ftps-data`, `tftp-data`).
    pub proto: AppProto,
    /// Transport protocol number ([`TCP`] or [`UDP`]).
    pub l4: u8,
    /// Address that receives the flow's first packet.
    pub listener: IpAddr,
    /// Port that receives the flow's first packet.
    pub port: u16,
    /// Address the flow comes from; `None` accepts any.
    pub peer: Option<IpAddr>,
    /// Port the flow comes from; `None` accepts any.
    pub peer_port: Option<u16>,
    /// Also match a flow whose client is the listener and whose server is the peer.
    pub reversible: bool,
    /// Session the flow belongs to.
    pub session_id: u64,
    /// What announced it (`PASV`, `EPRT`, `RRQ` …).
    pub purpose: &'static str,
    /// Opaque owner data (e.g. the index of the transfer within the session).
    pub tag: u64,
}

/// A matched expectation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpectMatch {
    /// The expectation, now removed from the table.
    pub expectation: Expectation,
    /// Matched with the flow's endpoints swapped (the listener opened the flow).
    pub reversed: bool,
    /// When it was inserted.
    pub created: Ts,
}

/// What happened to expectations (for `stats` records).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ExpectCounters {
    /// Stored.
    pub inserted: u64,
    /// Taken by a matching flow.
    pub matched: u64,
    /// Dropped after their ttl.
    pub expired: u64,
    /// Dropped, oldest first, to make room in a full table.
    pub evicted: u64,
    /// Replaced by an identical newer expectation.
    pub duplicates: u64,
    /// Removed because their session ended.
    pub cancelled: u64,
    /// Refused (table capacity is zero).
    pub rejected: u64,
    /// Held now.
    pub active: u64,
    /// Most held at once.
    pub peak: u64,
}

#[derive(Debug, Clone)]
struct Slot {
    exp: Expectation,
    created: Ts,
    expires: Ts,
    serial: u64,
}

type Key = (u8, IpAddr, u16);

/// The bounded expectation table.
#[derive(Debug, Clone)]
pub struct ExpectationTable {
    cap: usize,
    ttl_secs: u64,
    slots: Vec<Option<Slot>>,
    free: Vec<u32>,
    /// Listener (l4, address, port) → slots, oldest first.
    index: HashMap<Key, Vec<u32>>,
    /// (slot, serial) in insertion order; entries whose serial no longer matches are stale.
    order: VecDeque<(u32, u64)>,
    len: usize,
    serial: u64,
    counters: ExpectCounters,
}

impl ExpectationTable {
    /// A table holding at most `cap` expectations, each living `ttl_secs` of packet time.
    pub fn new(cap: usize, ttl_secs: u64) -> ExpectationTable {
        ExpectationTable {
            cap,
            ttl_secs,
            slots: Vec::new(),
            free: Vec::new(),
            index: HashMap::new(),
            order: VecDeque::new(),
            len: 0,
            serial: 0,
            counters: ExpectCounters::default(),
        }
    }

    /// Expectations held.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Nothing held.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Counters, with `active` filled in.
    pub fn counters(&self) -> ExpectCounters {
        ExpectCounters {
            active: self.len as u64,
            ..self.counters
        }
    }

    /// Stores `exp` at packet time `now`; false if the table cannot hold anything. An
    /// identical expectation already held is replaced (and counted as a duplicate).
    pub fn insert(&mut self, exp: Expectation, now: Ts) -> bool {
        self.expire(now);
        if self.cap == 0 {
            self.counters.rejected += 1;
            return false;
        }
        let key = (exp.l4, exp.listener, exp.port);
        let same = self.index.get(&key).and_then(|ids| {
            ids.iter().copied().find(|&id| {
                self.slot(id).is_some_and(|s| {
                    let e = &s.exp;
                    e.proto == exp.proto
                        && e.peer == exp.peer
                        && e.peer_port == exp.peer_port
                        && e.session_id == exp.session_id
                })
            })
        });
        if let Some(id) = same {
            self.remove(id);
            self.counters.duplicates += 1;
        }
        while self.len >= self.cap {
            if !self.pop_oldest() {
                break;
            }
            self.counters.evicted += 1;
        }
        self.serial += 1;
        let slot = Slot {
            exp,
            created: now,
            expires: now.plus_secs(self.ttl_secs),
            serial: self.serial,
        };
        let id = match self.free.pop() {
            Some(id) => {
                if let Some(s) = self.slots.get_mut(id as usize) {
                    *s = Some(slot);
                }
                id
            }
            None => {
                // The slab never outgrows `cap` live entries plus the free list, so the
                // index always fits in a u32 for any sane cap.
                let id = u32::try_from(self.slots.len()).unwrap_or(u32::MAX);
                self.slots.push(Some(slot));
                id
            }
        };
        self.index.entry(key).or_default().push(id);
        self.order.push_back((id, self.serial));
        self.len += 1;
        self.counters.inserted += 1;
        self.counters.peak = self.counters.peak.max(self.len as u64);
        if self.order.len() > self.cap.saturating_mul(2).saturating_add(64) {
            self.compact_order();
        }
        true
    }

    /// Takes the expectation a new flow from `client` to `server` fulfils, if any.
    ///
    /// Looks first for a listener at `server` accepting `client`, then — for reversible
    /// expectations — for a listener at `client` accepting `server`. Among several, the
    /// newest wins (a later PASV on the same port supersedes an older one).
    pub fn take_match(
        &mut self,
        l4: u8,
        client: (IpAddr, u16),
        server: (IpAddr, u16),
        now: Ts,
    ) -> Option<ExpectMatch> {
        for (listener, peer, reversed) in [(server, client, false), (client, server, true)] {
            let Some(ids) = self.index.get(&(l4, listener.0, listener.1)) else {
                continue;
            };
            let mut expired = Vec::new();
            let mut found = None;
            for &id in ids.iter().rev() {
                let Some(s) = self.slot(id) else { continue };
                if now >= s.expires {
                    expired.push(id);
                    continue;
                }
                let e = &s.exp;
                let fits = (!reversed || e.reversible)
                    && e.peer.is_none_or(|p| p == peer.0)
                    && e.peer_port.is_none_or(|p| p == peer.1);
                if fits {
                    found = Some(id);
                    break;
                }
            }
            for id in expired {
                self.remove(id);
                self.counters.expired += 1;
            }
            if let Some(id) = found
                && let Some(s) = self.remove(id)
            {
                self.counters.matched += 1;
                return Some(ExpectMatch {
                    expectation: s.exp,
                    reversed,
                    created: s.created,
                });
            }
        }
        None
    }

    /// Drops every expectation whose ttl has passed at `now` (oldest first).
    pub fn expire(&mut self, now: Ts) {
        while let Some(&(id, serial)) = self.order.front() {
            match self.slot(id) {
                Some(s) if s.serial == serial => {
                    if now < s.expires {
                        return;
                    }
                    self.order.pop_front();
                    self.remove(id);
                    self.counters.expired += 1;
                }
                _ => {
                    self.order.pop_front();
                }
            }
        }
    }

    /// Removes every expectation of `session_id` (its control session ended at packet time
    /// `ended`); returns how many. One whose ttl had passed by `ended` counts as expired,
    /// the rest as cancelled: the split depends on packet time only, never on whether a
    /// lookup happened to clear the stale entry first. Linear in the table size: sessions
    /// end far less often than packets arrive.
    pub fn remove_session(&mut self, session_id: u64, ended: Ts) -> usize {
        let ids: Vec<(u32, bool)> = self
            .slots
            .iter()
            .enumerate()
            .filter_map(|(i, s)| {
                let s = s.as_ref().filter(|s| s.exp.session_id == session_id)?;
                Some((u32::try_from(i).ok()?, ended >= s.expires))
            })
            .collect();
        for &(id, stale) in &ids {
            self.remove(id);
            if stale {
                self.counters.expired += 1;
            } else {
                self.counters.cancelled += 1;
            }
        }
        ids.len()
    }

    fn slot(&self, id: u32) -> Option<&Slot> {
        self.slots.get(id as usize).and_then(Option::as_ref)
    }

    /// Evicts the oldest live entry; false if there is none.
    fn pop_oldest(&mut self) -> bool {
        while let Some((id, serial)) = self.order.pop_front() {
            if self.slot(id).is_some_and(|s| s.serial == serial) {
                self.remove(id);
                return true;
            }
        }
        false
    }

    fn remove(&mut self, id: u32) -> Option<Slot> {
        let s = self.slots.get_mut(id as usize)?.take()?;
        let key = (s.exp.l4, s.exp.listener, s.exp.port);
        if let Some(ids) = self.index.get_mut(&key) {
            ids.retain(|&x| x != id);
            if ids.is_empty() {
                self.index.remove(&key);
            }
        }
        self.free.push(id);
        self.len -= 1;
        Some(s)
    }

    fn compact_order(&mut self) {
        let slots = &self.slots;
        self.order.retain(|&(id, serial)| {
            slots
                .get(id as usize)
                .and_then(Option::as_ref)
                .is_some_and(|s| s.serial == serial)
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn passive(port: u16, session: u64) -> Expectation {
        Expectation {
            proto: AppProto::FtpData,
            l4: TCP,
            listener: ip("192.0.2.10"),
            port,
            peer: Some(ip("10.0.0.1")),
            peer_port: None,
            reversible: false,
            session_id: session,
            purpose: "PASV",
            tag: 0,
        }
    }

    fn tftp(client_port: u16, session: u64) -> Expectation {
        Expectation {
            proto: AppProto::TftpData,
            l4: UDP,
            listener: ip("10.0.0.5"),
            port: client_port,
            peer: Some(ip("198.51.100.7")),
            peer_port: None,
            reversible: true,
            session_id: session,
            purpose: "RRQ",
            tag: 0,
        }
    }

    const T0: Ts = Ts(1_000_000_000_000);

    #[test]
    fn passive_match_from_any_client_port() {
        let mut t = ExpectationTable::new(16, 60);
        assert!(t.insert(passive(21001, 7), T0));
        // Wrong client address, wrong protocol, wrong port: no match.
        assert!(
            t.take_match(TCP, (ip("10.0.0.2"), 40000), (ip("192.0.2.10"), 21001), T0)
                .is_none()
        );
        assert!(
            t.take_match(UDP, (ip("10.0.0.1"), 40000), (ip("192.0.2.10"), 21001), T0)
                .is_none()
        );
        assert!(
            t.take_match(TCP, (ip("10.0.0.1"), 40000), (ip("192.0.2.10"), 21002), T0)
                .is_none()
        );
        let m = t
            .take_match(
                TCP,
                (ip("10.0.0.1"), 40000),
                (ip("192.0.2.10"), 21001),
                T0.plus_secs(1),
            )
            .unwrap();
        assert_eq!(m.expectation.session_id, 7);
        assert!(!m.reversed);
        assert_eq!(m.created, T0);
        // Taken: a second connection to the same port is not linked.
        assert!(
            t.take_match(TCP, (ip("10.0.0.1"), 40001), (ip("192.0.2.10"), 21001), T0)
                .is_none()
        );
        let c = t.counters();
        assert_eq!((c.inserted, c.matched, c.active), (1, 1, 0));
    }

    #[test]
    fn tftp_wildcard_port_both_orientations() {
        let mut t = ExpectationTable::new(16, 30);
        t.insert(tftp(50618, 1), T0);
        t.insert(tftp(50700, 2), T0);
        // Server's new TID sends first: flow client = server.
        let m = t
            .take_match(UDP, (ip("198.51.100.7"), 3445), (ip("10.0.0.5"), 50618), T0)
            .unwrap();
        assert_eq!((m.expectation.session_id, m.reversed), (1, false));
        // Client's packet seen first: flow client = the listener.
        let m = t
            .take_match(
                UDP,
                (ip("10.0.0.5"), 50700),
                (ip("198.51.100.7"), 62058),
                T0,
            )
            .unwrap();
        assert_eq!((m.expectation.session_id, m.reversed), (2, true));
        // FTP expectations are not reversible.
        t.insert(passive(21001, 3), T0);
        assert!(
            t.take_match(TCP, (ip("192.0.2.10"), 21001), (ip("10.0.0.1"), 5555), T0)
                .is_none()
        );
    }

    #[test]
    fn expiry_by_packet_time() {
        let mut t = ExpectationTable::new(16, 30);
        t.insert(passive(1000, 1), T0);
        t.insert(passive(1001, 1), T0.plus_secs(20));
        assert!(
            t.take_match(
                TCP,
                (ip("10.0.0.1"), 1),
                (ip("192.0.2.10"), 1000),
                T0.plus_secs(30)
            )
            .is_none()
        );
        assert_eq!(t.counters().expired, 1);
        t.expire(T0.plus_secs(49));
        assert_eq!(t.len(), 1);
        t.expire(T0.plus_secs(50));
        assert!(t.is_empty());
        assert_eq!(t.counters().expired, 2);
    }

    #[test]
    fn full_table_evicts_oldest_and_duplicates_replace() {
        let mut t = ExpectationTable::new(3, 60);
        for p in 1..=3 {
            t.insert(passive(p, 1), T0);
        }
        t.insert(passive(2, 1), T0);
        assert_eq!(t.counters().duplicates, 1);
        assert_eq!(t.len(), 3);
        t.insert(passive(4, 1), T0);
        assert_eq!(t.counters().evicted, 1);
        // Port 1 was oldest; port 2 was refreshed by its duplicate, so port 3 is next.
        assert!(
            t.take_match(TCP, (ip("10.0.0.1"), 9), (ip("192.0.2.10"), 1), T0)
                .is_none()
        );
        t.insert(passive(5, 1), T0);
        assert!(
            t.take_match(TCP, (ip("10.0.0.1"), 9), (ip("192.0.2.10"), 3), T0)
                .is_none()
        );
        for p in [2, 4, 5] {
            assert!(
                t.take_match(TCP, (ip("10.0.0.1"), 9), (ip("192.0.2.10"), p), T0)
                    .is_some()
            );
        }
        let mut none = ExpectationTable::new(0, 60);
        assert!(!none.insert(passive(1, 1), T0));
        assert_eq!((none.len(), none.counters().rejected), (0, 1));
    }

    #[test]
    fn newest_wins_and_session_removal() {
        let mut t = ExpectationTable::new(16, 60);
        let mut a = passive(2000, 1);
        a.peer = None;
        t.insert(a, T0);
        t.insert(passive(2000, 2), T0.plus_secs(1));
        let m = t
            .take_match(
                TCP,
                (ip("10.0.0.1"), 9),
                (ip("192.0.2.10"), 2000),
                T0.plus_secs(2),
            )
            .unwrap();
        assert_eq!(m.expectation.session_id, 2);
        t.insert(passive(2001, 1), T0);
        assert_eq!(t.remove_session(1, Ts(0)), 2);
        assert!(t.is_empty());
        assert_eq!(t.counters().cancelled, 2);
    }

    /// Regression: with several workers an expectation past its ttl was "cancelled" on one
    /// and "expired" on another, depending on whether a lookup had cleared it first.
    #[test]
    fn session_end_counts_stale_expectations_as_expired() {
        let mut t = ExpectationTable::new(16, 60);
        t.insert(passive(2000, 1), T0);
        t.insert(passive(2001, 1), T0.plus_secs(50));
        assert_eq!(t.remove_session(1, T0.plus_secs(70)), 2);
        assert_eq!(t.counters().expired, 1);
        assert_eq!(t.counters().cancelled, 1);
    }

    #[test]
    fn flood_stays_within_cap() {
        let cap = 1000;
        let mut t = ExpectationTable::new(cap, 30);
        let mut matched = 0u64;
        for i in 0..100_000u64 {
            // Thousands of PASV replies that are never used, plus one in 100 that is.
            let now = Ts(T0.0 + i * 1_000_000); // 1 ms apart
            let port = 1024 + (i % 60_000) as u16;
            t.insert(passive(port, i), now);
            assert!(t.len() <= cap);
            if i % 100 == 0 {
                let m = t.take_match(TCP, (ip("10.0.0.1"), 5), (ip("192.0.2.10"), port), now);
                matched += u64::from(m.is_some());
            }
        }
        let c = t.counters();
        assert_eq!(c.inserted, 100_000);
        assert_eq!(c.matched, matched);
        assert_eq!(matched, 1000);
        assert!(c.peak <= cap as u64 && c.active <= cap as u64);
        assert!(c.evicted > 90_000);
        // Every inserted expectation is accounted for exactly once.
        assert_eq!(
            c.inserted,
            c.active + c.matched + c.expired + c.evicted + c.duplicates + c.cancelled
        );
        // The slab and order queue stay bounded too.
        assert!(t.slots.len() <= cap);
        assert!(t.order.len() <= cap * 2 + 64);
    }

    proptest! {
        #[test]
        fn accounting_invariant(ops in proptest::collection::vec((0u8..4, 0u16..8, 0u64..3, 0u64..40), 0..400)) {
            let mut t = ExpectationTable::new(5, 10);
            let mut now = T0;
            for (op, port, session, dt) in ops {
                now = now.plus_secs(dt / 8);
                match op {
                    0 | 1 => { t.insert(passive(port, session), now); }
                    2 => { let _ = t.take_match(TCP, (ip("10.0.0.1"), 1), (ip("192.0.2.10"), port), now); }
                    _ => { t.remove_session(session, Ts(0)); }
                }
                prop_assert!(t.len() <= 5);
                let c = t.counters();
                prop_assert_eq!(c.inserted, c.active + c.matched + c.expired + c.evicted + c.duplicates + c.cancelled);
                prop_assert_eq!(t.index.values().map(Vec::len).sum::<usize>(), t.len());
            }
        }
    }
}
