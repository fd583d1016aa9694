//! Pipeline: capture on the calling thread, `[capture] workers` worker threads (frames
//! sharded by [`crate::shard`]), one writer thread, joined by bounded queues.
//!
//! Replay never drops: when a queue is full the reader waits. Live capture never waits:
//! a batch that finds its worker's queue full is dropped and counted
//! (`stats.capture.queue_dropped`), and records that find their writer queue full are
//! dropped and counted per event type (`stats.output.queue_dropped`), so the kernel buffer
//! keeps draining. Alerts have their own, larger writer queue ([`crate::output::queue`]).
//! A writer whose sink fails (full disk) holds its backlog and retries, so the queues fill
//! behind it; a broken pipe on stdout sets the stop flag, as the reader went away.
//! Batches are recycled through a return channel, so steady state allocates nothing per
//! packet.
//!
//! Signals ([`Signals`]): SIGINT/SIGTERM set a stop flag that the reader checks between
//! frames (live: at least once per read timeout), flows then end with reason `shutdown` and
//! the final stats record is written; a second one exits at once. SIGHUP makes the writer
//! reopen its file at the next record boundary (so no line is ever split across files) and
//! the reader re-read the config; new settings reach every worker between two batches.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, TrySendError, bounded};
use thiserror::Error;

use crate::capture::live::{LiveCapture, LiveClock, LiveError, LiveOptions};
use crate::capture::{self, Batch, CaptureError, Input, ReadStats};
use crate::config::Config;
use crate::engine::{Engine, EngineSettings};
use crate::flow::EndReason;
use crate::output::merge::StatsMerger;
use crate::output::queue::{self, OutReceiver, RecvError};
use crate::output::{OutMsg, Target, Writer};
use crate::privileges::{PrivilegeError, Privileges};
use crate::shard::Sharder;
use crate::time::Ts;

/// Where frames come from.
#[derive(Debug, Clone)]
pub enum Source {
    /// Capture files, read in order.
    Files(Vec<Input>),
    /// A live interface.
    Live(LiveOptions),
}

/// The config file to re-read on SIGHUP, and the configuration in force.
#[derive(Debug, Clone)]
pub struct ReloadSource {
    /// The file given with `-c`.
    pub path: PathBuf,
    /// The configuration the run started with (updated by each good reload).
    pub config: Config,
}

/// Everything a run needs.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Frame source.
    pub source: Source,
    /// BPF filter expression for files (live capture compiles its own into the kernel).
    pub bpf: Option<String>,
    /// EVE output.
    pub output: Target,
    /// Worker settings.
    pub engine: EngineSettings,
    /// Frames per batch.
    pub batch_packets: usize,
    /// Batches in flight.
    pub queue_batches: usize,
    /// Records in flight to the writer (alerts excepted).
    pub queue_records: usize,
    /// Alert records in flight to the writer.
    pub queue_alerts: usize,
    /// Unwritten bytes the writer holds while its sink fails.
    pub max_backlog: usize,
    /// Worker threads (frames are sharded over them; see [`crate::shard`]).
    pub workers: usize,
    /// Largest capture record accepted.
    pub max_record: usize,
    /// Show a progress bar on stderr.
    pub progress: bool,
    /// Config to re-read on SIGHUP (none: SIGHUP only reopens the output).
    pub reload: Option<ReloadSource>,
    /// Whom to become once the capture and the output are open.
    pub privileges: Option<Privileges>,
}

/// The flags signal handlers set; shared with the threads that act on them.
#[derive(Debug, Clone, Default)]
pub struct Signals {
    /// SIGINT/SIGTERM: stop.
    pub stop: Arc<AtomicBool>,
    /// SIGHUP: reopen the output.
    pub reopen: Arc<AtomicBool>,
    /// SIGHUP: re-read the config.
    pub reload: Arc<AtomicBool>,
}

impl Signals {
    /// Flags that no handler sets yet.
    pub fn new() -> Signals {
        Signals::default()
    }

