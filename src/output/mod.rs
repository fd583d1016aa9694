//! Output stage: EVE JSON records (schema in [`eve`]), the queues that carry them from the
//! workers ([`queue`]), and the writer thread's sink.
//!
//! Workers serialise records into owned lines; the writer thread only writes. The writer
//! survives a sink that stops taking data (a full disk, a quota, an I/O error): it keeps
//! the unwritten bytes (up to `[output] max_backlog_bytes`), stops taking messages when that is full so
//! the queues fill behind it, retries every [`RETRY_INTERVAL`] and on SIGHUP (which
//! reopens the file), and carries on where it stopped once the sink takes data again.
//! A file never keeps half a line: a line cut short by the error is completed when writing
//! resumes, and cut off (the file truncated back to the last whole line) when the file is
//! reopened or the writer gives up. A broken pipe on stdout means the reader went away
//! (`| head`): the writer stops for good and asks the run to end.

pub mod eve;
pub mod merge;
pub mod queue;

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde::Serialize;

/// The EVE event types this sensor writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// `alert`.
    Alert,
    /// `flow`.
    Flow,
    /// `session`.
    Session,
    /// `ftp` transactions.
    Ftp,
    /// `smb` transactions.
    Smb,
    /// `tftp` transfers.
    Tftp,
    /// `anomaly`.
    Anomaly,
    /// `stats`.
    Stats,
}

impl EventKind {
    /// Every kind, in the order of the stats fields.
    pub const ALL: [EventKind; 8] = [
        EventKind::Alert,
        EventKind::Flow,
        EventKind::Session,
        EventKind::Ftp,
        EventKind::Smb,
        EventKind::Tftp,
        EventKind::Anomaly,
        EventKind::Stats,
    ];

    /// The EVE `event_type` value.
    pub fn label(self) -> &'static str {
        match self {
            EventKind::Alert => "alert",
            EventKind::Flow => "flow",
            EventKind::Session => "session",
            EventKind::Ftp => "ftp",
            EventKind::Smb => "smb",
            EventKind::Tftp => "tftp",
            EventKind::Anomaly => "anomaly",
            EventKind::Stats => "stats",
        }
    }

    /// The kind with this `event_type` value.
    pub fn from_label(label: &[u8]) -> Option<EventKind> {
        EventKind::ALL
            .into_iter()
            .find(|k| k.label().as_bytes() == label)
    }
}

/// Records per event type: the contents of a block, or a counter of `stats.output`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct KindCounts {
    /// `alert` records.
    pub alert: u64,
    /// `flow` records.
    pub flow: u64,
    /// `session` records.
    pub session: u64,
    /// `ftp` records.
    pub ftp: u64,
    /// `smb` records.
    pub smb: u64,
    /// `tftp` records.
    pub tftp: u64,
    /// `anomaly` records.
    pub anomaly: u64,
    /// `stats` records.
    pub stats: u64,
}

impl KindCounts {
    fn slot(&mut self, kind: EventKind) -> &mut u64 {
        match kind {
            EventKind::Alert => &mut self.alert,
            EventKind::Flow => &mut self.flow,
            EventKind::Session => &mut self.session,
            EventKind::Ftp => &mut self.ftp,
            EventKind::Smb => &mut self.smb,
            EventKind::Tftp => &mut self.tftp,
            EventKind::Anomaly => &mut self.anomaly,
            EventKind::Stats => &mut self.stats,
        }
    }

    /// Counts one record of `kind`.
    pub fn add(&mut self, kind: EventKind) {
        *self.slot(kind) += 1;
    }

    /// Adds every count of `other`.
    pub fn add_all(&mut self, other: &KindCounts) {
        for k in EventKind::ALL {
            *self.slot(k) += other.get(k);
        }
    }

    /// The count of `kind`.
    pub fn get(&self, kind: EventKind) -> u64 {
        let mut c = *self;
        *c.slot(kind)
    }

    /// Records counted, all kinds.
    pub fn total(&self) -> u64 {
        EventKind::ALL.into_iter().map(|k| self.get(k)).sum()
    }

    /// Subtracts every count of `other` (saturating).
    pub fn sub_all(&mut self, other: &KindCounts) {
        for k in EventKind::ALL {
            let c = self.slot(k);
            *c = c.saturating_sub(other.get(k));
        }
    }

    /// Counts the whole lines of `data` by their `event_type` (lines of another type, or
    /// without one, are not counted).
    pub fn of_lines(data: &[u8]) -> KindCounts {
        let mut c = KindCounts::default();
        for line in data.split(|&b| b == b'\n') {
            if let Some(kind) = event_kind_of(line) {
                c.add(kind);
            }
        }
        c
    }
}

