//! Flow stage: the bounded flow table, per-direction byte accounting and TCP state, all on
//! packet time.
//!
//! Invariants:
//! * the table never holds more than `max_flows` flows; making room evicts one (counted);
//! * TCP payload is counted from sequence space: a retransmitted byte counts once, a hole
//!   is counted as missing, and [`Flow::update`] hands the app layer only new bytes;
//! * nothing here reads the wall clock.

pub mod key;

use std::hash::BuildHasher;

use hashbrown::{DefaultHashBuilder, HashTable};
use serde::Serialize;

use crate::decode::{Fragment, Packet, TcpMeta};
use crate::direction::Direction;
use crate::time::Ts;
pub use key::FlowKey;

/// Timeouts and caps for the table, in packet-time seconds.
#[derive(Debug, Clone, PartialEq)]
pub struct FlowLimits {
    /// Hard cap on tracked flows.
    pub max_flows: usize,
    /// TCP before the handshake completes.
    pub tcp_new: u64,
    /// TCP established or half-closed.
    pub tcp_established: u64,
    /// TCP after both FINs or a RST (absorbs the last ACKs).
    pub tcp_closed: u64,
    /// UDP seen in one direction only.
    pub udp_new: u64,
    /// UDP seen both ways.
    pub udp_established: u64,
    /// ICMP.
    pub icmp: u64,
    /// Any other IP protocol.
    pub other: u64,
}

impl Default for FlowLimits {
    fn default() -> FlowLimits {
        FlowLimits {
            max_flows: 262_144,
            tcp_new: 30,
            tcp_established: 600,
            tcp_closed: 10,
            udp_new: 30,
            udp_established: 120,
            icmp: 30,
            other: 60,
        }
    }
}

/// Why a flow ended (`flow.reason`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndReason {
    /// Both FINs seen, then the closed timeout passed.
    Fin,
    /// A RST was seen, then the closed timeout passed.
    Rst,
    /// Idle longer than its state's timeout.
    Timeout,
    /// Pushed out to make room under `max_flows`.
    Evicted,
    /// The same 5-tuple opened a new connection (SYN after close).
    Reused,
    /// The input ended.
    EndOfInput,
    /// The sensor was asked to stop.
    Shutdown,
}

impl EndReason {
    /// The EVE `flow.reason` string.
    pub const fn as_str(self) -> &'static str {
        match self {
            EndReason::Fin => "fin",
            EndReason::Rst => "rst",
            EndReason::Timeout => "timeout",
            EndReason::Evicted => "evicted",
            EndReason::Reused => "reused",
            EndReason::EndOfInput => "end-of-input",
            EndReason::Shutdown => "shutdown",
        }
    }
}

/// TCP connection state as far as a passive observer can tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TcpState {
    /// Not TCP, or no SYN seen yet and no data (midstream pick-up starts Established).
    None,
    /// SYN seen.
    SynSent,
    /// SYN-ACK seen.
    SynReceived,
    /// Handshake complete or data seen both ways.
    Established,
    /// One side sent FIN.
    Closing,
    /// Both sides sent FIN.
    Closed,
    /// A RST was seen.
    Reset,
}

/// Per-direction counters.
#[derive(Debug, Clone, Copy, Default)]
pub struct DirCounters {
    /// Packets.
    pub pkts: u64,
    /// Wire bytes (original frame length).
    pub bytes: u64,
    /// Unique L4 payload bytes (TCP: sequence space advanced).
    pub payload: u64,
    /// TCP payload bytes seen again (retransmissions, overlaps).
    pub retransmitted: u64,
    /// TCP payload bytes skipped over by a hole in sequence space.
    pub missing: u64,
    /// Next expected TCP sequence number.
    next_seq: u32,
    /// `next_seq` is meaningful.
    seq_known: bool,
    /// FIN sent in this direction.
    pub fin: bool,
    /// SYN sent in this direction.
    pub syn: bool,
    /// The most recent holes in sequence space `[start, end)`, so a late (reordered)
    /// segment that fills one counts as payload rather than as a retransmission.
    holes: [Option<(u32, u32)>; 2],
    /// The last chunk handed up was cut short by the snap length.
    cut_pending: bool,
    /// Last acknowledgement number sent in this direction (ACK flag set).
    last_ack: Option<u32>,
    /// How far this direction's acknowledgements advanced in total: the peer's sequence
    /// space this side confirmed receiving (see [`Flow::estimated_unseen_payload`]).
    pub acked: u64,
}

impl DirCounters {
    /// Follows the acknowledgement number forward; an older (reordered) one changes nothing.
    fn note_ack(&mut self, ack: u32) {
        if let Some(last) = self.last_ack {
            let step = ack.wrapping_sub(last) as i32;
            if step <= 0 {
                return;
            }
            self.acked += u64::from(step.unsigned_abs());
        }
        self.last_ack = Some(ack);
    }

    fn add_hole(&mut self, start: u32, end: u32) {
        // Keep the newest two holes; an older one stays counted as missing for good.
        self.holes = [Some((start, end)), self.holes[0]];
    }

    /// Bytes of `[start, end)` that fall into a recorded hole; those hole parts are closed.
    fn fill_holes(&mut self, start: u32, end: u32) -> u32 {
        // Compare in a window that ends at next_seq so wrap-around orders correctly.
        let base = self.next_seq.wrapping_sub(1 << 31);
        let r = |x: u32| x.wrapping_sub(base);
        let (rs, re) = (r(start), r(end));
        let mut filled = 0;
        let mut pieces: [Option<(u32, u32)>; 4] = [None; 4];
        let mut n = 0;
        for hole in self.holes.iter().flatten() {
            let (hs, he) = (r(hole.0), r(hole.1));
            let (os, oe) = (rs.max(hs), re.min(he));
            let mut keep = |a: u32, b: u32| {
                if b > a
                    && let Some(slot) = pieces.get_mut(n)
                {
                    *slot = Some((a.wrapping_add(base), b.wrapping_add(base)));
                    n += 1;
                }
            };
            if oe > os {
                filled += oe - os;
                keep(hs, os);
                keep(oe, he);
            } else {
                keep(hs, he);
            }
        }
        let mut kept = pieces.iter().flatten().copied();
        self.holes = [kept.next(), kept.next()];
        filled
    }
}