    /// Installs the handlers: SIGINT/SIGTERM stop (a second one exits at once with status
    /// 130), SIGHUP reopens the output and re-reads the config.
    pub fn install(&self) -> std::io::Result<()> {
        use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
        for sig in [SIGINT, SIGTERM] {
            // Registered before the flag itself: it fires only if the flag is already set,
            // i.e. on the second signal.
            signal_hook::flag::register_conditional_shutdown(sig, 130, Arc::clone(&self.stop))?;
            signal_hook::flag::register(sig, Arc::clone(&self.stop))?;
        }
        signal_hook::flag::register(SIGHUP, Arc::clone(&self.reopen))?;
        signal_hook::flag::register(SIGHUP, Arc::clone(&self.reload))?;
        Ok(())
    }
}

/// Setup failures (exit code 1).
#[derive(Debug, Error)]
pub enum SetupError {
    /// The output could not be opened.
    #[error("cannot open EVE output {path}: {source}")]
    Output {
        /// Path.
        path: String,
        /// Cause.
        source: std::io::Error,
    },
    /// The BPF expression does not compile.
    #[error("invalid BPF filter {expr:?}: {reason}")]
    Bpf {
        /// The expression.
        expr: String,
        /// libpcap's message.
        reason: String,
    },
    /// The live capture could not be opened.
    #[error(transparent)]
    Live(#[from] LiveError),
    /// Privileges could not be dropped.
    #[error("cannot drop privileges: {0}")]
    Privileges(#[from] PrivilegeError),
    /// A thread could not be started.
    #[error("cannot start thread: {0}")]
    Thread(std::io::Error),
}

/// What happened, for the exit code.
#[derive(Debug, Default)]
pub struct RunOutcome {
    /// Inputs that failed part-way (exit code 2).
    pub input_errors: Vec<CaptureError>,
    /// The output failed (records were lost).
    pub output_error: Option<std::io::Error>,
    /// Frames read.
    pub frames: u64,
    /// The run was stopped by a signal.
    pub interrupted: bool,
}

enum Work {
    Batch(Batch, ReadStats),
    /// Live capture on a quiet wire: packet time moves on without a packet.
    Tick(Ts, ReadStats),
    /// New settings (SIGHUP); the flag asks for a new detector.
    Reload(Box<EngineSettings>, bool),
    Done(ReadStats, EndReason),
}

impl ReloadSource {
    /// Re-reads the file. Returns the work item for the worker, or `None` when the file is
    /// invalid (the running configuration stays; the reason is logged) or unchanged.
    fn reload(&mut self, replay: bool) -> Option<(EngineSettings, bool)> {
        let new = match Config::load(&self.path) {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e, "Config reload failed; the running configuration stays.");
                return None;
            }
        };
        let old = &self.config;
        if &new == old {
            tracing::info!(path = %self.path.display(), "Config reloaded; nothing changed.");
            return None;
        }
        let restart_only = [
            ("[capture]", new.capture != old.capture),
            (
                "[output] eve, queue_records, queue_alerts and max_backlog_bytes",
                {
                    new.output.eve != old.output.eve
                        || new.output.queue_records != old.output.queue_records
                        || new.output.queue_alerts != old.output.queue_alerts
                        || new.output.max_backlog_bytes != old.output.max_backlog_bytes
                },
            ),
            ("[sessions]", new.sessions != old.sessions),
        ];
        for (what, changed) in restart_only {
            if changed {
                tracing::warn!(
                    section = what,
                    "Config change needs a restart; the old values stay until then."
                );
            }
        }
        let new_detector = new.thresholds != old.thresholds
            || new.suppression != old.suppression
            || new.allowlist != old.allowlist
            || new.detect != old.detect;
        if new_detector {
            tracing::warn!(
                "Detection settings changed: windows and suppression state start again from empty."
            );
        }
        let settings = EngineSettings::from_config(&new, replay);
        self.config = new;
        tracing::info!(path = %self.path.display(), "Config reloaded.");
        Some((settings, new_detector))
    }
}

