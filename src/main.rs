//! The `xferwatch` command: parses the command line, loads the config and runs the pipeline.

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use anyhow::{Context, Result};
use clap::Parser;

use xferwatch::capture::Input;
use xferwatch::config::{Config, Progress};
use xferwatch::engine::EngineSettings;
use xferwatch::output::Target;
use xferwatch::pipeline::{self, RunOptions};

/// Watches FTP, FTPS, SMB and TFTP for command-and-control and exfiltration
/// (MITRE ATT&CK T1071.002) and writes EVE JSON.
#[derive(Debug, Parser)]
#[command(name = "xferwatch", version, about)]
struct Cli {
    /// Replay a pcap or pcapng file; repeatable; '-' reads stdin.
    #[arg(short = 'r', long = "read", value_name = "FILE")]
    read: Vec<String>,
    /// Live capture from an interface (libpcap).
    #[arg(short = 'i', long = "interface", value_name = "IFACE")]
    interface: Option<String>,
    /// sensor.toml; without it, the built-in defaults (== the shipped sensor.toml).
    #[arg(short = 'c', long = "config", value_name = "FILE")]
    config: Option<std::path::PathBuf>,
    /// EVE JSON lines output; '-' = stdout (overrides the config).
    #[arg(short = 'o', long = "eve", value_name = "PATH")]
    eve: Option<String>,
    /// Validate the config and exit 0 / 1.
    #[arg(long = "check-config")]
    check_config: bool,
    /// BPF filter expression.
    #[arg(value_name = "BPF EXPRESSION", trailing_var_arg = true)]
    bpf: Vec<String>,
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { 1 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    // Logs go to stderr; XFERWATCH_LOG=error|warn|info|debug|trace sets the level.
    let level = std::env::var("XFERWATCH_LOG")
        .ok()
        .and_then(|v| v.parse::<tracing::Level>().ok())
        .unwrap_or(tracing::Level::WARN);
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_max_level(level)
        .init();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("xferwatch: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn run(cli: Cli) -> Result<ExitCode> {
    let config = match &cli.config {
        Some(path) => match Config::load(path) {
            Ok(c) => c,
            Err(e) => {
                // One message naming file, line, column and key; exit 1 (DESIGN §2).
                eprintln!("xferwatch: {e}");
                return Ok(ExitCode::from(1));
            }
        },
        None => Config::default(),
    };
    if cli.check_config {
        let bpf = (!cli.bpf.is_empty()).then(|| cli.bpf.join(" "));
        if let Some(expr) = bpf
            .as_deref()
            .or((!config.capture.bpf.is_empty()).then_some(config.capture.bpf.as_str()))
            && let Err(e) = pipeline::check_bpf(expr)
        {
            eprintln!("xferwatch: {e}");
            return Ok(ExitCode::from(1));
        }
        let origin = cli
            .config
            .as_ref()
            .map_or("built-in defaults".to_string(), |p| p.display().to_string());
        println!("{origin}: configuration OK");
        return Ok(ExitCode::SUCCESS);
    }
    if cli.read.is_empty() && cli.interface.is_none() {
        anyhow::bail!("nothing to do: give -r FILE (replay) or -i IFACE (live capture)");
    }
    if cli.interface.is_some() {
        anyhow::bail!("live capture (-i) is not available in this build yet; replay with -r");
    }
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        // A second signal while the first is being handled exits at once.
        signal_hook::flag::register_conditional_shutdown(sig, 130, Arc::clone(&stop))
            .context("installing signal handlers")?;
        signal_hook::flag::register(sig, Arc::clone(&stop))
            .context("installing signal handlers")?;
    }
    // The command line's filter wins over the config's.
    let bpf = if cli.bpf.is_empty() {
        (!config.capture.bpf.is_empty()).then(|| config.capture.bpf.clone())
    } else {
        Some(cli.bpf.join(" "))
    };
    let cap = &config.capture;
    let opts = RunOptions {
        inputs: cli.read.iter().map(|r| Input::from_arg(r)).collect(),
        bpf,
        output: Target::from_arg(cli.eve.as_deref().unwrap_or(&config.output.eve)),
        engine: EngineSettings::from_config(&config, true),
        batch_packets: cap.batch_packets.as_usize(),
        queue_batches: cap.queue_batches.as_usize(),
        queue_records: config.output.queue_records.as_usize(),
        max_record: cap.max_record_bytes.as_usize(),
        progress: match cap.progress {
            Progress::Always => true,
            Progress::Never => false,
            Progress::Auto => std::io::IsTerminal::is_terminal(&std::io::stderr()),
        },
    };
    let outcome = pipeline::run(opts, stop)?;
    if let Some(e) = &outcome.output_error {
        eprintln!("xferwatch: EVE output failed, records were lost: {e}");
        return Ok(ExitCode::from(2));
    }
    if !outcome.input_errors.is_empty() {
        for e in &outcome.input_errors {
            eprintln!("xferwatch: {e}");
        }
        return Ok(ExitCode::from(2));
    }
    Ok(ExitCode::SUCCESS)
}