/// The `event_type` of one serialised record (serde_json's compact form, as written here).
fn event_kind_of(line: &[u8]) -> Option<EventKind> {
    const KEY: &[u8] = b"\"event_type\":\"";
    let at = line.windows(KEY.len()).position(|w| w == KEY)?;
    let rest = line.get(at + KEY.len()..)?;
    let end = rest.iter().position(|&b| b == b'"')?;
    EventKind::from_label(rest.get(..end)?)
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

impl OutMsg {
    /// The records this message carries, per event type.
    pub fn counts(&self) -> KindCounts {
        let mut c = KindCounts::default();
        match self {
            OutMsg::Line(kind, _) => c.add(*kind),
            OutMsg::Block(_, counts) => c = *counts,
            OutMsg::Stats(_) => c.add(EventKind::Stats),
            OutMsg::Flush => {}
        }
        c
    }
}

/// Counters of the output side (`stats.output.*`). For every event type,
/// `written + queue_dropped + write_failed` is the number of records the workers made.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct OutputStats {
    /// Records the writer took, in file order, to be written. Records that never reach the
    /// sink after all (see `write_failed`) are moved out of this count.
    pub written: KindCounts,
    /// Live mode: records dropped because their queue was full (replay waits instead).
    pub queue_dropped: KindCounts,
    /// Records lost at the writer: the reader of stdout went away, or the run ended while
    /// the sink was still failing.
    pub write_failed: KindCounts,
    /// Write attempts that failed (each is retried).
    pub write_errors: u64,
    /// Times the sink stopped taking data.
    pub stalls: u64,
    /// Times the output was reopened (SIGHUP).
    pub reopens: u64,
    /// Bytes waiting for the sink when this record was made.
    pub backlog_bytes: u64,
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

/// Bytes gathered before a write is attempted.
const WRITE_AT: usize = 1 << 16;
/// Unwritten bytes a writer holds unless told otherwise ([`Writer::set_max_backlog`]).
pub const DEFAULT_MAX_BACKLOG: usize = 4 << 20;
/// How often a failing sink is tried again.
pub const RETRY_INTERVAL: Duration = Duration::from_millis(500);

enum Sink {
    /// Standard output, through its own handle on fd 1 so that Rust's line buffering on
    /// `Stdout` does not split or hold our writes.
    Stdout(File),
    File(File),
    #[cfg(test)]
    Test(tests::MockSink),
    /// The reader went away or the writer gave up: records are counted, not written.
    Gone,
}

impl Sink {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        match self {
            Sink::Stdout(f) | Sink::File(f) => f.write(data),
            #[cfg(test)]
            Sink::Test(m) => m.write(data),
            Sink::Gone => Err(io::ErrorKind::BrokenPipe.into()),
        }
    }

    /// Cuts the file back by `torn` bytes: the start of a line that the failure cut short.
    /// Only a file can be cut; elsewhere the half line stays where it went.
    fn cut(&mut self, torn: usize) -> io::Result<bool> {
        match self {
            Sink::File(f) => {
                let len = f.metadata()?.len();
                f.set_len(len.saturating_sub(torn as u64))?;
                Ok(true)
            }
            #[cfg(test)]
            Sink::Test(m) => m.cut(torn),
            _ => Ok(false),
        }
    }
}

/// A failing sink.
#[derive(Debug)]
struct Stall {
    since: Instant,
    last_try: Instant,
    error: io::Error,
}

/// Writes EVE lines to a target, holding them through a sink failure.
pub struct Writer {
    target: Target,
    sink: Sink,
    /// Lines taken and not yet written; `buf[..head]` is written.
    buf: Vec<u8>,
    head: usize,
    /// Bytes of the current line already in the sink (0: the sink ends on a line break).
    torn: usize,
    stall: Option<Stall>,
    /// The run is over for this sink (stdout's reader went away): the run should stop.
    closed: bool,
    max_backlog: usize,
    /// Counters.
    pub stats: OutputStats,
    /// Why records were lost at the writer, if they were (a closed stdout is not a loss).
    pub error: Option<io::Error>,
}

impl Writer {
    /// Opens the target.
    pub fn open(target: Target) -> io::Result<Writer> {
        let sink = open_sink(&target)?;
        Ok(Writer::with_sink(target, sink))
    }

    fn with_sink(target: Target, sink: Sink) -> Writer {
        Writer {
            target,
            sink,
            buf: Vec::with_capacity(WRITE_AT * 2),
            head: 0,
            torn: 0,
            stall: None,
            closed: false,
            max_backlog: DEFAULT_MAX_BACKLOG,
            stats: OutputStats::default(),
            error: None,
        }
    }