/// Checks that a BPF expression compiles (against Ethernet).
pub fn check_bpf(expr: &str) -> Result<(), SetupError> {
    compile_bpf(expr, crate::decode::linktype::ETHERNET).map(|_| ())
}

fn compile_bpf(expr: &str, linktype: u32) -> Result<pcap::BpfProgram, SetupError> {
    let err = |reason: String| SetupError::Bpf {
        expr: expr.to_string(),
        reason,
    };
    let lt =
        i32::try_from(linktype).map_err(|_| err(format!("link type {linktype} out of range")))?;
    let dead = pcap::Capture::dead(pcap::Linktype(lt)).map_err(|e| err(e.to_string()))?;
    dead.compile(expr, true).map_err(|e| err(e.to_string()))
}

/// Runs the pipeline to the end of all inputs, or until `signals.stop` is set.
pub fn run(opts: RunOptions, signals: &Signals) -> Result<RunOutcome, SetupError> {
    // Open everything that needs privileges first: the capture, then the output file.
    let mut live = match &opts.source {
        Source::Live(l) => Some(LiveCapture::open(l)?),
        Source::Files(_) => {
            if let Some(expr) = &opts.bpf {
                check_bpf(expr)?;
            }
            None
        }
    };
    let mut writer = Writer::open(opts.output.clone()).map_err(|source| SetupError::Output {
        path: match &opts.output {
            Target::Stdout => "-".to_string(),
            Target::File(p) => p.display().to_string(),
        },
        source,
    })?;
    writer.set_max_backlog(opts.max_backlog);
    if let Some(p) = &opts.privileges {
        crate::privileges::drop_privileges(p)?;
    }
    let n = opts.workers.clamp(1, MAX_WORKERS);
    let (out_tx, out_rx) = queue::queues(opts.queue_records.max(16), opts.queue_alerts.max(16));
    if live.is_none() {
        out_rx.take_in_send_order();
    }
    let (free_tx, free_rx) = bounded::<Batch>(n * (opts.queue_batches.max(1) + 2));

    let writer_signals = signals.clone();
    let writer_handle = thread::Builder::new()
        .name("xw-writer".into())
        .spawn(move || writer_loop(writer, out_rx, &writer_signals, n))
        .map_err(SetupError::Thread)?;
    let mut txs = Vec::with_capacity(n);
    let mut worker_handles = Vec::with_capacity(n);
    for i in 0..n {
        let (work_tx, work_rx) = bounded::<Work>(opts.queue_batches.max(1));
        let mut engine = Engine::new(opts.engine.shared_by(n), out_tx.clone());
        engine.set_worker(u16::try_from(i).unwrap_or(u16::MAX));
        if live.is_some() {
            engine.drop_when_full();
        }
        let free = free_tx.clone();
        let handle = thread::Builder::new()
            .name(format!("xw-worker-{i}"))
            .spawn(move || worker_loop(engine, work_rx, free))
            .map_err(SetupError::Thread)?;
        txs.push(work_tx);
        worker_handles.push(handle);
    }
    drop(out_tx);
    drop(free_tx);
    if n > 1 {
        tracing::info!(
            workers = n,
            "Frames are shared out by internal host (or host pair)."
        );
    }

    crate::notify::notify("READY=1");
    let mut outcome = RunOutcome::default();
    let mut reload = opts.reload.clone();
    let mut workers = Workers::new(txs, free_rx, &opts, live.is_some());
    let (stats, reason) = match live.as_mut() {
        Some(cap) => read_live(cap, signals, &mut reload, &mut workers, &mut outcome),
        None => read_all(&opts, signals, &mut reload, &mut workers, &mut outcome),
    };
    crate::notify::notify("STOPPING=1");
    workers.finish(stats, reason);
    for h in worker_handles {
        let _ = h.join();
    }
    if let Ok(w) = writer_handle.join() {
        outcome.output_error = w;
    }
    Ok(outcome)
}

/// More workers than this gain nothing on any machine this runs on, and each one costs
/// threads and memory.
const MAX_WORKERS: usize = 64;

