//! TCP reordering: segments that arrive ahead of a hole wait in a bounded buffer, borrowed
//! from a per-worker pool, until the hole fills or waiting stops making sense.
//!
//! Captures reorder segments more often than one would hope: a SPAN port merges several
//! ingress queues, a veth pair hands frames to whichever CPU is free, a router retransmits
//! from its own queue. Without this stage the application parsers see a gap where there
//! was none, and a length-framed parser (SMB) loses every byte until it finds a header again.
//!
//! A direction's buffer holds at most [`MAX_HELD`] pieces and a fixed number of bytes, and
//! the pool hands out at most `memory / bytes` buffers, so the worst case is known up front.
//! A held segment waits until one of these happens (then the hole is declared, counted as
//! missing, and the parsers see a gap, as they would have without the buffer):
//! * the hole fills: the held bytes follow, in order, with no gap;
//! * the buffer is full;
//! * the receiver acknowledges bytes past the hole (so the sensor, not the receiver, missed
//!   them: no retransmission will come);
//! * [`WAIT`] of packet time has passed since the first segment was held;
//! * the flow ends.

use serde::Serialize;

use crate::time::Ts;

/// Pieces one direction holds at most.
pub const MAX_HELD: usize = 64;

/// Packet time a hole may stay open while later bytes wait: long enough for a sender's
/// retransmission timeout (200 ms minimum on Linux) to fill a loss before the sensor.
pub const WAIT: u64 = Ts::NANOS_PER_SEC;

/// How far ahead of the expected sequence number a segment may start and still be held:
/// beyond it the jump is not reordering (a midstream pickup, a sequence-number rewrite).
pub const MAX_AHEAD: u32 = 16 << 20;

/// One held piece of sequence space `[seq, seq + len)`, whose captured bytes are
/// `data[off .. off + cap]` (`cap < len` when the snap length cut the segment).
#[derive(Debug, Clone, Copy)]
struct Held {
    seq: u32,
    len: u32,
    off: u32,
    cap: u32,
    pcap_cnt: u64,
}

/// A released piece waiting to be handed to the application layer.
#[derive(Debug, Clone, Copy)]
struct Ready {
    off: u32,
    cap: u32,
    gap: bool,
    cut: u32,
    pcap_cnt: u64,
}

/// What a released piece carries, besides its bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadyChunk {
    /// Bytes are missing before this piece.
    pub gap: bool,
    /// Bytes of the piece the snap length cut off at its end.
    pub cut: u32,
    /// `pcap_cnt` of the packet that carried the piece.
    pub pcap_cnt: u64,
}

/// One direction's reorder buffer.
#[derive(Debug, Clone)]
pub struct ReorderBuf {
    data: Vec<u8>,
    held: Vec<Held>,
    ready: Vec<Ready>,
    ready_at: usize,
    /// Packet time the oldest held piece has waited since.
    since: Ts,
    /// Sequence number of a FIN that arrived ahead of a hole.
    fin_at: Option<u32>,
}

impl ReorderBuf {
    fn new(bytes: usize) -> ReorderBuf {
        ReorderBuf {
            data: Vec::with_capacity(bytes),
            held: Vec::with_capacity(MAX_HELD),
            ready: Vec::with_capacity(MAX_HELD),
            ready_at: 0,
            since: Ts(0),
            fin_at: None,
        }
    }

    /// Nothing held and nothing waiting to be handed over.
    pub fn is_idle(&self) -> bool {
        self.held.is_empty() && self.ready_at >= self.ready.len()
    }

    /// Pieces released but not yet handed over.
    pub fn ready_len(&self) -> usize {
        self.ready.len().saturating_sub(self.ready_at)
    }

    /// True while some piece waits for a hole to fill.
    pub fn holding(&self) -> bool {
        !self.held.is_empty()
    }

    fn clear(&mut self) {
        self.data.clear();
        self.held.clear();
        self.ready.clear();
        self.ready_at = 0;
        self.fin_at = None;
    }