    /// Takes whole lines (each ending in a newline) holding the records in `counts`.
    fn take(&mut self, data: &[u8], counts: &KindCounts) {
        if matches!(self.sink, Sink::Gone) {
            self.stats.write_failed.add_all(counts);
            return;
        }
        self.stats.written.add_all(counts);
        self.buf.extend_from_slice(data);
        if self.stall.is_none() && self.backlog() >= WRITE_AT.min(self.max_backlog) {
            self.write_out();
        }
    }

    /// Writes one record line (a newline is added).
    pub fn write(&mut self, kind: EventKind, record: &[u8]) {
        let mut counts = KindCounts::default();
        counts.add(kind);
        if matches!(self.sink, Sink::Gone) {
            self.stats.write_failed.add_all(&counts);
            return;
        }
        self.stats.written.add_all(&counts);
        self.buf.extend_from_slice(record);
        self.buf.push(b'\n');
        if self.stall.is_none() && self.backlog() >= WRITE_AT.min(self.max_backlog) {
            self.write_out();
        }
    }

    /// Takes a block of whole lines.
    pub fn write_block(&mut self, data: &[u8], counts: &KindCounts) {
        self.take(data, counts);
    }

    /// Serialises and writes a stats record, adding this writer's counters.
    pub fn write_stats(&mut self, mut rec: eve::StatsRecord) {
        rec.stats.output = self.output_snapshot();
        match serde_json::to_vec(&rec) {
            Ok(line) => self.write(EventKind::Stats, &line),
            Err(_) => self.stats.write_failed.add(EventKind::Stats),
        }
    }

    /// Writes a stats record already in serialised form (several workers' sum), adding this
    /// writer's counters as [`Writer::write_stats`] does.
    pub fn write_stats_value(&mut self, mut rec: serde_json::Value) {
        let output = serde_json::to_value(self.output_snapshot());
        if let (Ok(output), Some(body)) =
            (output, rec.get_mut("stats").and_then(|b| b.as_object_mut()))
        {
            body.insert("output".to_string(), output);
        }
        match serde_json::to_vec(&rec) {
            Ok(line) => self.write(EventKind::Stats, &line),
            Err(_) => self.stats.write_failed.add(EventKind::Stats),
        }
    }

    /// The writer's counters as the stats record about to be written reports them: that
    /// record counts itself.
    fn output_snapshot(&self) -> OutputStats {
        let mut snapshot = self.stats.clone();
        if matches!(self.sink, Sink::Gone) {
            snapshot.write_failed.add(EventKind::Stats);
        } else {
            snapshot.written.add(EventKind::Stats);
        }
        snapshot.backlog_bytes = self.backlog() as u64;
        snapshot
    }

    /// Unwritten bytes held.
    pub fn backlog(&self) -> usize {
        self.buf.len().saturating_sub(self.head)
    }

    /// Most unwritten bytes to hold; beyond this the writer takes no more messages, so the
    /// queues fill and the workers wait (replay) or drop and count (live).
    pub fn set_max_backlog(&mut self, bytes: usize) {
        self.max_backlog = bytes.max(1);
    }

    /// Whether the writer may take another message (its backlog is below the bound).
    pub fn has_room(&self) -> bool {
        self.backlog() < self.max_backlog
    }

    /// Whether the sink is failing.
    pub fn stalled(&self) -> bool {
        self.stall.is_some()
    }

    /// How long the sink has been failing.
    pub fn stalled_for(&self) -> Option<Duration> {
        self.stall.as_ref().map(|s| s.since.elapsed())
    }

    /// Whether stdout's reader went away, so the run should end.
    pub fn closed(&self) -> bool {
        self.closed
    }

    /// Writes what is held, unless the sink is failing (see [`Writer::retry_if_due`]).
    pub fn flush(&mut self) {
        if self.stall.is_none() {
            self.write_out();
        }
    }

    /// Tries a failing sink again once [`RETRY_INTERVAL`] has passed since the last try.
    pub fn retry_if_due(&mut self) {
        if self
            .stall
            .as_ref()
            .is_some_and(|s| s.last_try.elapsed() >= RETRY_INTERVAL)
        {
            self.write_out();
        }
    }