/// With several workers, replay brings every worker's clock up to the reader's at least
/// once per this much packet time, so flows of a quiet worker time out as they would on a
/// single one.
const SYNC_NANOS: u64 = Ts::NANOS_PER_SEC;

/// The reader's side of the workers: one partly filled batch and one queue per worker.
///
/// Replay waits on a full queue (nothing is lost); live capture never waits: a batch that
/// finds its worker's queue full is dropped and counted (`stats.capture.queue_dropped`).
struct Workers {
    txs: Vec<Sender<Work>>,
    batches: Vec<Batch>,
    /// Work that found a live worker's queue full (a reload), retried until it fits.
    pending: Vec<Option<Work>>,
    free_rx: Receiver<Batch>,
    sharder: Sharder,
    batch_packets: usize,
    live: bool,
    /// Packet time of the newest frame read.
    now: Ts,
    /// Packet time of the last frame read (behind `now` when the input went back in time).
    last: Ts,
    /// Packet time every worker was last brought up to (replay with several workers).
    synced: Ts,
}

impl Workers {
    fn new(
        txs: Vec<Sender<Work>>,
        free_rx: Receiver<Batch>,
        opts: &RunOptions,
        live: bool,
    ) -> Workers {
        let n = txs.len();
        let batch_packets = opts.batch_packets.max(1);
        Workers {
            batches: (0..n)
                .map(|_| Batch::with_capacity(batch_packets))
                .collect(),
            pending: (0..n).map(|_| None).collect(),
            txs,
            free_rx,
            sharder: Sharder::new(n, opts.engine.zones.clone(), opts.engine.max_fragments),
            batch_packets,
            live,
            now: Ts(0),
            last: Ts(0),
            synced: Ts(0),
        }
    }

    /// Queues a frame on its worker's batch. Returns true when a batch is full or the
    /// workers' clocks are due (call [`Workers::ship`]).
    fn push(&mut self, ts: Ts, linktype: u32, wire_len: u32, pcap_cnt: u64, data: &[u8]) -> bool {
        let w = self.sharder.worker(linktype, data, wire_len, ts);
        if ts > self.now {
            self.now = ts;
        }
        self.last = ts;
        let full = match self.batches.get_mut(w) {
            Some(b) => {
                b.push(ts, linktype, wire_len, pcap_cnt, data);
                b.len() >= self.batch_packets
            }
            None => false,
        };
        full || self.sync_due()
    }

    fn sync_due(&self) -> bool {
        !self.live && self.txs.len() > 1 && self.now.since(self.synced) >= SYNC_NANOS
    }

    /// Sends every full batch, and brings every worker's clock up to date when due.
    fn ship(&mut self, stats: &mut ReadStats) {
        for w in 0..self.batches.len() {
            if self
                .batches
                .get(w)
                .is_some_and(|b| b.len() >= self.batch_packets)
            {
                self.send(w, stats);
            }
        }
        if self.sync_due() {
            // A worker's pending frames go before the tick, so its clock never passes
            // a frame it has not seen.
            self.flush(stats);
            let now = self.now;
            for w in 0..self.txs.len() {
                self.tick(w, now, stats);
            }
            self.synced = now;
        }
    }

    /// Sends worker `w`'s batch (live: drops it, counted, when the queue is full).
    fn send(&mut self, w: usize, stats: &mut ReadStats) {
        let (Some(batch), Some(tx)) = (self.batches.get_mut(w), self.txs.get(w)) else {
            return;
        };
        if batch.is_empty() {
            return;
        }
        // The reader is the only sender, so a queue that is not full now has room below.
        if self.live && tx.is_full() {
            stats.queue_dropped += batch.len() as u64;
            batch.clear();
            return;
        }
        let next = self
            .free_rx
            .try_recv()
            .unwrap_or_else(|_| Batch::with_capacity(self.batch_packets));
        let full = std::mem::replace(batch, next);
        if self.live {
            if let Err(TrySendError::Full(Work::Batch(b, _))) =
                tx.try_send(Work::Batch(full, stats.clone()))
            {
                stats.queue_dropped += b.len() as u64;
            }
        } else {
            let _ = tx.send(Work::Batch(full, stats.clone()));
        }
    }