/// Which new bytes of a packet the application layer should see.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Chunk {
    /// Offset of the new bytes within the packet's captured payload.
    pub start: usize,
    /// End of the new bytes within the captured payload.
    pub end: usize,
    /// Bytes are missing *before* this chunk: a hole in sequence space, or the tail an
    /// earlier packet lost to the snap length.
    pub gap: bool,
    /// Bytes of this packet's payload missing *after* `end` (cut by the snap length); a
    /// parser that frames by length can skip them by count.
    pub cut: u32,
}

/// One tracked flow. `A` is the application-layer state the engine attaches (identification,
/// parsers, session links); this module never looks inside it.
#[derive(Debug, Clone)]
pub struct Flow<A> {
    /// Canonical key.
    pub key: FlowKey,
    /// Index in `key` of the client endpoint.
    pub client: usize,
    /// Stable id (< 2^51) shared by every record of the flow.
    pub flow_id: u64,
    /// First packet time.
    pub start: Ts,
    /// Last packet time.
    pub last: Ts,
    /// `pcap_cnt` of the first packet.
    pub first_pcap_cnt: u64,
    /// `pcap_cnt` of the last packet.
    pub last_pcap_cnt: u64,
    /// Counters indexed by [`Direction::index`].
    pub dirs: [DirCounters; 2],
    /// TCP state.
    pub tcp: TcpState,
    /// For ICMP: type and code of the first packet (Community ID needs them).
    pub icmp: (u8, u8),
    /// Application-layer state owned by the engine.
    pub app: A,
}

impl<A: Default> Flow<A> {
    fn new(key: FlowKey, src_index: usize, pkt: &Packet<'_>, ts: Ts, pcap_cnt: u64) -> Flow<A> {
        let client = choose_client(src_index, pkt);
        let mut h = key::Fnv(key.stable_hash());
        h.write(&ts.0.to_be_bytes());
        // Suricata keeps flow_id below 2^51 so it survives a JSON double; never zero.
        let flow_id = (key::mix64(h.0) & ((1u64 << 51) - 1)).max(1);
        Flow {
            key,
            client,
            flow_id,
            start: ts,
            last: ts,
            first_pcap_cnt: pcap_cnt,
            last_pcap_cnt: pcap_cnt,
            dirs: [DirCounters::default(); 2],
            tcp: TcpState::None,
            icmp: if matches!(pkt.proto, 1 | 58) {
                (pkt.sport as u8, pkt.dport as u8)
            } else {
                (0, 0)
            },
            app: A::default(),
        }
    }
}

impl<A> Flow<A> {
    /// `(ip, port)` of the client.
    pub fn client_endpoint(&self) -> (std::net::IpAddr, u16) {
        self.key.endpoint(self.client)
    }

    /// `(ip, port)` of the server.
    pub fn server_endpoint(&self) -> (std::net::IpAddr, u16) {
        self.key.endpoint(1 - self.client.min(1))
    }

    /// Makes the server the client and vice versa (a midstream pickup proved the port
    /// heuristic wrong); per-direction counters follow.
    pub fn swap_sides(&mut self) {
        self.client = 1 - self.client.min(1);
        self.dirs.swap(0, 1);
    }

    /// Direction of a packet whose source is endpoint `src_index`.
    pub fn direction_of(&self, src_index: usize) -> Direction {
        if src_index == self.client {
            Direction::ToServer
        } else {
            Direction::ToClient
        }
    }

    /// Counters for one direction.
    pub fn dir(&self, d: Direction) -> &DirCounters {
        if d == Direction::ToServer {
            &self.dirs[0]
        } else {
            &self.dirs[1]
        }
    }

    fn dir_mut(&mut self, d: Direction) -> &mut DirCounters {
        if d == Direction::ToServer {
            &mut self.dirs[0]
        } else {
            &mut self.dirs[1]
        }
    }

    /// A TCP flow of which only one direction was captured (asymmetric routing, a SPAN
    /// port fed one way, a tap with one leg down).
    pub fn one_sided(&self) -> bool {
        self.key.proto == 6 && (self.dirs[0].pkts == 0) != (self.dirs[1].pkts == 0)
    }

    /// For a [`one_sided`](Self::one_sided) flow: the unseen direction and an estimate of its
    /// payload bytes.
    ///
    /// The seen side's acknowledgement numbers say how much of the unseen side's sequence
    /// space arrived: from the first ACK seen (the handshake's third packet acknowledges the
    /// peer's ISN + 1, so the peer's SYN is not counted) to the highest, followed across the
    /// 32-bit wrap. This is sound for TCP because a receiver only acknowledges bytes it got in
    /// order; it over-counts by one when the peer's FIN was acknowledged, and under-counts
    /// what the peer sent before the capture started or after the last ACK seen. Without any
    /// ACK from the seen side there is no estimate.
    pub fn estimated_unseen_payload(&self) -> Option<(Direction, u64)> {
        if !self.one_sided() {
            return None;
        }
        let (seen, unseen) = if self.dirs[0].pkts > 0 {
            (&self.dirs[0], Direction::ToClient)
        } else {
            (&self.dirs[1], Direction::ToServer)
        };
        seen.last_ack.map(|_| (unseen, seen.acked))
    }

    /// Both directions carried payload.
    pub fn payload_both_ways(&self) -> bool {
        self.dirs.iter().all(|d| d.payload > 0)
    }

