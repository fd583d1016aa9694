//! Flow stage: the bounded flow table, per-direction byte accounting and TCP state, all on
//! packet time.
//!
//! Invariants:
//! * the table never holds more than `max_flows` flows; making room evicts one (counted);
//! * TCP payload is counted from sequence space: a retransmitted byte counts once, a hole
//!   is counted as missing, and [`Flow::update`] hands the app layer only new bytes;
//! * nothing here reads the wall clock.

pub mod key;
pub mod reorder;

use std::hash::BuildHasher;

use hashbrown::{DefaultHashBuilder, HashTable};
use serde::Serialize;

use crate::decode::{Fragment, Packet, TcpMeta};
use crate::direction::Direction;
use crate::time::Ts;
pub use key::FlowKey;
pub use reorder::{ReadyChunk, ReorderBuf, ReorderPool, ReorderStats};

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
    /// Bytes a TCP direction may hold while it waits for a hole to fill (0 = no reordering).
    pub reorder_bytes: usize,
    /// All reorder buffers together, at most.
    pub reorder_memory: usize,
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
            reorder_bytes: 256 << 10,
            reorder_memory: 32 << 20,
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

    /// Takes the `len` bytes at `next_seq`, of which `held` were counted while they waited
    /// in the reorder buffer, from a packet that captured `captured` of them.
    fn take_in_order(&mut self, len: u32, held: u32, captured: usize) -> Chunk {
        self.payload += u64::from(len - held);
        self.retransmitted += u64::from(held);
        self.next_seq = self.next_seq.wrapping_add(len);
        Chunk {
            start: 0,
            end: captured,
            gap: false,
            cut: len.saturating_sub(captured as u32),
        }
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
    /// Reorder buffers by [`Direction::index`], borrowed from the table's pool while a
    /// direction has bytes waiting for a hole to fill.
    pub reorder: [Option<Box<ReorderBuf>>; 2],
    /// Application-layer state owned by the engine.
    pub app: A,
}