    /// Bytes of held sequence space inside `[start, end)`, with sequence numbers taken
    /// relative to `base` (the direction's next expected byte).
    pub(super) fn overlap(&self, base: u32, start: u32, end: u32) -> u32 {
        let (s, e) = (start.wrapping_sub(base), end.wrapping_sub(base));
        self.held
            .iter()
            .map(|h| {
                let hs = h.seq.wrapping_sub(base);
                let he = hs.saturating_add(h.len);
                e.min(he).saturating_sub(s.max(hs))
            })
            .sum()
    }

    /// Holds the parts of a segment not already held. `payload` is its captured bytes,
    /// `len` its length on the wire. Returns the bytes of sequence space newly held, or
    /// `None` when the buffer has no room (nothing changes then).
    pub(super) fn hold(
        &mut self,
        base: u32,
        seq: u32,
        len: u32,
        payload: &[u8],
        pcap_cnt: u64,
        ts: Ts,
    ) -> Option<u32> {
        let rs = seq.wrapping_sub(base);
        let re = rs.saturating_add(len);
        // The uncovered pieces of [rs, re): at most one more than the pieces held.
        let mut pieces = [(0u32, 0u32); MAX_HELD + 1];
        let mut n = 0;
        let mut cursor = rs;
        for h in &self.held {
            let hs = h.seq.wrapping_sub(base);
            let he = hs.saturating_add(h.len);
            if he <= cursor {
                continue;
            }
            if hs >= re {
                break;
            }
            if hs > cursor
                && let Some(p) = pieces.get_mut(n)
            {
                *p = (cursor, hs.min(re));
                n += 1;
            }
            cursor = cursor.max(he);
        }
        if cursor < re
            && let Some(p) = pieces.get_mut(n)
        {
            *p = (cursor, re);
            n += 1;
        }
        let pieces = pieces.get(..n).unwrap_or_default();
        if pieces.is_empty() {
            return Some(0);
        }
        let captured = u32::try_from(payload.len()).unwrap_or(u32::MAX);
        // The captured bytes of a piece, as offsets into `payload`.
        let bytes_of = |a: u32, b: u32| ((a - rs).min(captured), (b - rs).min(captured));
        let copy: u32 = pieces
            .iter()
            .map(|&(a, b)| {
                let (lo, hi) = bytes_of(a, b);
                hi - lo
            })
            .sum();
        if self.held.len() + pieces.len() > MAX_HELD
            || self.data.len() + copy as usize > self.data.capacity()
        {
            return None;
        }
        if self.held.is_empty() {
            self.since = ts;
        }
        let mut new_bytes = 0;
        for &(a, b) in pieces {
            let (lo, hi) = bytes_of(a, b);
            let off = u32::try_from(self.data.len()).unwrap_or(u32::MAX);
            self.data
                .extend_from_slice(payload.get(lo as usize..hi as usize).unwrap_or_default());
            let pos = self.held.partition_point(|h| h.seq.wrapping_sub(base) < a);
            self.held.insert(
                pos,
                Held {
                    seq: base.wrapping_add(a),
                    len: b - a,
                    off,
                    cap: hi - lo,
                    pcap_cnt,
                },
            );
            new_bytes += b - a;
        }
        Some(new_bytes)
    }

    /// Sequence number where the first held piece starts.
    pub(super) fn first_seq(&self) -> Option<u32> {
        self.held.first().map(|h| h.seq)
    }

    /// Packet time the oldest held piece arrived.
    pub(super) fn since(&self) -> Ts {
        self.since
    }

    /// Remembers a FIN that came ahead of a hole: it takes its sequence number when the
    /// bytes before it are released.
    pub(super) fn set_fin_at(&mut self, seq: u32) {
        self.fin_at = Some(seq);
    }

    /// Takes the first held piece if it starts at or before `next` (or in any case when
    /// `force`): returns where it starts, its length, and queues its bytes after `next`.
    /// `cut_pending` carries a snap-length cut from one handed-over piece to the next.
    pub(super) fn release_first(
        &mut self,
        next: u32,
        force: bool,
        cut_pending: &mut bool,
    ) -> Option<(u32, u32)> {
        let h = *self.held.first()?;
        let ahead = h.seq.wrapping_sub(next) as i32;
        if ahead > 0 && !force {
            return None;
        }
        self.held.remove(0);
        let skip = if ahead < 0 { ahead.unsigned_abs() } else { 0 };
        if skip < h.len {
            let start = skip.min(h.cap);
            let cut = (h.len - skip).saturating_sub(h.cap - start);
            let gap = ahead > 0 || *cut_pending;
            *cut_pending = cut > 0;
            self.ready.push(Ready {
                off: h.off + start,
                cap: h.cap - start,
                gap,
                cut,
                pcap_cnt: h.pcap_cnt,
            });
        }
        Some((h.seq, h.len))
    }