    /// Writes as much of the backlog as the sink takes.
    fn write_out(&mut self) {
        while let Some(rest) = self.buf.get(self.head..)
            && !rest.is_empty()
        {
            match self.sink.write(rest) {
                Ok(0) => {
                    self.failed(io::ErrorKind::WriteZero.into());
                    return;
                }
                Ok(n) => {
                    let done = rest.get(..n).unwrap_or_default();
                    self.torn = match done.iter().rposition(|&b| b == b'\n') {
                        Some(i) => n - i - 1,
                        None => self.torn + n,
                    };
                    self.head += n;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.failed(e);
                    return;
                }
            }
        }
        self.buf.clear();
        self.head = 0;
        if let Some(s) = self.stall.take() {
            tracing::info!(
                stalled_ms = s.since.elapsed().as_millis() as u64,
                write_errors = self.stats.write_errors,
                "EVE output takes data again; writing resumed."
            );
        }
    }

    fn failed(&mut self, e: io::Error) {
        if e.kind() == io::ErrorKind::BrokenPipe && self.target == Target::Stdout {
            // Nobody reads stdout any more (`| head`): nothing will ever be written again.
            tracing::info!("EVE reader went away (broken pipe on stdout); the run ends.");
            self.closed = true;
            self.discard(None);
            return;
        }
        self.stats.write_errors += 1;
        // Drop what is written and keep the rest, so the backlog bound counts only
        // unwritten bytes (the cut-short line stays: a reopen may need to write it again).
        let line_start = self.head.saturating_sub(self.torn);
        if line_start > WRITE_AT {
            self.buf.drain(..line_start);
            self.head -= line_start;
        }
        match &mut self.stall {
            Some(s) => {
                s.last_try = Instant::now();
                s.error = e;
            }
            None => {
                self.stats.stalls += 1;
                tracing::warn!(
                    error = %e,
                    backlog_bytes = self.backlog() as u64,
                    "EVE output stalled; lines are held and retried (replay waits, live drops and counts)."
                );
                let now = Instant::now();
                self.stall = Some(Stall {
                    since: now,
                    last_try: now,
                    error: e,
                });
            }
        }
    }

    /// Ends writing for good: a line cut short is cut from the file, and every record not
    /// wholly written is counted in `write_failed`. `why` is the error that made records be
    /// lost (none when the reader went away).
    fn discard(&mut self, why: Option<io::Error>) {
        let line_start = self.head.saturating_sub(self.torn);
        let lost = KindCounts::of_lines(self.buf.get(line_start..).unwrap_or_default());
        if self.torn > 0
            && let Err(e) = self.sink.cut(self.torn)
        {
            tracing::error!(error = %e, "Cannot cut the half-written last line from the EVE file.");
        }
        self.stats.written.sub_all(&lost);
        self.stats.write_failed.add_all(&lost);
        self.buf.clear();
        self.head = 0;
        self.torn = 0;
        self.stall = None;
        self.sink = Sink::Gone;
        if let Some(e) = why {
            tracing::error!(
                error = %e,
                lost = lost.total(),
                "EVE output still failing at the end of the run; held records are lost."
            );
            self.error.get_or_insert(e);
        }
    }

    /// Gives up on a failing sink (the run is ending): held records are lost and counted
    /// in `write_failed`, and the file ends on a whole line.
    pub fn give_up(&mut self) {
        let why = self
            .stall
            .take()
            .map(|s| s.error)
            .unwrap_or_else(|| io::ErrorKind::Other.into());
        if self.backlog() > 0 || self.torn > 0 {
            self.discard(Some(why));
        }
    }

    /// Reopens the target (SIGHUP: log rotation, or "try now"). A line cut short in the old
    /// file is cut off there and written whole to the new one.
    pub fn reopen(&mut self) -> io::Result<()> {
        if matches!(self.sink, Sink::Gone) {
            return Ok(());
        }
        self.write_out();
        if self.torn > 0 {
            match self.sink.cut(self.torn) {
                Ok(true) => {
                    self.head -= self.torn;
                    self.torn = 0;
                }
                Ok(false) => {}
                Err(e) => {
                    tracing::error!(error = %e, "Cannot cut the half-written last line from the old EVE file.");
                }
            }
        }
        self.stats.reopens += 1;
        let opened = if self.torn == 0 {
            open_sink(&self.target).map(|s| self.sink = s)
        } else {
            // The half line could not be taken back: it must be finished where it started.
            Ok(())
        };
        // Whether or not the new file opened, try writing now rather than at the next retry.
        self.write_out();
        opened
    }

    /// Handles one queue message.
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
        Target::Stdout => {
            use std::os::fd::AsFd;
            Sink::Stdout(File::from(io::stdout().as_fd().try_clone_to_owned()?))
        }
        Target::File(p) => Sink::File(OpenOptions::new().create(true).append(true).open(p)?),
    })
}

#[cfg(test)]
mod tests;