/// What [`Flow::update`] hands the application layer, in this order: the first `before`
/// released pieces of the packet's direction ([`Flow::take_ready`]), then `chunk` (the
/// packet's own new bytes), then the rest of the released pieces. Pieces the packet
/// released in the *other* direction (it acknowledged past their hole) come first of all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Update {
    /// The packet's own new in-order bytes.
    pub chunk: Option<Chunk>,
    /// Released pieces of this direction that precede `chunk`.
    pub before: usize,
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
            reorder: [None, None],
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
        self.reorder.swap(0, 1);
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

    /// Accounts one packet and says which new in-order bytes the app layer gets (see
    /// [`Update`]). TCP segments that arrive ahead of a hole may wait in a reorder buffer
    /// taken from `pool`.
    pub fn update(
        &mut self,
        dir: Direction,
        pkt: &Packet<'_>,
        ts: Ts,
        pcap_cnt: u64,
        pool: &mut ReorderPool,
    ) -> Update {
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
                self.give_up_stale(dir, t, ts, pool);
                let up = self.tcp_update(dir, t, pkt, ts, pcap_cnt, pool);
                self.tcp_state(dir, t);
                up
            }
            _ => {
                let d = self.dir_mut(dir);
                d.payload += u64::from(pkt.payload_len);
                if pkt.fragment == Fragment::Continuation || pkt.payload.is_empty() {
                    Update::default()
                } else {
                    // Each datagram stands alone: a cut one loses only its own tail.
                    Update {
                        chunk: Some(Chunk {
                            start: 0,
                            end: pkt.payload.len(),
                            gap: false,
                            cut: pkt.payload_len.saturating_sub(pkt.payload.len() as u32),
                        }),
                        before: 0,
                    }
                }
            }
        }
    }

    /// Gives up the holes the held bytes wait on when waiting no longer makes sense: the
    /// peer acknowledged past a hole (the sensor missed bytes the receiver got), or the
    /// oldest held piece has waited [`reorder::WAIT`].
    #[inline]
    fn give_up_stale(&mut self, dir: Direction, t: TcpMeta, ts: Ts, pool: &mut ReorderPool) {
        if !self.reordering() {
            return;
        }
        for d in [dir.reverse(), dir] {
            let i = d.index();
            let (Some(dc), Some(Some(buf))) = (self.dirs.get_mut(i), self.reorder.get_mut(i))
            else {
                continue;
            };
            let Some(first) = buf.first_seq() else {
                continue;
            };
            let acked_past =
                d != dir && t.has(TcpMeta::ACK) && t.ack.wrapping_sub(first) as i32 > 0;
            if acked_past || ts.since(buf.since()) > reorder::WAIT {
                release(dc, buf, true, &mut pool.stats);
            }
        }
    }

    fn tcp_update(
        &mut self,
        dir: Direction,
        t: TcpMeta,
        pkt: &Packet<'_>,
        ts: Ts,
        pcap_cnt: u64,
        pool: &mut ReorderPool,
    ) -> Update {
        let i = dir.index();
        let (Some(d), Some(slot)) = (self.dirs.get_mut(i), self.reorder.get_mut(i)) else {
            return Update::default();
        };
        let len = pkt.payload_len;
        if t.has(TcpMeta::SYN) {
            d.syn = true;
            d.next_seq = t.seq.wrapping_add(1);
            d.seq_known = true;
            // Data on a SYN (TFO) is rare; it is counted but not handed up.
            d.payload += u64::from(len);
            return Update::default();
        }
        if !d.seq_known {
            d.next_seq = t.seq;
            d.seq_known = true;
        }
        // Pieces released by a time-out before this packet come before its bytes.
        let mut before = slot.as_deref().map_or(0, ReorderBuf::ready_len);
        let mut chunk = None;
        if len > 0 && slot.is_none() && t.seq == d.next_seq {
            // In order with nothing held: the common case, without the reorder machinery.
            chunk = Some(d.take_in_order(len, 0, pkt.payload.len()));
        } else if len > 0 {
            let seg = Segment {
                seq: t.seq,
                len,
                payload: pkt.payload,
                pcap_cnt,
                ts,
            };
            chunk = place(d, slot, pool, &seg, &mut before);
        }
        if let Some(c) = chunk.as_mut() {
            // A tail the snap length cut off is a hole before whatever comes next.
            c.gap |= d.cut_pending;
            d.cut_pending = c.cut > 0;
        }
        if let Some(buf) = slot.as_deref_mut()
            && buf.holding()
        {
            release(d, buf, false, &mut pool.stats);
        }
        if t.has(TcpMeta::FIN) {
            let fin_at = t.seq.wrapping_add(len);
            match slot.as_deref_mut() {
                // The FIN came ahead of a hole: it counts once the bytes before it are in.
                Some(buf) if buf.holding() && fin_at.wrapping_sub(d.next_seq) as i32 > 0 => {
                    buf.set_fin_at(fin_at);
                }
                _ if !d.fin => d.next_seq = d.next_seq.wrapping_add(1),
                _ => {}
            }
            d.fin = true;
        }
        Update {
            chunk: chunk.filter(|c| c.end > c.start),
            before,
        }
    }

    /// Some direction has a reorder buffer (holding or handing over pieces).
    #[inline]
    pub fn reordering(&self) -> bool {
        self.reorder[0].is_some() || self.reorder[1].is_some()
    }

    /// Hands over the next released piece of `dir` (see [`Update`]): its bytes replace
    /// `out`'s contents.
    pub fn take_ready(&mut self, dir: Direction, out: &mut Vec<u8>) -> Option<ReadyChunk> {
        self.reorder
            .get_mut(dir.index())?
            .as_deref_mut()?
            .take_ready(out)
    }

    /// Released pieces of `dir` not yet handed over.
    pub fn ready_len(&self, dir: Direction) -> usize {
        self.reorder
            .get(dir.index())
            .and_then(Option::as_deref)
            .map_or(0, ReorderBuf::ready_len)
    }

    /// The flow is ending: every held piece is released (after its hole, if any), to be
    /// handed over with [`Flow::take_ready`].
    pub fn release_all(&mut self, stats: &mut ReorderStats) {
        for (d, buf) in self.dirs.iter_mut().zip(self.reorder.iter_mut()) {
            if let Some(buf) = buf.as_deref_mut() {
                release(d, buf, true, stats);
            }
        }
    }

    /// Returns idle reorder buffers to `pool` (all of them when `all`, at flow end).
    pub fn return_buffers(&mut self, pool: &mut ReorderPool, all: bool) {
        for slot in &mut self.reorder {
            if slot.as_deref().is_some_and(|b| all || b.is_idle())
                && let Some(buf) = slot.take()
            {
                pool.give(buf);
            }
        }
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
/// One TCP segment's payload, as [`place`] needs it.
struct Segment<'p> {
    seq: u32,
    len: u32,
    payload: &'p [u8],
    pcap_cnt: u64,
    ts: Ts,
}