    /// The EVE `flow.state`.
    pub fn state_str(&self) -> &'static str {
        match self.tcp {
            TcpState::Closed | TcpState::Reset => "closed",
            TcpState::Established | TcpState::Closing => "established",
            TcpState::SynSent | TcpState::SynReceived => "new",
            TcpState::None => {
                if self.dirs.iter().all(|d| d.pkts > 0) {
                    "established"
                } else {
                    "new"
                }
            }
        }
    }

    /// Accounts one packet and returns the new in-order payload for the app layer (if any).
    pub fn update(
        &mut self,
        dir: Direction,
        pkt: &Packet<'_>,
        ts: Ts,
        pcap_cnt: u64,
    ) -> Option<Chunk> {
        if ts > self.last {
            self.last = ts;
        }
        self.last_pcap_cnt = pcap_cnt;
        let d = self.dir_mut(dir);
        d.pkts += 1;
        d.bytes += u64::from(pkt.wire_len);
        match pkt.tcp {
            Some(t) if pkt.fragment != Fragment::Continuation => {
                if t.has(TcpMeta::ACK) {
                    self.dir_mut(dir).note_ack(t.ack);
                }
                let chunk = self.tcp_update(dir, t, pkt);
                self.tcp_state(dir, t);
                chunk
            }
            _ => {
                let d = self.dir_mut(dir);
                d.payload += u64::from(pkt.payload_len);
                if pkt.fragment == Fragment::Continuation || pkt.payload.is_empty() {
                    None
                } else {
                    // Each datagram stands alone: a cut one loses only its own tail.
                    Some(Chunk {
                        start: 0,
                        end: pkt.payload.len(),
                        gap: false,
                        cut: pkt.payload_len.saturating_sub(pkt.payload.len() as u32),
                    })
                }
            }
        }
    }

    fn tcp_update(&mut self, dir: Direction, t: TcpMeta, pkt: &Packet<'_>) -> Option<Chunk> {
        let d = self.dir_mut(dir);
        let len = pkt.payload_len;
        if t.has(TcpMeta::SYN) {
            d.syn = true;
            d.next_seq = t.seq.wrapping_add(1);
            d.seq_known = true;
            // Data on a SYN (TFO) is rare; it is counted but not handed up.
            d.payload += u64::from(len);
            return None;
        }
        if !d.seq_known {
            d.next_seq = t.seq;
            d.seq_known = true;
        }
        let mut chunk = None;
        if len > 0 {
            let rel = t.seq.wrapping_sub(d.next_seq) as i32;
            let captured = pkt.payload.len();
            if rel == 0 {
                d.payload += u64::from(len);
                d.next_seq = d.next_seq.wrapping_add(len);
                chunk = Some(Chunk {
                    start: 0,
                    end: captured,
                    gap: false,
                    cut: len.saturating_sub(captured as u32),
                });
            } else if rel > 0 {
                // A hole: those bytes were never seen (loss before the sensor, or reordering).
                d.missing += rel as u64;
                d.add_hole(d.next_seq, t.seq);
                d.payload += u64::from(len);
                d.next_seq = t.seq.wrapping_add(len);
                chunk = Some(Chunk {
                    start: 0,
                    end: captured,
                    gap: true,
                    cut: len.saturating_sub(captured as u32),
                });
            } else {
                let behind = rel.unsigned_abs();
                // Bytes landing in a hole arrived late, not twice.
                let late_end = if behind >= len {
                    t.seq.wrapping_add(len)
                } else {
                    d.next_seq
                };
                let late = d.fill_holes(t.seq, late_end);
                d.missing = d.missing.saturating_sub(u64::from(late));
                d.payload += u64::from(late);
                if behind >= len {
                    d.retransmitted += u64::from(len - late);
                } else {
                    let fresh = len - behind;
                    d.retransmitted += u64::from(behind - late);
                    d.payload += u64::from(fresh);
                    d.next_seq = d.next_seq.wrapping_add(fresh);
                    let start = (behind as usize).min(captured);
                    chunk = Some(Chunk {
                        start,
                        end: captured,
                        gap: false,
                        cut: len.saturating_sub(captured as u32),
                    });
                }
            }
        }
        if let Some(c) = chunk.as_mut() {
            // A tail the snap length cut off is a hole before whatever comes next.
            c.gap |= d.cut_pending;
            d.cut_pending = c.cut > 0;
        }
        if t.has(TcpMeta::FIN) {
            if !d.fin {
                d.next_seq = d.next_seq.wrapping_add(1);
            }
            d.fin = true;
        }
        chunk.filter(|c| c.end > c.start)
    }

    fn tcp_state(&mut self, dir: Direction, t: TcpMeta) {
        use TcpState::*;
        if t.has(TcpMeta::RST) {
            self.tcp = Reset;
            return;
        }
        let both_fin = self.dirs[0].fin && self.dirs[1].fin;
        self.tcp = match self.tcp {
            _ if both_fin => Closed,
            Reset | Closed => self.tcp,
            _ if self.dirs.iter().any(|d| d.fin) => Closing,
            None if t.has(TcpMeta::SYN | TcpMeta::ACK) => SynReceived,
            None if t.has(TcpMeta::SYN) => SynSent,
            // Picked up midstream: treat as established once anything but a SYN shows.
            None => Established,
            SynSent if t.has(TcpMeta::SYN | TcpMeta::ACK) && dir == Direction::ToClient => {
                SynReceived
            }
            SynSent | SynReceived
                if self.dirs.iter().all(|d| d.pkts > 0) && !t.has(TcpMeta::SYN) =>
            {
                Established
            }
            s => s,
        };
    }

    /// Idle timeout for the flow's current state.
    fn timeout(&self, l: &FlowLimits) -> u64 {
        match self.key.proto {
            6 => match self.tcp {
                TcpState::SynSent | TcpState::SynReceived => l.tcp_new,
                TcpState::Closed | TcpState::Reset => l.tcp_closed,
                _ => l.tcp_established,
            },
            17 => {
                if self.dirs.iter().all(|d| d.pkts > 0) {
                    l.udp_established
                } else {
                    l.udp_new
                }
            }
            1 | 58 => l.icmp,
            _ => l.other,
        }
    }

    /// How willingly the flow is given up when the table is full (lower goes first):
    /// 0 finished TCP; 1 seen in one direction only (unanswered SYNs and requests, scans,
    /// fragment sprays: what floods are made of); 2 a conversation both ways. Without the
    /// middle class a flood newer than a quiet FTP control channel pushes that channel out,
    /// and its session breaks into pieces.
    fn eviction_class(&self) -> u8 {
        if matches!(self.tcp, TcpState::Closed | TcpState::Reset) {
            0
        } else if self.dirs.iter().any(|d| d.pkts == 0) {
            1
        } else {
            2
        }
    }

    fn end_reason_when_idle(&self) -> EndReason {
        match self.tcp {
            TcpState::Closed => EndReason::Fin,
            TcpState::Reset => EndReason::Rst,
            _ => EndReason::Timeout,
        }
    }
}