    /// Sends every partly filled batch.
    fn flush(&mut self, stats: &mut ReadStats) {
        for w in 0..self.batches.len() {
            self.send(w, stats);
        }
    }

    /// Moves worker `w`'s packet time on without a packet. Live: skipped when its queue is
    /// full (the next batch carries the time anyway).
    fn tick(&self, w: usize, now: Ts, stats: &ReadStats) {
        let Some(tx) = self.txs.get(w) else { return };
        if self.live {
            let _ = tx.try_send(Work::Tick(now, stats.clone()));
        } else {
            let _ = tx.send(Work::Tick(now, stats.clone()));
        }
    }

    /// Live: ticks every worker with nothing queued in this reader.
    fn tick_idle(&self, now: Ts, stats: &ReadStats) {
        for (w, b) in self.batches.iter().enumerate() {
            if b.is_empty() {
                self.tick(w, now, stats);
            }
        }
    }

    fn any_queued(&self) -> bool {
        self.batches.iter().any(|b| !b.is_empty())
    }

    /// Hands new settings to every worker, each its share of the caps. Replay waits;
    /// live keeps what does not fit and retries in [`Workers::retry`].
    fn reload(&mut self, settings: &EngineSettings, new_detector: bool) {
        let n = self.txs.len();
        for w in 0..n {
            let work = Work::Reload(Box::new(settings.shared_by(n)), new_detector);
            if let Some(slot) = self.pending.get_mut(w) {
                *slot = Some(work);
            }
        }
        if self.live {
            self.retry();
        } else {
            for (tx, slot) in self.txs.iter().zip(self.pending.iter_mut()) {
                if let Some(work) = slot.take() {
                    let _ = tx.send(work);
                }
            }
        }
    }

    /// Live: offers held work again without waiting.
    fn retry(&mut self) {
        for (tx, slot) in self.txs.iter().zip(self.pending.iter_mut()) {
            if let Some(work) = slot.take()
                && let Err(TrySendError::Full(work)) = tx.try_send(work)
            {
                *slot = Some(work);
            }
        }
    }

    /// End of the run: held work and every partial batch go out (waiting now, since capture
    /// has stopped), then each worker ends its flows.
    fn finish(mut self, stats: ReadStats, reason: EndReason) {
        for (tx, slot) in self.txs.iter().zip(self.pending.iter_mut()) {
            if let Some(work) = slot.take() {
                let _ = tx.send(work);
            }
        }
        for (tx, batch) in self.txs.iter().zip(self.batches.drain(..)) {
            if !batch.is_empty() {
                let _ = tx.send(Work::Batch(batch, stats.clone()));
            }
        }
        // Every worker ends at the reader's last frame, not at its own, so a flow's end
        // reason does not depend on which worker held it.
        for tx in &self.txs {
            let _ = tx.send(Work::Tick(self.last, stats.clone()));
            let _ = tx.send(Work::Done(stats.clone(), reason));
        }
    }
}

/// Re-reads the config when SIGHUP asked for it and hands it to the workers.
fn reload_now(
    signals: &Signals,
    reload: &mut Option<ReloadSource>,
    workers: &mut Workers,
    replay: bool,
) {
    if !signals.reload.swap(false, Ordering::Relaxed) {
        return;
    }
    match reload.as_mut() {
        Some(r) => {
            if let Some((settings, new_detector)) = r.reload(replay) {
                workers.reload(&settings, new_detector);
            }
        }
        None => {
            tracing::info!("SIGHUP: no config file (-c) to re-read; the output is reopened.");
        }
    }
}

/// How long a live capture keeps reading already-captured frames after a stop request.
const STOP_DRAIN: std::time::Duration = std::time::Duration::from_millis(1000);

