//! Pipeline: capture on the calling thread, one worker thread, one writer thread, joined
//! by bounded crossbeam channels.
//!
//! Replay never drops: when a queue is full the reader waits. Batches are recycled through
//! a return channel, so steady state allocates nothing per packet. A stop flag (set by
//! SIGINT/SIGTERM) makes the reader stop at the next batch boundary; flows then end with
//! reason `shutdown` and the final stats record is still written.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;

use crossbeam_channel::{Receiver, Sender, bounded};
use thiserror::Error;

use crate::capture::{self, Batch, CaptureError, Input, ReadStats};
use crate::engine::{Engine, EngineSettings};
use crate::flow::EndReason;
use crate::output::{OutMsg, Target, Writer};

/// Everything a replay run needs.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Inputs, read in order.
    pub inputs: Vec<Input>,
    /// BPF filter expression, if any.
    pub bpf: Option<String>,
    /// EVE output.
    pub output: Target,
    /// Worker settings.
    pub engine: EngineSettings,
    /// Frames per batch.
    pub batch_packets: usize,
    /// Batches in flight.
    pub queue_batches: usize,
    /// Records in flight to the writer.
    pub queue_records: usize,
    /// Largest capture record accepted.
    pub max_record: usize,
    /// Show a progress bar on stderr.
    pub progress: bool,
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
    Done(ReadStats, EndReason),
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

/// Runs the replay pipeline to the end of all inputs (or until `stop` is set).
pub fn run(opts: RunOptions, stop: Arc<AtomicBool>) -> Result<RunOutcome, SetupError> {
    if let Some(expr) = &opts.bpf {
        check_bpf(expr)?;
    }
    let writer = Writer::open(opts.output.clone()).map_err(|source| SetupError::Output {
        path: match &opts.output {
            Target::Stdout => "-".to_string(),
            Target::File(p) => p.display().to_string(),
        },
        source,
    })?;
    let (out_tx, out_rx) = bounded::<OutMsg>(opts.queue_records.max(16));
    let (work_tx, work_rx) = bounded::<Work>(opts.queue_batches.max(1));
    let (free_tx, free_rx) = bounded::<Batch>(opts.queue_batches.max(1) + 2);

    let writer_handle = thread::Builder::new()
        .name("xw-writer".into())
        .spawn(move || writer_loop(writer, out_rx))
        .map_err(SetupError::Thread)?;
    let engine_settings = opts.engine.clone();
    let worker_handle = thread::Builder::new()
        .name("xw-worker".into())
        .spawn(move || worker_loop(Engine::new(engine_settings, out_tx), work_rx, free_tx))
        .map_err(SetupError::Thread)?;

    let mut outcome = RunOutcome::default();
    let (stats, reason) = read_all(&opts, &stop, &work_tx, &free_rx, &mut outcome);
    let _ = work_tx.send(Work::Done(stats, reason));
    drop(work_tx);
    let _ = worker_handle.join();
    if let Ok(w) = writer_handle.join() {
        outcome.output_error = w;
    }
    Ok(outcome)
}

/// The capture side: reads every input into batches and hands them to the worker.
fn read_all(
    opts: &RunOptions,
    stop: &AtomicBool,
    work_tx: &Sender<Work>,
    free_rx: &Receiver<Batch>,
    outcome: &mut RunOutcome,
) -> (ReadStats, EndReason) {
    let mut stats = ReadStats::default();
    let mut next_cnt = 0u64;
    let batch_packets = opts.batch_packets.max(1);
    let mut batch = Batch::with_capacity(batch_packets);
    // BPF programs are compiled per link type on first sight (pcapng may mix them).
    let mut filters: HashMap<u32, Option<pcap::BpfProgram>> = HashMap::new();
    // Counted here because `stats` is lent to the reader while frames flow.
    let mut filtered = 0u64;
    let mut filter_unsupported = 0u64;
    let total: u64 = opts.inputs.iter().filter_map(Input::size).sum();
    let bar = progress_bar(opts.progress, total);
    let mut done_before = 0u64;
    for input in &opts.inputs {
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
                batch.push(f.ts, lt, f.wire_len, f.pcap_cnt, data);
                if batch.len() >= batch_packets {
                    let mut snap = snapshot.clone();
                    snap.filtered += filtered;
                    snap.filter_unsupported += filter_unsupported;
                    let next = free_rx
                        .try_recv()
                        .unwrap_or_else(|_| Batch::with_capacity(batch_packets));
                    let full = std::mem::replace(&mut batch, next);
                    let _ = work_tx.send(Work::Batch(full, snap));
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
    if !batch.is_empty() {
        let _ = work_tx.send(Work::Batch(batch, stats.clone()));
    }
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
            Work::Done(stats, reason) => {
                engine.finish(reason, &stats);
                break;
            }
        }
    }
}

fn writer_loop(mut writer: Writer, rx: Receiver<OutMsg>) -> Option<std::io::Error> {
    for msg in rx {
        writer.handle(msg);
    }
    writer.flush();
    writer.error.take()
}