/// The index hash of the flow in `slot` (for rehashing when the index grows; an empty
/// slot never sits in the index).
fn slot_hash<A>(slots: &[Option<Flow<A>>], hasher: &DefaultHashBuilder, slot: u32) -> u64 {
    slots
        .get(slot as usize)
        .and_then(Option::as_ref)
        .map_or(0, |f| hasher.hash_one(f.key))
}

/// Picks the client endpoint for a new flow from its first packet.
///
/// A SYN's sender is the client and a SYN-ACK's receiver is. Otherwise (midstream, UDP)
/// the first packet's sender is the client, unless it sends from a system port (< 1024)
/// to a non-system one, which is the classic reply shape.
fn choose_client(src_index: usize, pkt: &Packet<'_>) -> usize {
    let other = 1 - src_index.min(1);
    if let Some(t) = pkt.tcp
        && t.has(TcpMeta::SYN)
    {
        return if t.has(TcpMeta::ACK) {
            other
        } else {
            src_index
        };
    }
    if matches!(pkt.proto, 1 | 58) {
        return src_index;
    }
    if pkt.sport < 1024 && pkt.dport >= 1024 {
        other
    } else {
        src_index
    }
}

/// Flow-table counters (`stats.flow.*`).
#[derive(Debug, Clone, Default, Serialize)]
pub struct FlowStats {
    /// Flows created.
    pub created: u64,
    /// Flows currently tracked.
    pub active: u64,
    /// Highest number tracked at once.
    pub max_active: u64,
    /// Ended after FIN/FIN.
    pub ended_fin: u64,
    /// Ended after RST.
    pub ended_rst: u64,
    /// Ended by idle timeout.
    pub ended_timeout: u64,
    /// Evicted to stay under `max_flows`.
    pub evicted: u64,
    /// Ended because the 5-tuple was reused by a new SYN.
    pub ended_reused: u64,
    /// Ended at end of input or shutdown.
    pub ended_at_exit: u64,
    /// TCP payload bytes seen more than once.
    pub tcp_retransmitted_bytes: u64,
    /// TCP payload bytes missing from holes.
    pub tcp_missing_bytes: u64,
}

/// Where a packet landed in the table.
#[derive(Debug, Clone, Copy)]
pub struct Hit {
    /// Slot of the flow; valid until the next call that may end flows.
    pub slot: u32,
    /// Packet direction within the flow.
    pub dir: Direction,
    /// The packet created the flow.
    pub new: bool,
}

/// The flow table: a slab of flows plus a hash index, swept by a clock hand.
///
/// The index holds slot numbers only (4 bytes a bucket) and compares keys in the slab:
/// keeping a copy of each 44-byte key in the index cost ~100 bytes per flow at 1 M flows
/// (the index doubles past 7/8 full), and twice that while it grew.
pub struct FlowTable<A> {
    index: HashTable<u32>,
    hasher: DefaultHashBuilder,
    slots: Vec<Option<Flow<A>>>,
    free: Vec<u32>,
    hand: usize,
    /// Next slot [`FlowTable::drain_some`] looks at.
    drain_at: usize,
    limits: FlowLimits,
    last_sweep: Ts,
    /// Counters.
    pub stats: FlowStats,
}

/// How many slots the eviction search samples from the clock hand.
const EVICT_SAMPLE: usize = 16;

impl<A: Default> FlowTable<A> {
    /// An empty table with the given limits.
    pub fn new(limits: FlowLimits) -> FlowTable<A> {
        let cap = limits.max_flows.clamp(1, 1 << 16);
        FlowTable {
            index: HashTable::with_capacity(cap),
            hasher: DefaultHashBuilder::default(),
            slots: Vec::with_capacity(cap),
            free: Vec::new(),
            hand: 0,
            drain_at: 0,
            limits,
            last_sweep: Ts(0),
            stats: FlowStats::default(),
        }
    }

    /// Replaces the limits (config reload). Timeouts apply to the next sweep; a smaller
    /// `max_flows` bounds new flows only, so a fuller table shrinks as its flows end.
    pub fn set_limits(&mut self, limits: FlowLimits) {
        self.limits = limits;
    }

    /// Number of flows tracked.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// True when no flow is tracked.
    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// The flow in `slot`.
    pub fn get(&self, slot: u32) -> Option<&Flow<A>> {
        self.slots.get(slot as usize).and_then(Option::as_ref)
    }

    /// The flow in `slot`, mutably.
    pub fn get_mut(&mut self, slot: u32) -> Option<&mut Flow<A>> {
        self.slots.get_mut(slot as usize).and_then(Option::as_mut)
    }

