//! Interleaves many conversations by packet time and streams them to the pcap file.
//!
//! A min-heap holds one entry per live conversation, keyed by its next packet's time (ties
//! broken by flow id, so output is deterministic). Finished conversations are dropped at
//! once: memory follows the number of flows open at the same time, not the capture size.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io::Write;

use anyhow::{Context, Result};

use crate::conv::Conv;
use crate::pcap::PcapWriter;

/// Totals of what was written.
#[derive(Debug, Clone, Copy, Default)]
pub struct MuxStats {
    /// Packets.
    pub packets: u64,
    /// Frame bytes.
    pub wire_bytes: u64,
    /// First packet time, µs.
    pub first_us: Option<u64>,
    /// Last packet time, µs.
    pub last_us: u64,
    /// Most conversations between their first and last packet at one time.
    pub peak_open: usize,
}

/// The merger; `out` is `None` to plan a capture without rendering or writing it.
pub struct Mux<W: Write> {
    out: Option<PcapWriter<W>>,
    slots: Vec<Option<Conv>>,
    free: Vec<usize>,
    heap: BinaryHeap<Reverse<(u64, u32, usize)>>,
    frame: Vec<u8>,
    scratch: Vec<u8>,
    open: usize,
    stats: MuxStats,
}

impl<W: Write> Mux<W> {
    /// A merger writing to `out`.
    pub fn new(out: Option<PcapWriter<W>>) -> Mux<W> {
        Mux {
            out,
            slots: Vec::new(),
            free: Vec::new(),
            heap: BinaryHeap::new(),
            frame: Vec::with_capacity(2048),
            scratch: Vec::with_capacity(2048),
            open: 0,
            stats: MuxStats::default(),
        }
    }

    /// Schedules a fully built conversation.
    pub fn add(&mut self, conv: Conv) {
        let Some(ts) = conv.peek_ts() else { return };
        let id = conv.id();
        let slot = match self.free.pop() {
            Some(i) => {
                if let Some(s) = self.slots.get_mut(i) {
                    *s = Some(conv);
                }
                i
            }
            None => {
                self.slots.push(Some(conv));
                self.slots.len() - 1
            }
        };
        self.heap.push(Reverse((ts, id, slot)));
    }

    /// Time of the next packet, `None` when nothing is scheduled.
    pub fn next_ts(&self) -> Option<u64> {
        self.heap.peek().map(|Reverse((ts, _, _))| *ts)
    }

    /// Writes the next packet in time order.
    pub fn step(&mut self) -> Result<()> {
        let Some(Reverse((_, id, slot))) = self.heap.pop() else {
            return Ok(());
        };
        let conv = self
            .slots
            .get_mut(slot)
            .and_then(Option::as_mut)
            .context("scheduled slot is empty")?;
        if conv.unstarted() {
            self.open += 1;
            self.stats.peak_open = self.stats.peak_open.max(self.open);
        }
        let (ts, len) = match self.out.as_mut() {
            Some(out) => {
                let ts = conv
                    .render_next(&mut self.frame, &mut self.scratch)?
                    .context("scheduled flow has no packet")?;
                out.write_frame(ts, &self.frame)?;
                (ts, self.frame.len() as u64)
            }
            None => {
                let ts = conv.peek_ts().context("scheduled flow has no packet")?;
                (ts, conv.skip_next().unwrap_or(0))
            }
        };
        self.stats.packets += 1;
        self.stats.wire_bytes += len;
        self.stats.first_us.get_or_insert(ts);
        self.stats.last_us = ts;
        match conv.peek_ts() {
            Some(next) => self.heap.push(Reverse((next, id, slot))),
            None => {
                self.open -= 1;
                if let Some(s) = self.slots.get_mut(slot) {
                    *s = None;
                }
                self.free.push(slot);
            }
        }
        Ok(())
    }

    /// Writes every packet scheduled at or before `t`.
    pub fn run_until(&mut self, t: u64) -> Result<()> {
        while self.next_ts().is_some_and(|n| n <= t) {
            self.step()?;
        }
        Ok(())
    }

    /// Writes everything left, flushes, and hands back the sink.
    pub fn finish(mut self) -> Result<(MuxStats, Option<W>)> {
        while self.next_ts().is_some() {
            self.step()?;
        }
        let sink = self.out.take().map(PcapWriter::finish).transpose()?;
        Ok((self.stats, sink))
    }
}