/// The live capture side: frames into batches, never waiting on a worker.
fn read_live(
    cap: &mut LiveCapture,
    signals: &Signals,
    reload: &mut Option<ReloadSource>,
    workers: &mut Workers,
    outcome: &mut RunOutcome,
) -> (ReadStats, EndReason) {
    let timeout = cap.read_timeout();
    let mut stats = ReadStats {
        inputs: 1,
        ..ReadStats::default()
    };
    let mut batch_since: Option<Instant> = None;
    let mut last_tick = Instant::now();
    let mut clock = LiveClock::new();
    let mut loss = LossReport::default();
    // After a stop request the frames the kernel already holds are still read (they are
    // part of the run: the last transfer before the signal must not vanish), until nothing
    // is ready or the drain deadline passes.
    let mut drain_until: Option<Instant> = None;
    let reason = loop {
        if drain_until.is_none() && signals.stop.load(Ordering::Relaxed) {
            drain_until = Some(Instant::now() + STOP_DRAIN);
        }
        if drain_until.is_some_and(|d| Instant::now() >= d) {
            outcome.interrupted = true;
            break EndReason::Shutdown;
        }
        reload_now(signals, reload, workers, false);
        workers.retry();
        match cap.next_frame() {
            Ok(Some(f)) => {
                stats.frames += 1;
                stats.bytes += f.data.len() as u64;
                clock.saw(f.ts);
                if workers.push(f.ts, f.linktype, f.wire_len, stats.frames, f.data) {
                    workers.ship(&mut stats);
                }
                batch_since.get_or_insert_with(Instant::now);
            }
            Ok(None) if drain_until.is_some() => {
                outcome.interrupted = true;
                break EndReason::Shutdown;
            }
            Ok(None) => {}
            Err(e) => {
                tracing::error!(error = %e, "Live capture failed; flows end and the run stops.");
                stats.input_errors += 1;
                outcome.input_errors.push(CaptureError::Live(e));
                break EndReason::EndOfInput;
            }
        }
        // A partly filled batch waits at most one read timeout, so records stay timely on a
        // slow link.
        if batch_since.is_some_and(|t| t.elapsed() >= timeout) {
            stats.pcap = cap.counters();
            workers.flush(&mut stats);
            batch_since = None;
            last_tick = Instant::now();
        }
        if last_tick.elapsed() >= timeout {
            stats.pcap = cap.counters();
            workers.tick_idle(clock.now(), &stats);
            loss.check(&stats);
            last_tick = Instant::now();
        }
        if !workers.any_queued() {
            batch_since = None;
        }
    };
    outcome.frames = stats.frames;
    stats.pcap = cap.counters();
    (stats, reason)
}

/// Logs capture loss at most every ten seconds (never per packet).
#[derive(Debug, Default)]
struct LossReport {
    queue: u64,
    kernel: u64,
    last: Option<Instant>,
}

impl LossReport {
    fn check(&mut self, s: &ReadStats) {
        let grew = s.queue_dropped > self.queue || s.pcap.kernel_dropped > self.kernel;
        if !grew
            || self
                .last
                .is_some_and(|t| t.elapsed() < Duration::from_secs(10))
        {
            return;
        }
        tracing::error!(
            queue_dropped = s.queue_dropped,
            kernel_dropped = s.pcap.kernel_dropped,
            interface_dropped = s.pcap.interface_dropped,
            "Frames lost: queue_dropped means the sensor fell behind, kernel_dropped that the kernel buffer overflowed."
        );
        self.queue = s.queue_dropped;
        self.kernel = s.pcap.kernel_dropped;
        self.last = Some(Instant::now());
    }
}