    /// Finds or creates the flow for `pkt`. Flows that must end first (a reused 5-tuple, an
    /// eviction to make room) are pushed onto `ended`.
    pub fn lookup(
        &mut self,
        pkt: &Packet<'_>,
        ts: Ts,
        pcap_cnt: u64,
        ended: &mut Vec<(Flow<A>, EndReason)>,
    ) -> Hit {
        let (key, src_index) = FlowKey::of(pkt);
        let hash = self.hasher.hash_one(key);
        if let Some(slot) = self.find(hash, &key)
            && self.idle_at(slot, ts)
        {
            // Idle past its timeout: that flow ended, whether or not the sweep got to it
            // yet, so how far the sweep has come never changes which flows exist.
            self.end_idle(slot, ended);
        }
        if let Some(slot) = self.find(hash, &key) {
            let reuse = match (self.get(slot), pkt.tcp) {
                (Some(f), Some(t)) => {
                    t.has(TcpMeta::SYN)
                        && !t.has(TcpMeta::ACK)
                        && matches!(f.tcp, TcpState::Closed | TcpState::Reset)
                }
                _ => false,
            };
            if !reuse {
                if let Some(f) = self.get(slot) {
                    return Hit {
                        slot,
                        dir: f.direction_of(src_index),
                        new: false,
                    };
                }
            } else if let Some(old) = self.remove(slot) {
                self.stats.ended_reused += 1;
                ended.push((old, EndReason::Reused));
            }
        }
        if self.index.len() >= self.limits.max_flows.max(1)
            && let Some(victim) = self.pick_victim()
            && let Some(old) = self.remove(victim)
        {
            self.stats.evicted += 1;
            ended.push((old, EndReason::Evicted));
        }
        let flow = Flow::<A>::new(key, src_index, pkt, ts, pcap_cnt);
        let dir = flow.direction_of(src_index);
        let slot = match self.free.pop() {
            Some(s) => {
                if let Some(cell) = self.slots.get_mut(s as usize) {
                    *cell = Some(flow);
                }
                s
            }
            None => {
                self.slots.push(Some(flow));
                u32::try_from(self.slots.len() - 1).unwrap_or(u32::MAX)
            }
        };
        let (slots, hasher) = (&self.slots, &self.hasher);
        self.index
            .insert_unique(hash, slot, |&s| slot_hash(slots, hasher, s));
        self.stats.created += 1;
        self.stats.active = self.index.len() as u64;
        self.stats.max_active = self.stats.max_active.max(self.stats.active);
        Hit {
            slot,
            dir,
            new: true,
        }
    }

    /// Chooses a flow to evict: among a sample at the clock hand, the one with the lowest
    /// [`Flow::eviction_class`], then the least recently seen.
    fn pick_victim(&mut self) -> Option<u32> {
        let n = self.slots.len();
        if n == 0 {
            return None;
        }
        let mut best: Option<(u32, (u8, Ts))> = None;
        let mut looked = 0;
        let mut i = self.hand % n;
        let mut steps = 0;
        while looked < EVICT_SAMPLE && steps < n {
            if let Some(Some(f)) = self.slots.get(i) {
                let rank = (f.eviction_class(), f.last);
                if best.is_none_or(|(_, r)| rank < r) {
                    best = Some((i as u32, rank));
                }
                looked += 1;
            }
            i = (i + 1) % n;
            steps += 1;
        }
        self.hand = i;
        best.map(|(s, _)| s)
    }

    /// The slot of the flow with `key` (whose hash is `hash`).
    fn find(&self, hash: u64, key: &FlowKey) -> Option<u32> {
        let slots = &self.slots;
        self.index
            .find(hash, |&s| {
                slots
                    .get(s as usize)
                    .and_then(Option::as_ref)
                    .is_some_and(|f| f.key == *key)
            })
            .copied()
    }

    fn remove(&mut self, slot: u32) -> Option<Flow<A>> {
        let flow = self.slots.get_mut(slot as usize)?.take()?;
        let hash = self.hasher.hash_one(flow.key);
        if let Ok(entry) = self.index.find_entry(hash, |&s| s == slot) {
            entry.remove();
        }
        self.free.push(slot);
        self.stats.active = self.index.len() as u64;
        let (d0, d1) = (&flow.dirs[0], &flow.dirs[1]);
        self.stats.tcp_retransmitted_bytes += d0.retransmitted + d1.retransmitted;
        self.stats.tcp_missing_bytes += d0.missing + d1.missing;
        Some(flow)
    }

    /// Ends flows idle past their timeout. Cheap to call per packet: it works at most once
    /// per packet-time second and then scans a bounded share of the slab.
    pub fn sweep(&mut self, now: Ts, ended: &mut Vec<(Flow<A>, EndReason)>) {
        if now.since(self.last_sweep) < Ts::NANOS_PER_SEC {
            return;
        }
        let elapsed_secs = (now.since(self.last_sweep) / Ts::NANOS_PER_SEC).max(1);
        self.last_sweep = now;
        let n = self.slots.len();
        if n == 0 {
            return;
        }
        // Cover the whole slab at least every 8 packet-seconds.
        let budget = (n / 8 + 1).saturating_mul(elapsed_secs as usize).min(n);
        let mut i = self.hand % n;
        for _ in 0..budget {
            let expired = match self.slots.get(i) {
                Some(Some(f)) => {
                    now.since(f.last) >= f.timeout(&self.limits).saturating_mul(Ts::NANOS_PER_SEC)
                }
                _ => false,
            };
            if expired {
                self.end_idle(i as u32, ended);
            }
            i = (i + 1) % n;
        }
        self.hand = i;
    }

    /// When `flow` (just removed from the table) ended, in packet time: its idle deadline
    /// if that passed before `now`, else `now`. It does not depend on when the sweep found
    /// the flow, so every worker layout gives the same answer.
    pub fn ended_at(&self, flow: &Flow<A>, now: Ts) -> Ts {
        now.min(flow.last.plus_secs(flow.timeout(&self.limits)))
    }

    /// True when the flow in `slot` has been idle past its timeout at `now`.
    fn idle_at(&self, slot: u32, now: Ts) -> bool {
        self.get(slot).is_some_and(|f| {
            now.since(f.last) >= f.timeout(&self.limits).saturating_mul(Ts::NANOS_PER_SEC)
        })
    }

    /// Ends the idle flow in `slot` with the reason its state gives (fin, rst or timeout).
    fn end_idle(&mut self, slot: u32, ended: &mut Vec<(Flow<A>, EndReason)>) {
        if let Some(f) = self.remove(slot) {
            let reason = f.end_reason_when_idle();
            match reason {
                EndReason::Fin => self.stats.ended_fin += 1,
                EndReason::Rst => self.stats.ended_rst += 1,
                _ => self.stats.ended_timeout += 1,
            }
            ended.push((f, reason));
        }
    }

    /// Ends every flow (end of input or shutdown), in slot order so output is deterministic.
    /// A flow already idle past its timeout at `now` ends by that timeout, as it would
    /// have once the sweep reached it: the sweep's progress never decides a reason.
    pub fn drain(&mut self, reason: EndReason, now: Ts, ended: &mut Vec<(Flow<A>, EndReason)>) {
        while self.drain_some(reason, now, ended, usize::MAX) {}
    }

