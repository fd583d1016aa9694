//! Output stage: EVE JSON records (schema in [`eve`]) and the writer thread's sinks.
//!
//! Workers serialise records into owned lines and send them here over a bounded channel;
//! this thread only writes. A broken pipe on stdout ends output quietly (the reader went
//! away, as with `| head`), and every line is written whole or not at all.

pub mod eve;
pub mod merge;

use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::PathBuf;

use serde::Serialize;

/// The EVE event types this sensor writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// `flow`.
    Flow,
    /// `alert`.
    Alert,
    /// `stats`.
    Stats,
    /// `anomaly`.
    Anomaly,
    /// `ftp`, `tftp`, `smb` transactions.
    Transaction,
    /// `session`.
    Session,
}

/// A message for the writer thread.
#[derive(Debug)]
pub enum OutMsg {
    /// One serialised record (no trailing newline).
    Line(EventKind, Vec<u8>),
    /// Several whole records, each ending in a newline, with how many of each kind.
    Block(Vec<u8>, KindCounts),
    /// A stats record: the writer adds its own counters before serialising.
    Stats(Box<eve::StatsRecord>),
    /// Flush buffers now (end of an input, or a periodic flush).
    Flush,
}

/// Counters of the writer (`stats.output.*`).
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct OutputStats {
    /// `flow` records written.
    pub flow: u64,
    /// `alert` records written.
    pub alert: u64,
    /// `stats` records written.
    pub stats: u64,
    /// `anomaly` records written.
    pub anomaly: u64,
    /// Transaction records written.
    pub transaction: u64,
    /// `session` records written.
    pub session: u64,
    /// Records not written because the sink failed or went away.
    pub write_failed: u64,
    /// Records dropped because the output queue was full (live mode only).
    pub queue_dropped: u64,
}

/// Records per event kind in a [`OutMsg::Block`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KindCounts([u64; 6]);

impl KindCounts {
    fn slot(kind: EventKind) -> usize {
        match kind {
            EventKind::Flow => 0,
            EventKind::Alert => 1,
            EventKind::Stats => 2,
            EventKind::Anomaly => 3,
            EventKind::Transaction => 4,
            EventKind::Session => 5,
        }
    }

    /// Counts one record of `kind`.
    pub fn add(&mut self, kind: EventKind) {
        if let Some(c) = self.0.get_mut(Self::slot(kind)) {
            *c += 1;
        }
    }

    /// Records counted.
    pub fn total(&self) -> u64 {
        self.0.iter().sum()
    }
}

impl OutputStats {
    fn add_block(&mut self, c: &KindCounts) {
        let [flow, alert, stats, anomaly, transaction, session] = c.0;
        self.flow += flow;
        self.alert += alert;
        self.stats += stats;
        self.anomaly += anomaly;
        self.transaction += transaction;
        self.session += session;
    }

    fn count(&mut self, kind: EventKind) {
        match kind {
            EventKind::Flow => self.flow += 1,
            EventKind::Alert => self.alert += 1,
            EventKind::Stats => self.stats += 1,
            EventKind::Anomaly => self.anomaly += 1,
            EventKind::Transaction => self.transaction += 1,
            EventKind::Session => self.session += 1,
        }
    }
}

/// Where EVE lines go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// Standard output.
    Stdout,
    /// A file, opened for append.
    File(PathBuf),
}

impl Target {
    /// `-` means stdout.
    pub fn from_arg(s: &str) -> Target {
        if s == "-" {
            Target::Stdout
        } else {
            Target::File(PathBuf::from(s))
        }
    }
}

enum Sink {
    Stdout(BufWriter<io::Stdout>),
    File(BufWriter<File>),
    Gone,
}

/// Writes EVE lines to a target.
pub struct Writer {
    target: Target,
    sink: Sink,
    line: Vec<u8>,
    /// Counters.
    pub stats: OutputStats,
    /// The first write error, if any (a broken pipe is not one).
    pub error: Option<io::Error>,
}

impl Writer {
    /// Opens the target.
    pub fn open(target: Target) -> io::Result<Writer> {
        let sink = open_sink(&target)?;
        Ok(Writer {
            target,
            sink,
            line: Vec::with_capacity(4096),
            stats: OutputStats::default(),
            error: None,
        })
    }