/// The replay side: reads every input into batches and hands them to the workers.
fn read_all(
    opts: &RunOptions,
    signals: &Signals,
    reload: &mut Option<ReloadSource>,
    workers: &mut Workers,
    outcome: &mut RunOutcome,
) -> (ReadStats, EndReason) {
    let stop = signals.stop.as_ref();
    let inputs: &[Input] = match &opts.source {
        Source::Files(f) => f,
        Source::Live(_) => &[],
    };
    let mut stats = ReadStats::default();
    let mut next_cnt = 0u64;
    // BPF programs are compiled per link type on first sight (pcapng may mix them).
    let mut filters: HashMap<u32, Option<pcap::BpfProgram>> = HashMap::new();
    // Counted here because `stats` is lent to the reader while frames flow.
    let mut filtered = 0u64;
    let mut filter_unsupported = 0u64;
    let total: u64 = inputs.iter().filter_map(Input::size).sum();
    let bar = progress_bar(opts.progress, total);
    let mut done_before = 0u64;
    for input in inputs {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let result = capture::read_input(
            input,
            opts.max_record,
            &mut next_cnt,
            &mut stats,
            &|| stop.load(Ordering::Relaxed),
            &mut |consumed| {
                if let Some(b) = &bar {
                    b.set_position(done_before + consumed);
                }
            },
            &mut |snapshot, f| {
                let (lt, data) = (f.linktype, f.data);
                if let Some(expr) = &opts.bpf {
                    let prog = filters.entry(lt).or_insert_with(|| match compile_bpf(expr, lt) {
                        Ok(p) => Some(p),
                        Err(e) => {
                            tracing::warn!(linktype = lt, error = %e, "BPF filter does not apply to this link type; its frames are dropped.");
                            None
                        }
                    });
                    match prog {
                        Some(p) if p.filter(data) => {}
                        Some(_) => {
                            filtered += 1;
                            return;
                        }
                        None => {
                            filter_unsupported += 1;
                            return;
                        }
                    }
                }
                if workers.push(f.ts, lt, f.wire_len, f.pcap_cnt, data) {
                    let mut snap = snapshot.clone();
                    snap.filtered += filtered;
                    snap.filter_unsupported += filter_unsupported;
                    workers.ship(&mut snap);
                    // New settings take effect between two batches.
                    reload_now(signals, reload, workers, true);
                }
            },
        );
        done_before += input.size().unwrap_or(0);
        match result {
            Ok(n) => outcome.frames += n,
            Err(e) => {
                tracing::error!(error = %e, "Input failed part-way; what was read is processed.");
                outcome.input_errors.push(e);
            }
        }
    }
    stats.filtered += filtered;
    stats.filter_unsupported += filter_unsupported;
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    let reason = if stop.load(Ordering::Relaxed) {
        outcome.interrupted = true;
        EndReason::Shutdown
    } else {
        EndReason::EndOfInput
    };
    (stats, reason)
}

fn progress_bar(show: bool, total: u64) -> Option<indicatif::ProgressBar> {
    if !show {
        return None;
    }
    let bar = indicatif::ProgressBar::new(total);
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "{spinner} {bytes}/{total_bytes} [{bar:30}] {binary_bytes_per_sec} eta {eta}",
    ) {
        bar.set_style(style);
    }
    Some(bar)
}

fn worker_loop(mut engine: Engine, rx: Receiver<Work>, free: Sender<Batch>) {
    for msg in rx {
        match msg {
            Work::Batch(mut batch, stats) => {
                engine.process_batch(&batch, &stats);
                batch.clear();
                let _ = free.try_send(batch);
            }
            Work::Tick(now, stats) => engine.tick(now, &stats),
            Work::Reload(settings, new_detector) => engine.reload(*settings, new_detector),
            Work::Done(stats, reason) => {
                engine.finish(reason, &stats);
                break;
            }
        }
    }
}

/// Buffered lines wait at most this long when no record follows them.
const IDLE_FLUSH: Duration = Duration::from_millis(200);
/// Buffered lines wait at most this long under a steady trickle of records.
const MAX_FLUSH_DELAY: Duration = Duration::from_secs(1);
/// After a stop request, a sink that still fails is given up after this long, so the run
/// ends; until a stop request, a failing sink is retried for ever (replay loses nothing).
const STOP_GRACE: Duration = Duration::from_secs(5);
/// Queue drops are logged at most this often.
const DROP_LOG_INTERVAL: Duration = Duration::from_secs(10);