    /// Ends up to `max` flows for [`drain`](Self::drain), in slot order, resuming where the
    /// previous call stopped; `false` once the table is empty. Handing the ended flows on
    /// between calls keeps a full table from being copied into `ended` all at once (a
    /// second copy of every flow at exit). No lookups may come between the calls.
    pub fn drain_some(
        &mut self,
        reason: EndReason,
        now: Ts,
        ended: &mut Vec<(Flow<A>, EndReason)>,
        max: usize,
    ) -> bool {
        let mut taken = 0;
        while taken < max && self.drain_at < self.slots.len() {
            let slot = self.drain_at as u32;
            if self.idle_at(slot, now) {
                self.end_idle(slot, ended);
                taken += 1;
            } else if let Some(f) = self.remove(slot) {
                self.stats.ended_at_exit += 1;
                ended.push((f, reason));
                taken += 1;
            }
            self.drain_at += 1;
        }
        if self.drain_at < self.slots.len() {
            return true;
        }
        self.slots.clear();
        self.free.clear();
        self.index.clear();
        self.hand = 0;
        self.drain_at = 0;
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::{Decoder, linktype};
    use etherparse::PacketBuilder;

    struct Conv {
        dec: Decoder,
        table: FlowTable<()>,
        ended: Vec<(Flow<()>, EndReason)>,
        cnt: u64,
    }

    impl Conv {
        fn new(limits: FlowLimits) -> Conv {
            Conv {
                dec: Decoder::new(8),
                table: FlowTable::new(limits),
                ended: Vec::new(),
                cnt: 0,
            }
        }

        /// Feeds one TCP segment; returns (slot, direction, new chunk bytes).
        #[allow(clippy::too_many_arguments)]
        fn tcp(
            &mut self,
            ts: u64,
            from_client: bool,
            sport: u16,
            dport: u16,
            seq: u32,
            flags: u8,
            payload: &[u8],
        ) -> (u32, Direction, Vec<u8>) {
            let (src, dst) = if from_client {
                ([10, 0, 0, 1], [203, 0, 113, 9])
            } else {
                ([203, 0, 113, 9], [10, 0, 0, 1])
            };
            let mut b = PacketBuilder::ethernet2([1; 6], [2; 6])
                .ipv4(src, dst, 64)
                .tcp(sport, dport, seq, 1000);
            if flags & TcpMeta::SYN != 0 {
                b = b.syn();
            }
            if flags & TcpMeta::ACK != 0 {
                b = b.ack(1);
            }
            if flags & TcpMeta::FIN != 0 {
                b = b.fin();
            }
            if flags & TcpMeta::RST != 0 {
                b = b.rst();
            }
            let mut f = Vec::new();
            b.write(&mut f, payload).unwrap();
            self.cnt += 1;
            let t = Ts::from_secs(ts);
            let p = self
                .dec
                .decode(linktype::ETHERNET, &f, f.len() as u32, t)
                .unwrap();
            self.table.sweep(t, &mut self.ended);
            let hit = self.table.lookup(&p, t, self.cnt, &mut self.ended);
            let flow = self.table.get_mut(hit.slot).unwrap();
            let chunk = flow.update(hit.dir, &p, t, self.cnt);
            let bytes = chunk
                .map(|c| p.payload[c.start..c.end].to_vec())
                .unwrap_or_default();
            (hit.slot, hit.dir, bytes)
        }
    }

    const S: u8 = TcpMeta::SYN;
    const A: u8 = TcpMeta::ACK;
    const F: u8 = TcpMeta::FIN;

    /// Client-only capture: the server's bytes are estimated from the client's ACKs, across
    /// the 32-bit wrap, and a reordered older ACK changes nothing.
    #[test]
    fn one_sided_flow_estimates_the_unseen_direction_from_acks() {
        let mut dec = Decoder::new(8);
        let mut table: FlowTable<()> = FlowTable::new(FlowLimits::default());
        let mut ended = Vec::new();
        let isn_server = u32::MAX - 99;
        let mut slot = 0;
        // (client seq, ack, payload)
        let segs: [(u32, Option<u32>, &[u8]); 5] = [
            (999, None, b""),                              // SYN
            (1000, Some(isn_server.wrapping_add(1)), b""), // handshake ACK
            (1000, Some(isn_server.wrapping_add(1)), b"RETR big\r\n"),
            (1010, Some(isn_server.wrapping_add(5001)), b""), // 5000 bytes received
            (1010, Some(isn_server.wrapping_add(3001)), b""), // reordered, older
        ];
        for (i, (seq, ack, payload)) in segs.iter().enumerate() {
            let mut b = PacketBuilder::ethernet2([1; 6], [2; 6])
                .ipv4([10, 0, 0, 1], [203, 0, 113, 9], 64)
                .tcp(40000, 21, *seq, 1000);
            b = match ack {
                Some(a) => b.ack(*a),
                None => b.syn(),
            };
            let mut f = Vec::new();
            b.write(&mut f, payload).unwrap();
            let t = Ts::from_secs(100 + i as u64);
            let p = dec
                .decode(linktype::ETHERNET, &f, f.len() as u32, t)
                .unwrap();
            let hit = table.lookup(&p, t, i as u64 + 1, &mut ended);
            slot = hit.slot;
            table
                .get_mut(slot)
                .unwrap()
                .update(hit.dir, &p, t, i as u64 + 1);
        }
        let flow = table.get(slot).unwrap();
        assert!(flow.one_sided());
        assert_eq!(flow.dirs[0].payload, 10);
        assert_eq!(
            flow.estimated_unseen_payload(),
            Some((Direction::ToClient, 5000))
        );
    }

    #[test]
    fn two_sided_flow_has_no_estimate() {
        let mut c = Conv::new(FlowLimits::default());
        let (slot, _, _) = c.tcp(100, true, 40000, 21, 999, S, b"");
        c.tcp(100, false, 21, 40000, 4999, S | A, b"");
        let f = c.table.get(slot).unwrap();
        assert!(!f.one_sided());
        assert_eq!(f.estimated_unseen_payload(), None);
    }

    #[test]
    fn handshake_data_retransmission_and_fin() {
        let mut c = Conv::new(FlowLimits::default());
        let (slot, d, _) = c.tcp(100, true, 40000, 21, 999, S, b"");
        assert_eq!(d, Direction::ToServer);
        c.tcp(100, false, 21, 40000, 4999, S | A, b"");
        c.tcp(100, true, 40000, 21, 1000, A, b"");
        let (_, d, got) = c.tcp(101, false, 21, 40000, 5000, A, b"220 hi\r\n");
        assert_eq!(
            (d, got.as_slice()),
            (Direction::ToClient, &b"220 hi\r\n"[..])
        );
        let (_, _, got) = c.tcp(101, true, 40000, 21, 1000, A, b"USER a\r\n");
        assert_eq!(got, b"USER a\r\n");
        // Full retransmission: counted once, nothing handed up.
        let (_, _, got) = c.tcp(102, true, 40000, 21, 1000, A, b"USER a\r\n");
        assert!(got.is_empty());
        // Overlapping retransmission with 4 new bytes.
        let (_, _, got) = c.tcp(102, true, 40000, 21, 1005, A, b"a\r\nPASS");
        assert_eq!(got, b"PASS");
        let f = c.table.get(slot).unwrap();
        assert_eq!(f.dirs[0].payload, 12);
        assert_eq!(f.dirs[0].retransmitted, 8 + 3);
        assert_eq!(f.dirs[1].payload, 8);
        assert_eq!(f.tcp, TcpState::Established);
        c.tcp(103, true, 40000, 21, 1012, F | A, b"");
        c.tcp(103, false, 21, 40000, 5008, F | A, b"");
        assert_eq!(c.table.get(slot).unwrap().tcp, TcpState::Closed);
        // Closed timeout (10 s) ends it with reason fin.
        c.table.sweep(Ts::from_secs(200), &mut c.ended);
        assert_eq!(c.ended.len(), 1);
        assert_eq!(c.ended[0].1, EndReason::Fin);
        assert!(c.table.is_empty());
    }

    #[test]
    fn hole_is_counted_as_missing() {
        let mut c = Conv::new(FlowLimits::default());
        let (slot, _, _) = c.tcp(1, true, 40000, 80, 100, A, b"abcd");
        c.tcp(1, true, 40000, 80, 110, A, b"efgh");
        let f = c.table.get(slot).unwrap();
        assert_eq!((f.dirs[0].payload, f.dirs[0].missing), (8, 6));
    }

    #[test]
    fn snaplen_cut_marks_the_tail_and_the_next_chunk() {
        let mut dec = Decoder::new(8);
        let mut table = FlowTable::<()>::new(FlowLimits::default());
        let mut ended = Vec::new();
        let mut chunks = Vec::new();
        for (seq, cut_to) in [(100u32, Some(14 + 20 + 20 + 10)), (200, None)] {
            let b = PacketBuilder::ethernet2([1; 6], [2; 6])
                .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
                .tcp(40000, 445, seq, 1000)
                .ack(1);
            let mut f = Vec::new();
            b.write(&mut f, &[7u8; 100]).unwrap();
            let wire = f.len() as u32;
            let cap = &f[..cut_to.unwrap_or(f.len())];
            let p = dec.decode(linktype::ETHERNET, cap, wire, Ts(0)).unwrap();
            let hit = table.lookup(&p, Ts(0), 1, &mut ended);
            chunks.push(
                table
                    .get_mut(hit.slot)
                    .unwrap()
                    .update(hit.dir, &p, Ts(0), 1)
                    .unwrap(),
            );
        }
        assert_eq!(
            (chunks[0].end, chunks[0].cut, chunks[0].gap),
            (10, 90, false)
        );
        assert_eq!(
            (chunks[1].end, chunks[1].cut, chunks[1].gap),
            (100, 0, true)
        );
    }

    #[test]
    fn reordered_segment_fills_its_hole() {
        let mut c = Conv::new(FlowLimits::default());
        let (slot, _, _) = c.tcp(1, true, 40000, 80, 100, A, b"abcd");
        c.tcp(1, true, 40000, 80, 108, A, b"ijkl");
        c.tcp(1, true, 40000, 80, 104, A, b"efgh");
        // A true retransmission afterwards still counts as one.
        c.tcp(1, true, 40000, 80, 104, A, b"efgh");
        let f = c.table.get(slot).unwrap();
        assert_eq!(
            (
                f.dirs[0].payload,
                f.dirs[0].missing,
                f.dirs[0].retransmitted
            ),
            (12, 0, 4)
        );
    }

    #[test]
    fn midstream_reply_from_system_port_makes_it_the_server() {
        let mut c = Conv::new(FlowLimits::default());
        let (slot, d, _) = c.tcp(1, false, 445, 51000, 100, A, b"\0\0\0\x04abcd");
        assert_eq!(d, Direction::ToClient);
        let f = c.table.get(slot).unwrap();
        assert_eq!(f.server_endpoint().1, 445);
    }

    #[test]
    fn max_flows_evicts_and_counts() {
        let limits = FlowLimits {
            max_flows: 4,
            ..FlowLimits::default()
        };
        let mut c = Conv::new(limits);
        for p in 0..10u16 {
            c.tcp(1 + u64::from(p), true, 40000 + p, 80, 1, S, b"");
        }
        assert_eq!(c.table.len(), 4);
        assert_eq!(c.table.stats.evicted, 6);
        assert_eq!(c.ended.len(), 6);
        // The oldest went first.
        assert_eq!(c.ended[0].0.client_endpoint().1, 40000);
    }

    /// A flood of unanswered SYNs newer than a quiet, answered connection pushes out
    /// other flood flows, never the connection.
    #[test]
    fn eviction_spares_conversations_under_a_syn_flood() {
        let limits = FlowLimits {
            max_flows: 64,
            ..FlowLimits::default()
        };
        let mut c = Conv::new(limits);
        let (ctrl, _, _) = c.tcp(1, true, 40000, 21, 999, S, b"");
        c.tcp(1, false, 21, 40000, 4999, S | A, b"");
        c.tcp(1, true, 40000, 21, 1000, A, b"USER x\r\n");
        for p in 0..5000u16 {
            c.tcp(2, true, 1024 + p, 80, 1, S, b"");
        }
        assert_eq!(c.table.len(), 64);
        assert_eq!(c.table.stats.evicted, 5000 + 1 - 64);
        assert!(
            c.ended.iter().all(|(f, _)| f.key.port.contains(&80)),
            "only flood flows were evicted"
        );
        let f = c.table.get(ctrl).unwrap();
        assert_eq!(f.server_endpoint().1, 21);
        assert_eq!(f.eviction_class(), 2, "answered both ways");
    }

    /// The index keeps finding every flow across its growth (it rehashes from the slab),
    /// including after removals; `drain_some` ends every flow once, in slot order.
    #[test]
    fn index_survives_growth_and_drain_goes_in_batches() {
        let mut c = Conv::new(FlowLimits {
            max_flows: 4,
            ..FlowLimits::default()
        });
        c.table.set_limits(FlowLimits::default());
        let mut slots = Vec::new();
        for p in 0..3000u16 {
            slots.push(c.tcp(1, true, 10_000 + p, 80, 1, S, b"").0);
        }
        // Reset a third; 18 s later the sweep has removed those (closed timeout 10 s) and
        // kept the rest (handshake timeout 30 s).
        for p in (0..3000u16).step_by(3) {
            c.tcp(2, false, 80, 10_000 + p, 9, TcpMeta::RST, b"");
        }
        c.tcp(20, true, 9, 9, 1, S, b"");
        assert_eq!(c.table.stats.ended_rst, 1000);
        for (p, &slot) in (0..3000u16).zip(&slots) {
            if p % 3 == 0 {
                continue;
            }
            let (again, dir, _) = c.tcp(20, false, 80, 10_000 + p, 9, A, b"");
            assert_eq!((again, dir), (slot, Direction::ToClient), "port {p}");
        }
        assert_eq!(c.table.len(), 2001);
        assert_eq!(c.table.stats.created, 3001);
        let mut ended = Vec::new();
        let mut calls = 0;
        while c
            .table
            .drain_some(EndReason::EndOfInput, Ts(0), &mut ended, 1000)
        {
            calls += 1;
            assert!(ended.len() <= 1000 * calls);
        }
        assert_eq!(ended.len(), 2001);
        assert!(c.table.is_empty());
        let mut by_slot: Vec<(u32, u16)> = Vec::new();
        for (f, _) in &ended {
            let port = f.client_endpoint().1;
            if let Some(i) = (0..3000u16).position(|p| 10_000 + p == port) {
                by_slot.push((slots[i], port));
            }
        }
        assert!(by_slot.windows(2).all(|w| w[0].0 < w[1].0), "slot order");
        // The emptied table is usable again.
        let (_, _, _) = c.tcp(4, true, 9, 80, 1, S, b"");
        assert_eq!(c.table.len(), 1);
    }

    #[test]
    fn syn_after_close_starts_a_new_flow() {
        let mut c = Conv::new(FlowLimits::default());
        c.tcp(1, true, 40000, 80, 1, S, b"");
        c.tcp(1, true, 40000, 80, 2, TcpMeta::RST, b"");
        c.tcp(2, true, 40000, 80, 500, S, b"");
        assert_eq!(c.ended.len(), 1);
        assert_eq!(c.ended[0].1, EndReason::Reused);
        assert_eq!(c.table.len(), 1);
    }

    /// Regression: whether a flow idle past its timeout was split or continued used to
    /// depend on how far the bounded sweep had come (so one worker and several workers
    /// disagreed on a DHCPv6 flow of the corpus). Lookup and drain now decide by time alone.
    #[test]
    fn an_idle_flow_ends_at_its_next_packet_or_at_drain_without_a_sweep() {
        let mut c = Conv::new(FlowLimits::default());
        let (first, _, _) = c.tcp(1, true, 40000, 80, 1, S, b"");
        let mut f = Vec::new();
        PacketBuilder::ethernet2([1; 6], [2; 6])
            .ipv4([10, 0, 0, 1], [203, 0, 113, 9], 64)
            .tcp(40000, 80, 1, 1000)
            .syn()
            .write(&mut f, b"")
            .unwrap();
        let late = Ts::from_secs(1000);
        let p = c
            .dec
            .decode(linktype::ETHERNET, &f, f.len() as u32, late)
            .unwrap();
        // No sweep call: lookup alone must see that the old flow timed out.
        let hit = c.table.lookup(&p, late, 2, &mut c.ended);
        assert!(hit.new);
        assert_eq!(c.ended.len(), 1);
        assert_eq!(c.ended[0].1, EndReason::Timeout);
        assert_eq!(c.table.stats.ended_timeout, 1);
        let _ = first;
        let mut rest = Vec::new();
        c.table
            .drain(EndReason::EndOfInput, Ts::from_secs(5000), &mut rest);
        assert_eq!(rest.len(), 1);
        assert_eq!(rest[0].1, EndReason::Timeout);
        assert_eq!(c.table.stats.ended_at_exit, 0);
    }

    #[test]
    fn idle_flows_time_out_on_packet_time() {
        let mut c = Conv::new(FlowLimits::default());
        c.tcp(1, true, 40000, 80, 1, S, b"");
        c.tcp(20, true, 40001, 80, 1, S, b"");
        assert!(c.ended.is_empty());
        c.table.sweep(Ts::from_secs(40), &mut c.ended);
        c.table.sweep(Ts::from_secs(41), &mut c.ended);
        assert_eq!(c.ended.len(), 1);
        assert_eq!(c.ended[0].1, EndReason::Timeout);
        let mut rest = Vec::new();
        c.table.drain(EndReason::EndOfInput, Ts(0), &mut rest);
        assert_eq!(rest.len(), 1);
        assert_eq!(c.table.stats.ended_at_exit, 1);
    }
}