/// Accounts a segment against the direction's sequence space and returns the bytes the app
/// layer gets now. A segment ahead of a hole is held if a buffer has room; when it has none,
/// the holes so far are given up (their pieces queue as `before`) and the segment is placed
/// again against the new frontier.
fn place(
    d: &mut DirCounters,
    slot: &mut Option<Box<ReorderBuf>>,
    pool: &mut ReorderPool,
    seg: &Segment<'_>,
    before: &mut usize,
) -> Option<Chunk> {
    let (seq, len) = (seg.seq, seg.len);
    let captured = seg.payload.len();
    let cut = len.saturating_sub(captured as u32);
    // Held bytes inside `[from, from + n)` were counted when they arrived.
    let dup = |slot: &Option<Box<ReorderBuf>>, next: u32, from: u32, n: u32| {
        slot.as_deref()
            .map_or(0, |b| b.overlap(next, from, from.wrapping_add(n)))
    };
    // Two rounds at most: a forced release leaves nothing held, so the second round either
    // holds the segment or takes the gap path.
    for _ in 0..2 {
        let rel = seq.wrapping_sub(d.next_seq) as i32;
        if rel == 0 {
            let held = dup(slot, d.next_seq, seq, len);
            return Some(d.take_in_order(len, held, captured));
        }
        if rel < 0 {
            let behind = rel.unsigned_abs();
            // Bytes landing in a hole arrived late, not twice.
            let late_end = if behind >= len {
                seq.wrapping_add(len)
            } else {
                d.next_seq
            };
            let late = d.fill_holes(seq, late_end);
            d.missing = d.missing.saturating_sub(u64::from(late));
            d.payload += u64::from(late);
            if behind >= len {
                d.retransmitted += u64::from(len - late);
                return None;
            }
            let fresh = len - behind;
            let held = dup(slot, d.next_seq, d.next_seq, fresh);
            d.retransmitted += u64::from(behind - late + held);
            d.payload += u64::from(fresh - held);
            d.next_seq = d.next_seq.wrapping_add(fresh);
            return Some(Chunk {
                start: (behind as usize).min(captured),
                end: captured,
                gap: false,
                cut,
            });
        }
        let holding = slot.as_deref().is_some_and(ReorderBuf::holding);
        if rel.unsigned_abs() <= reorder::MAX_AHEAD && pool.enabled() {
            if slot.is_none() {
                *slot = pool.take();
                if slot.is_none() {
                    pool.stats.no_buffer += 1;
                }
            }
            if let Some(buf) = slot.as_deref_mut()
                && let Some(new) = buf.hold(d.next_seq, seq, len, seg.payload, seg.pcap_cnt, seg.ts)
            {
                d.payload += u64::from(new);
                d.retransmitted += u64::from(len - new);
                if new > 0 {
                    pool.stats.held += 1;
                }
                return None;
            }
        }
        match slot.as_deref_mut() {
            Some(buf) if holding => {
                release(d, buf, true, &mut pool.stats);
                *before = buf.ready_len();
            }
            _ => break,
        }
    }
    // A hole nothing will fill: those bytes were never seen (loss before the sensor).
    let rel = seq.wrapping_sub(d.next_seq) as i32;
    let gap = rel != 0;
    if rel > 0 {
        d.missing += u64::from(rel.unsigned_abs());
        d.add_hole(d.next_seq, seq);
    }
    d.payload += u64::from(len);
    d.next_seq = seq.wrapping_add(len);
    Some(Chunk {
        start: 0,
        end: captured,
        gap,
        cut,
    })
}

