//! The `xferwatch` command: parses the command line, loads the config and runs the pipeline.

use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Parser;

use xferwatch::capture::Input;
use xferwatch::capture::live::LiveOptions;
use xferwatch::config::{Config, Progress};
use xferwatch::engine::EngineSettings;
use xferwatch::output::Target;
use xferwatch::pipeline::{self, ReloadSource, RunOptions, Signals, Source};
use xferwatch::privileges::Privileges;

/// Watches FTP, FTPS, SMB and TFTP for command-and-control and exfiltration
/// (MITRE ATT&CK T1071.002) and writes EVE JSON.
#[derive(Debug, Parser)]
#[command(name = "xferwatch", version, about)]
struct Cli {
    /// Replay a pcap or pcapng file; repeatable; '-' reads stdin.
    #[arg(short = 'r', long = "read", value_name = "FILE")]
    read: Vec<String>,
    /// Live capture from an interface (libpcap).
    #[arg(
        short = 'i',
        long = "interface",
        value_name = "IFACE",
        conflicts_with = "read"
    )]
    interface: Option<String>,
    /// Live capture: leave promiscuous mode off (overrides `[capture] promiscuous`).
    #[arg(long = "no-promisc")]
    no_promisc: bool,
    /// Live capture: bytes captured of each frame (overrides `[capture] snaplen`).
    #[arg(long = "snaplen", value_name = "BYTES")]
    snaplen: Option<u32>,
    /// Live capture: kernel buffer in MiB (overrides `[capture] buffer_size_mib`).
    #[arg(long = "buffer-size", value_name = "MIB")]
    buffer_size: Option<u32>,
    /// After opening the capture and the output, switch to this user (name or uid) and
    /// shed all capabilities. With -r the files are opened after the switch.
    #[arg(long = "user", value_name = "USER")]
    user: Option<String>,
    /// Group to switch to (name or gid); defaults to the user's primary group.
    #[arg(long = "group", value_name = "GROUP")]
    group: Option<String>,
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
    if config.sessions.max_sessions.get() < config.flows.max_flows.get() {
        tracing::warn!(
            max_sessions = config.sessions.max_sessions.get(),
            max_flows = config.flows.max_flows.get(),
            "[sessions] max_sessions is below [flows] max_flows: a flood of unanswered requests can fill the session table and leave later transfers untracked."
        );
    }
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
    let signals = Signals::new();
    signals.install().context("installing signal handlers")?;
    // The command line's filter wins over the config's.
    let bpf = if cli.bpf.is_empty() {
        (!config.capture.bpf.is_empty()).then(|| config.capture.bpf.clone())
    } else {
        Some(cli.bpf.join(" "))
    };
    let cap = &config.capture;
    let source = match &cli.interface {
        Some(iface) => Source::Live(LiveOptions {
            interface: iface.clone(),
            snaplen: cli.snaplen.unwrap_or(cap.snaplen.get()),
            promiscuous: cap.promiscuous && !cli.no_promisc,
            buffer_bytes: u64::from(cli.buffer_size.unwrap_or(cap.buffer_size_mib.get()))
                .saturating_mul(1 << 20),
            read_timeout_ms: cap.read_timeout_ms.get(),
            bpf: bpf.clone(),
        }),
        None => Source::Files(cli.read.iter().map(|r| Input::from_arg(r)).collect()),
    };
    let live = cli.interface.is_some();
    let privileges = (cli.user.is_some() || cli.group.is_some() || live).then(|| Privileges {
        user: cli.user.clone(),
        group: cli.group.clone(),
    });
    let opts = RunOptions {
        source,
        bpf,
        output: Target::from_arg(cli.eve.as_deref().unwrap_or(&config.output.eve)),
        engine: EngineSettings::from_config(&config, !live),
        batch_packets: cap.batch_packets.as_usize(),
        queue_batches: cap.queue_batches.as_usize(),
        queue_records: config.output.queue_records.as_usize(),
        queue_alerts: config.output.queue_alerts.as_usize(),
        max_backlog: config.output.max_backlog_bytes.as_usize(),
        workers: cap.effective_workers(),
        max_record: cap.max_record_bytes.as_usize(),
        progress: match cap.progress {
            Progress::Always => true,
            Progress::Never => false,
            Progress::Auto => std::io::IsTerminal::is_terminal(&std::io::stderr()),
        },
        reload: cli.config.clone().map(|path| ReloadSource {
            path,
            config: config.clone(),
        }),
        privileges,
    };
    let outcome = match pipeline::run(opts, &signals) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("xferwatch: {e}");
            return Ok(ExitCode::from(1));
        }
    };
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