    /// Takes a FIN waiting at `next`: the caller advances past it.
    pub(super) fn fin_reached(&mut self, next: u32) -> bool {
        if self.fin_at == Some(next) {
            self.fin_at = None;
            true
        } else {
            false
        }
    }

    /// Hands over the next released piece: its bytes replace `out`'s contents.
    pub fn take_ready(&mut self, out: &mut Vec<u8>) -> Option<ReadyChunk> {
        let r = *self.ready.get(self.ready_at)?;
        self.ready_at += 1;
        out.clear();
        let (a, b) = (r.off as usize, r.off as usize + r.cap as usize);
        out.extend_from_slice(self.data.get(a..b).unwrap_or_default());
        if self.is_idle() {
            self.clear();
        }
        Some(ReadyChunk {
            gap: r.gap,
            cut: r.cut,
            pcap_cnt: r.pcap_cnt,
        })
    }
}

/// Reordering counters (`stats.flow.reorder`).
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct ReorderStats {
    /// Segments (or parts) that arrived ahead of a hole and were held.
    pub held: u64,
    /// Held pieces handed over in order once their hole filled.
    pub in_order: u64,
    /// Held pieces handed over after a hole that never filled (buffer full, acknowledged
    /// past, waited too long, flow ended); the hole counts as missing.
    pub gave_up: u64,
    /// Segments that arrived ahead of a hole while every buffer was in use
    /// (`reorder_memory`): handed over at once with a gap. What the cap shed.
    pub no_buffer: u64,
    /// Buffers in use or pooled now (filled in by [`ReorderPool::snapshot`]).
    pub buffers: u64,
    /// Most buffers in use at once.
    pub buffers_peak: u64,
}

/// The per-worker pool of reorder buffers.
#[derive(Debug)]
pub struct ReorderPool {
    // Boxed as the flows hold them, so handing one out or back moves a pointer and
    // never allocates.
    #[allow(clippy::vec_box)]
    free: Vec<Box<ReorderBuf>>,
    /// Bytes per buffer (0 = reordering off).
    bytes: usize,
    /// Buffers that may exist at once (in use plus pooled).
    max_buffers: usize,
    in_use: usize,
    /// Counters.
    pub stats: ReorderStats,
}

impl ReorderPool {
    /// A pool of at most `memory / bytes` buffers of `bytes` each; either at 0 turns
    /// reordering off.
    pub fn new(bytes: usize, memory: usize) -> ReorderPool {
        let max_buffers = memory.checked_div(bytes).unwrap_or(0);
        ReorderPool {
            free: Vec::new(),
            bytes,
            max_buffers,
            in_use: 0,
            stats: ReorderStats::default(),
        }
    }

    /// New sizes (config reload): pooled buffers of another size are dropped; buffers in
    /// use keep their size until they come back.
    pub fn resize(&mut self, bytes: usize, memory: usize) {
        if bytes != self.bytes {
            self.free.clear();
        }
        self.bytes = bytes;
        self.max_buffers = memory.checked_div(bytes).unwrap_or(0);
    }

    /// The counters, with the number of buffers that exist now.
    pub fn snapshot(&self) -> ReorderStats {
        ReorderStats {
            buffers: (self.in_use + self.free.len()) as u64,
            ..self.stats.clone()
        }
    }

    /// Reordering is on.
    pub fn enabled(&self) -> bool {
        self.max_buffers > 0
    }

    /// A buffer for a direction that needs one, if the cap allows.
    pub(super) fn take(&mut self) -> Option<Box<ReorderBuf>> {
        let buf = match self.free.pop() {
            Some(b) => b,
            None if self.in_use + self.free.len() < self.max_buffers => {
                Box::new(ReorderBuf::new(self.bytes))
            }
            None => return None,
        };
        self.in_use += 1;
        self.stats.buffers_peak = self.stats.buffers_peak.max(self.in_use as u64);
        Some(buf)
    }