/// Moves held pieces that the frontier reached (all of them when `force`) into the ready
/// queue, advancing `next_seq`; a piece released across a hole counts the hole as missing.
fn release(d: &mut DirCounters, buf: &mut ReorderBuf, force: bool, stats: &mut ReorderStats) {
    while let Some((seq, len)) = buf.release_first(d.next_seq, force, &mut d.cut_pending) {
        let ahead = seq.wrapping_sub(d.next_seq) as i32;
        if ahead > 0 {
            d.missing += u64::from(ahead.unsigned_abs());
            d.add_hole(d.next_seq, seq);
            d.next_seq = seq;
            stats.gave_up += 1;
        } else {
            stats.in_order += 1;
        }
        let end = seq.wrapping_add(len);
        if end.wrapping_sub(d.next_seq) as i32 > 0 {
            d.next_seq = end;
        }
        if buf.fin_reached(d.next_seq) {
            d.next_seq = d.next_seq.wrapping_add(1);
        }
    }
}

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
    /// Segments held for reordering (filled in from the pool by [`FlowTable::stats`]).
    pub reorder: ReorderStats,
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
    /// Reorder buffers for TCP directions waiting on a hole.
    pub reorder: ReorderPool,
    /// Counters.
    pub stats: FlowStats,
}

/// How many slots the eviction search samples from the clock hand.
const EVICT_SAMPLE: usize = 16;

impl<A: Default> FlowTable<A> {
    /// An empty table with the given limits.
    pub fn new(limits: FlowLimits) -> FlowTable<A> {
        let cap = limits.max_flows.clamp(1, 1 << 16);
        let reorder = ReorderPool::new(limits.reorder_bytes, limits.reorder_memory);
        FlowTable {
            index: HashTable::with_capacity(cap),
            hasher: DefaultHashBuilder::default(),
            slots: Vec::with_capacity(cap),
            free: Vec::new(),
            hand: 0,
            drain_at: 0,
            limits,
            last_sweep: Ts(0),
            reorder,
            stats: FlowStats::default(),
        }
    }

    /// Replaces the limits (config reload). Timeouts apply to the next sweep; a smaller
    /// `max_flows` bounds new flows only, so a fuller table shrinks as its flows end.
    pub fn set_limits(&mut self, limits: FlowLimits) {
        self.reorder
            .resize(limits.reorder_bytes, limits.reorder_memory);
        self.limits = limits;
    }

    /// The counters, with the reorder pool's.
    pub fn stats(&self) -> FlowStats {
        let mut s = self.stats.clone();
        s.reorder = self.reorder.snapshot();
        s
    }