    /// Writes one record line (a newline is added).
    pub fn write(&mut self, kind: EventKind, record: &[u8]) {
        self.line.clear();
        self.line.extend_from_slice(record);
        self.line.push(b'\n');
        let res = match &mut self.sink {
            Sink::Stdout(w) => w.write_all(&self.line),
            Sink::File(w) => w.write_all(&self.line),
            Sink::Gone => {
                self.stats.write_failed += 1;
                return;
            }
        };
        match res {
            Ok(()) => self.stats.count(kind),
            Err(e) => self.fail(e),
        }
    }

    /// Writes a block of whole lines in one call.
    pub fn write_block(&mut self, data: &[u8], counts: &KindCounts) {
        let res = match &mut self.sink {
            Sink::Stdout(w) => w.write_all(data),
            Sink::File(w) => w.write_all(data),
            Sink::Gone => {
                self.stats.write_failed += counts.total();
                return;
            }
        };
        match res {
            Ok(()) => self.stats.add_block(counts),
            Err(e) => {
                // A failed write_all may have written part of the block; every record in
                // it is counted as lost, and the sink is closed so nothing follows a torn line.
                self.stats.write_failed += counts.total().saturating_sub(1);
                self.fail(e);
            }
        }
    }

    /// Serialises and writes a stats record, adding this writer's counters.
    pub fn write_stats(&mut self, mut rec: eve::StatsRecord) {
        // Count this record before serialising so it reports itself.
        self.stats.stats += 1;
        rec.stats.output = self.stats.clone();
        match serde_json::to_vec(&rec) {
            Ok(line) => {
                self.stats.stats -= 1;
                self.write(EventKind::Stats, &line);
            }
            Err(_) => self.stats.stats -= 1,
        }
    }

    /// Writes a stats record already in serialised form (several workers' sum), adding this
    /// writer's counters as [`Writer::write_stats`] does.
    pub fn write_stats_value(&mut self, mut rec: serde_json::Value) {
        self.stats.stats += 1;
        let output = serde_json::to_value(&self.stats);
        self.stats.stats -= 1;
        if let (Ok(output), Some(body)) =
            (output, rec.get_mut("stats").and_then(|b| b.as_object_mut()))
        {
            body.insert("output".to_string(), output);
        }
        if let Ok(line) = serde_json::to_vec(&rec) {
            self.write(EventKind::Stats, &line);
        }
    }

    fn fail(&mut self, e: io::Error) {
        self.stats.write_failed += 1;
        if e.kind() != io::ErrorKind::BrokenPipe && self.error.is_none() {
            tracing::error!(error = %e, "EVE output failed; further records are counted as lost.");
            self.error = Some(e);
        }
        self.sink = Sink::Gone;
    }

    /// Flushes buffered lines.
    pub fn flush(&mut self) {
        let res = match &mut self.sink {
            Sink::Stdout(w) => w.flush(),
            Sink::File(w) => w.flush(),
            Sink::Gone => Ok(()),
        };
        if let Err(e) = res {
            self.fail(e);
        }
    }

    /// Flushes and reopens the target (log rotation).
    pub fn reopen(&mut self) -> io::Result<()> {
        self.flush();
        self.sink = open_sink(&self.target)?;
        Ok(())
    }

    /// Handles one channel message.
    pub fn handle(&mut self, msg: OutMsg) {
        match msg {
            OutMsg::Line(kind, line) => self.write(kind, &line),
            OutMsg::Block(data, counts) => self.write_block(&data, &counts),
            OutMsg::Stats(rec) => self.write_stats(*rec),
            OutMsg::Flush => self.flush(),
        }
    }
}

fn open_sink(target: &Target) -> io::Result<Sink> {
    Ok(match target {
        Target::Stdout => Sink::Stdout(BufWriter::with_capacity(1 << 16, io::stdout())),
        Target::File(p) => {
            let f = OpenOptions::new().create(true).append(true).open(p)?;
            Sink::File(BufWriter::with_capacity(1 << 16, f))
        }
    })
}