    /// Takes a buffer back.
    pub(super) fn give(&mut self, mut buf: Box<ReorderBuf>) {
        self.in_use = self.in_use.saturating_sub(1);
        buf.clear();
        if buf.data.capacity() == self.bytes && self.free.len() + self.in_use < self.max_buffers {
            self.free.push(buf);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hold_keeps_pieces_disjoint_and_sorted() {
        let mut b = ReorderBuf::new(1024);
        let t = Ts(0);
        assert_eq!(b.hold(100, 200, 10, &[1; 10], 1, t), Some(10));
        assert_eq!(b.hold(100, 150, 10, &[2; 10], 2, t), Some(10));
        // Covers [195, 215): only [195, 200) and [210, 215) are new.
        assert_eq!(b.hold(100, 195, 20, &[3; 20], 3, t), Some(10));
        // Entirely held already.
        assert_eq!(b.hold(100, 200, 10, &[4; 10], 4, t), Some(0));
        let seqs: Vec<(u32, u32)> = b.held.iter().map(|h| (h.seq, h.len)).collect();
        assert_eq!(seqs, [(150, 10), (195, 5), (200, 10), (210, 5)]);
        assert_eq!(b.overlap(100, 100, 300), 30);
        assert_eq!(b.overlap(100, 155, 202), 5 + 5 + 2);
    }

    #[test]
    fn hold_refuses_when_full() {
        let mut b = ReorderBuf::new(16);
        let t = Ts(0);
        assert_eq!(b.hold(0, 10, 10, &[0; 10], 1, t), Some(10));
        assert_eq!(b.hold(0, 30, 10, &[0; 10], 2, t), None);
        for i in 0..(MAX_HELD as u32 - 1) {
            let _ = b.hold(0, 100 + 2 * i, 1, &[], 3, t);
        }
        assert_eq!(b.held.len(), MAX_HELD);
        assert_eq!(b.hold(0, 1000, 1, &[], 4, t), None);
    }

    #[test]
    fn release_trims_what_was_already_handed_over() {
        let mut b = ReorderBuf::new(64);
        assert_eq!(b.hold(0, 10, 10, b"abcdefghij", 7, Ts(0)), Some(10));
        let mut cut = false;
        assert_eq!(b.release_first(5, false, &mut cut), None);
        assert_eq!(b.release_first(14, false, &mut cut), Some((10, 10)));
        let mut out = Vec::new();
        let r = b.take_ready(&mut out).unwrap();
        assert_eq!(out, b"efghij");
        assert_eq!((r.gap, r.cut, r.pcap_cnt), (false, 0, 7));
        assert!(b.is_idle());
    }

    #[test]
    fn forced_release_marks_the_gap_and_a_cut_tail() {
        let mut b = ReorderBuf::new(64);
        // 10 bytes on the wire, 4 captured.
        assert_eq!(b.hold(0, 20, 10, b"wxyz", 1, Ts(0)), Some(10));
        let mut cut = false;
        assert_eq!(b.release_first(5, true, &mut cut), Some((20, 10)));
        let mut out = Vec::new();
        let r = b.take_ready(&mut out).unwrap();
        assert_eq!(out, b"wxyz");
        assert_eq!((r.gap, r.cut), (true, 6));
        assert!(cut, "the next piece follows a cut tail");
    }

    #[test]
    fn pool_respects_its_cap_and_reuses() {
        let mut p = ReorderPool::new(100, 250);
        let a = p.take().unwrap();
        let b = p.take().unwrap();
        assert!(p.take().is_none(), "250 / 100 = 2 buffers");
        p.give(a);
        let c = p.take().unwrap();
        assert_eq!(p.snapshot().buffers, 2);
        assert_eq!(p.stats.buffers_peak, 2);
        p.give(b);
        p.give(c);
        assert!(!ReorderPool::new(0, 1 << 20).enabled());
        assert!(!ReorderPool::new(1 << 20, 0).enabled());
    }
}