    /// The flow in `slot` and the reorder pool, for [`Flow::update`].
    pub fn flow_and_pool(&mut self, slot: u32) -> Option<(&mut Flow<A>, &mut ReorderPool)> {
        let flow = self.slots.get_mut(slot as usize)?.as_mut()?;
        Some((flow, &mut self.reorder))
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
            let (flow, pool) = self.table.flow_and_pool(hit.slot).unwrap();
            let up = flow.update(hit.dir, &p, t, self.cnt, pool);
            // In the order the engine hands bytes over (see `Update`).
            let mut bytes = Vec::new();
            let mut piece = Vec::new();
            while flow.take_ready(hit.dir.reverse(), &mut piece).is_some() {}
            for _ in 0..up.before {
                flow.take_ready(hit.dir, &mut piece);
                bytes.extend_from_slice(&piece);
            }
            if let Some(c) = up.chunk {
                bytes.extend_from_slice(&p.payload[c.start..c.end]);
            }
            while flow.take_ready(hit.dir, &mut piece).is_some() {
                bytes.extend_from_slice(&piece);
            }
            flow.return_buffers(pool, false);
            (hit.slot, hit.dir, bytes)
        }
    }

    impl Conv {
        /// Feeds one segment of flow 10.0.0.1:40000 ↔ 203.0.113.9:445 at `nanos` of packet
        /// time, with `ack` if given; returns the client direction's pieces the app layer
        /// gets, in order, each with its gap flag.
        fn piece(
            &mut self,
            nanos: u64,
            from_client: bool,
            seq: u32,
            ack: Option<u32>,
            payload: &[u8],
        ) -> Vec<(bool, Vec<u8>)> {
            let (src, dst, sp, dp) = if from_client {
                ([10, 0, 0, 1], [203, 0, 113, 9], 40000, 445)
            } else {
                ([203, 0, 113, 9], [10, 0, 0, 1], 445, 40000)
            };
            let mut b = PacketBuilder::ethernet2([1; 6], [2; 6])
                .ipv4(src, dst, 64)
                .tcp(sp, dp, seq, 1000);
            if let Some(a) = ack {
                b = b.ack(a);
            }
            let mut f = Vec::new();
            b.write(&mut f, payload).unwrap();
            let t = Ts(nanos);
            let p = self
                .dec
                .decode(linktype::ETHERNET, &f, f.len() as u32, t)
                .unwrap();
            let hit = self.table.lookup(&p, t, 1, &mut self.ended);
            let (flow, pool) = self.table.flow_and_pool(hit.slot).unwrap();
            let up = flow.update(hit.dir, &p, t, 1, pool);
            let mut out = Vec::new();
            let mut buf = Vec::new();
            let client = Direction::ToServer;
            // A server packet releases client pieces only by acknowledging past a hole.
            let before = if hit.dir == client {
                up.before
            } else {
                usize::MAX
            };
            for _ in 0..before {
                let Some(r) = flow.take_ready(client, &mut buf) else {
                    break;
                };
                out.push((r.gap, buf.clone()));
            }
            if hit.dir == client
                && let Some(c) = up.chunk
            {
                out.push((c.gap, p.payload[c.start..c.end].to_vec()));
            }
            while let Some(r) = flow.take_ready(client, &mut buf) {
                out.push((r.gap, buf.clone()));
            }
            while flow.take_ready(client.reverse(), &mut buf).is_some() {}
            flow.return_buffers(pool, false);
            out
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
            let (flow, pool) = table.flow_and_pool(slot).unwrap();
            flow.update(hit.dir, &p, t, i as u64 + 1, pool);
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

    fn no_reorder() -> FlowLimits {
        FlowLimits {
            reorder_bytes: 0,
            ..FlowLimits::default()
        }
    }

    #[test]
    fn hole_is_counted_as_missing() {
        let mut c = Conv::new(no_reorder());
        let (slot, _, _) = c.tcp(1, true, 40000, 80, 100, A, b"abcd");
        c.tcp(1, true, 40000, 80, 110, A, b"efgh");
        let f = c.table.get(slot).unwrap();
        assert_eq!((f.dirs[0].payload, f.dirs[0].missing), (8, 6));
    }

    /// The CI failure of 2026-11-23 (`live_lab_matches_replay`): the capture interleaved
    /// two bursts of one SMB upload, so later segments arrived before earlier ones. The
    /// parser must see the stream in order and whole.
    #[test]
    fn interleaved_bursts_reach_the_app_layer_in_order() {
        let mut c = Conv::new(FlowLimits::default());
        let stream: Vec<u8> = (0..40u8).collect();
        let seg = |i: usize| &stream[i * 4..i * 4 + 4];
        let mut got = Vec::new();
        let (slot, _, b) = c.tcp(1, true, 40000, 445, 1000, A, seg(0));
        got.extend(b);
        // Segments 5..10 interleave with 1..5.
        for (x, y) in [(5, 1), (6, 2), (7, 3), (8, 4)] {
            got.extend(
                c.tcp(1, true, 40000, 445, 1000 + 4 * x, A, seg(x as usize))
                    .2,
            );
            got.extend(
                c.tcp(1, true, 40000, 445, 1000 + 4 * y, A, seg(y as usize))
                    .2,
            );
        }
        got.extend(c.tcp(1, true, 40000, 445, 1036, A, seg(9)).2);
        assert_eq!(got, stream);
        let f = c.table.get(slot).unwrap();
        let d = &f.dirs[0];
        assert_eq!((d.payload, d.missing, d.retransmitted), (40, 0, 0));
        assert!(
            f.reorder[0].is_none(),
            "the idle buffer went back to the pool"
        );
        let st = c.table.stats();
        assert_eq!((st.reorder.held, st.reorder.in_order), (4, 4));
        assert_eq!(st.reorder.gave_up, 0);
    }

    #[test]
    fn a_hole_is_given_up_when_acknowledged_past_or_after_waiting() {
        let mut c = Conv::new(FlowLimits::default());
        c.tcp(1, false, 80, 40000, 1, S | A, b"");
        let (slot, _, b) = c.tcp(1, true, 40000, 80, 100, A, b"abcd");
        assert_eq!(b, b"abcd");
        assert!(c.tcp(1, true, 40000, 80, 110, A, b"efgh").2.is_empty());
        // The server acknowledges 114 (Conv's server ACKs are 1; send its own ACK number).
        let mut up = |ack_to: u32| {
            let b = PacketBuilder::ethernet2([1; 6], [2; 6])
                .ipv4([203, 0, 113, 9], [10, 0, 0, 1], 64)
                .tcp(80, 40000, 2, 1000)
                .ack(ack_to);
            let mut f = Vec::new();
            b.write(&mut f, &[]).unwrap();
            let p = c
                .dec
                .decode(linktype::ETHERNET, &f, f.len() as u32, Ts::from_secs(1))
                .unwrap();
            let hit = c.table.lookup(&p, Ts::from_secs(1), 9, &mut c.ended);
            let (flow, pool) = c.table.flow_and_pool(hit.slot).unwrap();
            flow.update(hit.dir, &p, Ts::from_secs(1), 9, pool);
            let mut piece = Vec::new();
            let r = flow.take_ready(Direction::ToServer, &mut piece);
            (r, piece)
        };
        // An ACK inside the hole proves nothing yet.
        assert_eq!(up(106).0, None);
        let (r, piece) = up(114);
        assert_eq!(piece, b"efgh");
        assert!(r.unwrap().gap);
        let f = c.table.get(slot).unwrap();
        assert_eq!((f.dirs[0].payload, f.dirs[0].missing), (8, 6));

        // Without ACKs, the next packet after the wait releases it.
        let (_, _, _) = c.tcp(2, true, 40001, 80, 100, A, b"abcd");
        assert!(c.tcp(2, true, 40001, 80, 110, A, b"efgh").2.is_empty());
        let (_, _, b) = c.tcp(4, true, 40001, 80, 114, A, b"ijkl");
        assert_eq!(b, b"efghijkl");
        assert_eq!(c.table.stats().reorder.gave_up, 2);
    }

    #[test]
    fn a_full_buffer_gives_up_its_hole_first() {
        let limits = FlowLimits {
            reorder_bytes: 8,
            ..FlowLimits::default()
        };
        let mut c = Conv::new(limits);
        let (slot, _, _) = c.tcp(1, true, 40000, 80, 100, A, b"abcd");
        assert!(c.tcp(1, true, 40000, 80, 110, A, b"efgh").2.is_empty());
        assert!(c.tcp(1, true, 40000, 80, 114, A, b"ijkl").2.is_empty());
        // No room for a third: the held pieces go first, then this one, in order.
        let (_, _, b) = c.tcp(1, true, 40000, 80, 118, A, b"mnop");
        assert_eq!(b, b"efghijklmnop");
        let f = c.table.get(slot).unwrap();
        assert_eq!((f.dirs[0].payload, f.dirs[0].missing), (16, 6));
        // The late bytes of the hole count as payload, not as a retransmission.
        c.tcp(1, true, 40000, 80, 104, A, b"EFGHIJ");
        let f = c.table.get(slot).unwrap();
        let d = &f.dirs[0];
        assert_eq!((d.payload, d.missing, d.retransmitted), (22, 0, 0));
    }

    #[test]
    fn the_memory_cap_sheds_to_the_gap_path_and_counts() {
        let limits = FlowLimits {
            reorder_bytes: 64,
            reorder_memory: 64,
            ..FlowLimits::default()
        };
        let mut c = Conv::new(limits);
        c.tcp(1, true, 40000, 80, 100, A, b"abcd");
        assert!(c.tcp(1, true, 40000, 80, 110, A, b"efgh").2.is_empty());
        // A second flow finds no buffer: its segment goes up at once, after a gap.
        c.tcp(1, true, 40001, 80, 100, A, b"abcd");
        assert_eq!(c.tcp(1, true, 40001, 80, 110, A, b"efgh").2, b"efgh");
        assert_eq!(c.table.stats().reorder.no_buffer, 1);
    }

    #[test]
    fn a_fin_ahead_of_the_hole_counts_once_the_hole_fills() {
        let mut c = Conv::new(FlowLimits::default());
        let (slot, _, _) = c.tcp(1, true, 40000, 80, 100, A, b"abcd");
        assert!(c.tcp(1, true, 40000, 80, 108, A | F, b"ijkl").2.is_empty());
        let (_, _, b) = c.tcp(1, true, 40000, 80, 104, A, b"efgh");
        assert_eq!(b, b"efghijkl");
        // A retransmitted FIN is old news.
        c.tcp(1, true, 40000, 80, 108, A | F, b"ijkl");
        let d = &c.table.get(slot).unwrap().dirs[0];
        assert_eq!((d.payload, d.missing, d.retransmitted), (12, 0, 4));
        assert_eq!(d.next_seq, 113);
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
            let (flow, pool) = table.flow_and_pool(hit.slot).unwrap();
            chunks.push(flow.update(hit.dir, &p, Ts(0), 1, pool).chunk.unwrap());
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

    /// Sends the segments of a stream (sizes `sizes`, first byte at 100) in the order of
    /// their `keys`, each again when `dup` says so and not at all when `drop` says so, then
    /// ends the flow. Returns what the app layer got and the client direction's counters.
    fn shuffled(
        sizes: &[usize],
        keys: &[u16],
        dup: &[bool],
        drop: &[bool],
    ) -> (Vec<u8>, DirCounters) {
        let stream: Vec<u8> = (0..sizes.iter().sum::<usize>())
            .map(|i| (i % 251) as u8)
            .collect();
        let mut at = 0;
        let segs: Vec<(u32, &[u8])> = sizes
            .iter()
            .map(|&n| {
                let s = (100 + at as u32, &stream[at..at + n]);
                at += n;
                s
            })
            .collect();
        let mut order: Vec<usize> = (0..segs.len()).collect();
        order.sort_by_key(|&i| keys[i]);
        let mut c = Conv::new(FlowLimits::default());
        let (slot, _, _) = c.tcp(1, true, 40000, 445, 99, S, b"");
        let mut got = Vec::new();
        for &i in &order {
            if drop[i] {
                continue;
            }
            let (seq, bytes) = segs[i];
            got.extend(c.tcp(1, true, 40000, 445, seq, A, bytes).2);
            if dup[i] {
                got.extend(c.tcp(1, true, 40000, 445, seq, A, bytes).2);
            }
        }
        let flow = c.table.get_mut(slot).unwrap();
        flow.release_all(&mut ReorderStats::default());
        let mut piece = Vec::new();
        while flow.take_ready(Direction::ToServer, &mut piece).is_some() {
            got.extend_from_slice(&piece);
        }
        (got, flow.dirs[0])
    }

    proptest::proptest! {
        /// Whatever the arrival order, the app layer gets the stream in order and whole, and
        /// each byte counts once as payload.
        #[test]
        fn any_arrival_order_gives_the_stream_in_order(
            sizes in proptest::collection::vec(1usize..120, 2..40),
            keys in proptest::collection::vec(proptest::prelude::any::<u16>(), 40),
            dup in proptest::collection::vec(proptest::prelude::any::<bool>(), 40),
        ) {
            let (got, d) = shuffled(&sizes, &keys, &dup, &[false; 40]);
            let total: usize = sizes.iter().sum();
            let want: Vec<u8> = (0..total).map(|i| (i % 251) as u8).collect();
            proptest::prop_assert_eq!(got, want);
            proptest::prop_assert_eq!(d.payload, total as u64);
            proptest::prop_assert_eq!(d.missing, 0);
            let dups: usize = sizes.iter().zip(&dup).filter(|(_, d)| **d).map(|(n, _)| n).sum();
            proptest::prop_assert_eq!(d.retransmitted, dups as u64);
        }

        /// Arbitrary overlapping segments, duplicates, peer ACKs and time steps, across the
        /// 32-bit sequence wrap: nothing panics, every piece handed over is the stream's own
        /// bytes, and a piece without a gap flag continues the previous one exactly.
        #[test]
        fn arbitrary_segments_never_hand_over_wrong_bytes(
            isn in proptest::prelude::any::<u32>(),
            segs in proptest::collection::vec(
                (0u32..3000, 1u32..400, proptest::prelude::any::<bool>(), 0u32..3500, 0u64..400_000_000),
                1..60,
            ),
        ) {
            // The stream byte at relative position i is i % 251.
            let pattern = |from: u32, n: u32| -> Vec<u8> { (from..from + n).map(|i| (i % 251) as u8).collect() };
            let mut c = Conv::new(FlowLimits { reorder_bytes: 2048, ..FlowLimits::default() });
            c.piece(0, true, isn.wrapping_sub(1), None, b"");
            let mut now = 0;
            // Where the next gap-free piece must start (relative), once known.
            let mut expect: Option<u32> = None;
            for (start, len, server_acks, ack_at, step) in segs {
                now += step;
                let pieces = if server_acks {
                    c.piece(now, false, 7, Some(isn.wrapping_add(ack_at)), b"")
                } else {
                    c.piece(now, true, isn.wrapping_add(start), None, &pattern(start, len))
                };
                for (gap, bytes) in pieces {
                    proptest::prop_assert!(!bytes.is_empty());
                    let first = u32::from(bytes[0]);
                    // Consecutive within the piece.
                    for w in bytes.windows(2) {
                        proptest::prop_assert_eq!(u32::from(w[1]), (u32::from(w[0]) + 1) % 251);
                    }
                    if let (false, Some(e)) = (gap, expect) {
                        proptest::prop_assert_eq!(first, e % 251, "a gap-free piece continues the last one");
                    }
                    expect = Some(first + bytes.len() as u32);
                    if let Some(e) = expect.as_mut() {
                        // Keep it as a residue: only the pattern value is comparable.
                        *e %= 251;
                    }
                }
            }
        }

        /// With segments lost, the app layer gets exactly the bytes that were sent, in
        /// order, and the holes between them count as missing.
        #[test]
        fn lost_segments_leave_holes_and_nothing_else(
            sizes in proptest::collection::vec(1usize..120, 2..40),
            keys in proptest::collection::vec(proptest::prelude::any::<u16>(), 40),
            drop in proptest::collection::vec(proptest::prelude::any::<bool>(), 40),
        ) {
            let (got, d) = shuffled(&sizes, &keys, &[false; 40], &drop);
            let mut want = Vec::new();
            let mut at = 0;
            let mut last_kept_end = 0;
            for (i, &n) in sizes.iter().enumerate() {
                if !drop[i] {
                    want.extend((at..at + n).map(|b| (b % 251) as u8));
                    last_kept_end = at + n;
                }
                at += n;
            }
            let kept: usize = sizes.iter().zip(&drop).filter(|(_, d)| !**d).map(|(n, _)| n).sum();
            proptest::prop_assert_eq!(got, want);
            proptest::prop_assert_eq!(d.payload, kept as u64);
            // Lost bytes after the last kept segment were never announced.
            proptest::prop_assert_eq!(d.missing, (last_kept_end - kept) as u64);
        }
    }
}