/// The writer thread: takes records from the queues (alerts first) and writes them.
///
/// While the sink fails, it keeps taking records until its backlog is full, then leaves
/// them in the queues, retrying the sink every [`crate::output::RETRY_INTERVAL`] and at
/// once on SIGHUP (which also reopens the file). Returns the error that made records be
/// lost, if any.
pub fn writer_loop(
    mut writer: Writer,
    rx: OutReceiver,
    signals: &Signals,
    workers: usize,
) -> Option<std::io::Error> {
    // Several workers: their stats snapshots are summed into one record.
    let mut merger = (workers > 1).then(|| StatsMerger::new(workers));
    let mut dirty = false;
    let mut last_flush = Instant::now();
    let mut senders_left = true;
    let mut stop_seen: Option<Instant> = None;
    let mut drops = DropReport::default();
    loop {
        // Between two records: a rotated file never receives half a line.
        if signals.reopen.swap(false, Ordering::Relaxed) {
            match writer.reopen() {
                Ok(()) => tracing::info!("EVE output reopened."),
                Err(e) => {
                    tracing::error!(error = %e, "Cannot reopen the EVE output; writing to the old file.")
                }
            }
        }
        writer.retry_if_due();
        if !writer.has_room() {
            writer.flush();
        }
        if writer.closed() && !signals.stop.swap(true, Ordering::Relaxed) {
            tracing::info!("Stopping: nobody reads the EVE output any more.");
        }
        if signals.stop.load(Ordering::Relaxed) && writer.stalled() {
            let since = *stop_seen.get_or_insert_with(Instant::now);
            if since.elapsed() >= STOP_GRACE {
                // Giving up makes the sink count records instead of holding them, so the
                // workers' last records pass and the run can end.
                writer.give_up();
            }
        }
        drops.check(&rx);
        if senders_left && writer.has_room() {
            let wait = if writer.stalled() {
                crate::output::RETRY_INTERVAL / 5
            } else {
                IDLE_FLUSH
            };
            match rx.recv_timeout(wait) {
                Ok(msg) => {
                    if matches!(msg, OutMsg::Stats(_)) {
                        writer.stats.queue_dropped = rx.dropped();
                    }
                    match (msg, merger.as_mut()) {
                        (OutMsg::Stats(rec), Some(m)) => {
                            if let Some(sum) = m.add(&rec) {
                                writer.write_stats_value(sum);
                            }
                        }
                        (msg, _) => writer.handle(msg),
                    }
                    dirty = true;
                    if last_flush.elapsed() >= MAX_FLUSH_DELAY {
                        writer.flush();
                        dirty = false;
                        last_flush = Instant::now();
                    }
                }
                Err(RecvError::Timeout) => {
                    if dirty {
                        writer.flush();
                        dirty = false;
                        last_flush = Instant::now();
                    }
                }
                Err(RecvError::Disconnected) => senders_left = false,
            }
            continue;
        }
        if !senders_left {
            writer.flush();
            if writer.backlog() == 0 {
                break;
            }
        }
        // Full backlog, or the end with a sink that still fails: wait for the next retry.
        thread::sleep(crate::output::RETRY_INTERVAL / 5);
    }
    drops.check(&rx);
    writer.error.take()
}

/// Logs records dropped at the writer queues, at most every ten seconds (never per record).
#[derive(Debug, Default)]
struct DropReport {
    logged: u64,
    last: Option<Instant>,
}

impl DropReport {
    fn check(&mut self, rx: &OutReceiver) {
        if self.last.is_some_and(|t| t.elapsed() < DROP_LOG_INTERVAL) {
            return;
        }
        let d = rx.dropped();
        if d.total() <= self.logged {
            return;
        }
        tracing::error!(
            alert = d.alert,
            flow = d.flow,
            session = d.session,
            ftp = d.ftp,
            smb = d.smb,
            tftp = d.tftp,
            stats = d.stats,
            "Records dropped: the EVE output fell behind (stats.output.queue_dropped)."
        );
        self.logged = d.total();
        self.last = Some(Instant::now());
    }
}
