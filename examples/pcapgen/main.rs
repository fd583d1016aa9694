//! `pcapgen`: the project's deterministic capture generator.
//!
//! ```text
//! cargo run --release --example pcapgen -- <scenario> <out.pcap> [--seed N] [--target-bytes N]
//!     [--size BYTES] [--count N]
//! cargo run --release --example pcapgen -- list
//! ```
//!
//! Writes a classic pcap (Ethernet, microsecond stamps) and `<out.pcap>.truth.json`
//! describing every flow and session it contains. The same arguments always produce the
//! same bytes: all randomness comes from a seeded SplitMix64 stream and all times are
//! synthetic, starting at 2026-11-02T09:00:00Z. See `pcaps/README.md`.

mod conv;
mod ctx;
mod mux;
mod net;
mod payload;
mod pcap;
mod proto;
mod rng;
mod scenario;
mod sessions;
mod truth;

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result, bail, ensure};
use clap::Parser;
use serde::Serialize;
use xferwatch::time::Ts;

use crate::ctx::{Ctx, Summary};
use crate::mux::Mux;
use crate::pcap::PcapWriter;
use crate::truth::{FlowTruth, SessionTruth};

/// Command line.
#[derive(Debug, Parser)]
#[command(
    name = "pcapgen",
    about = "Deterministic capture generator for xferwatch tests"
)]
struct Args {
    /// Scenario name, or `list` to print them.
    scenario: String,
    /// Output pcap path; the truth file is written next to it as `<out>.truth.json`.
    out: Option<PathBuf>,
    /// Seed of the random stream.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Approximate pcap size for `bench`.
    #[arg(long, default_value_t = 1_000_000_000)]
    target_bytes: u64,
    /// Transfer size of the detection scenarios that move one big body (`pcapgen list`
    /// marks them with `--size`).
    #[arg(long)]
    size: Option<u64>,
    /// Number of sessions of `ftp-repeated`, or the size of a `flood-*` scenario.
    #[arg(long)]
    count: Option<u32>,
    /// Plan the capture and write only the truth file (no pcap): sizes and counts at scale
    /// without the disk traffic.
    #[arg(long)]
    plan_only: bool,
    /// `bench` only: list every file-transfer session in the truth file.
    #[arg(long)]
    detail: bool,
}

/// The truth file's top level.
#[derive(Serialize)]
struct TruthFile<'a> {
    generator: &'static str,
    scenario: &'a str,
    description: &'static str,
    command: String,
    seed: u64,
    plan_only: bool,
    packets: u64,
    wire_bytes: u64,
    pcap_bytes: u64,
    first_ts: String,
    last_ts: String,
    peak_open_flows: usize,
    internal_ranges: [&'static str; 4],
    external_ranges: [&'static str; 4],
    summary: &'a Summary,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    mismatch_flows: &'a [FlowTruth],
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    sessions: &'a [SessionTruth],
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    flows: &'a [FlowTruth],
}

fn main() -> ExitCode {
    match run(Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("pcapgen: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> Result<()> {
    if args.scenario == "list" {
        let mut out = std::io::stdout().lock();
        for (name, what) in scenario::SCENARIOS {
            writeln!(out, "{name:<22} {what}")?;
        }
        return Ok(());
    }
    let Some((name, description)) = scenario::SCENARIOS
        .iter()
        .find(|(n, _)| *n == args.scenario)
    else {
        bail!("unknown scenario {:?}; run `pcapgen list`", args.scenario);
    };
    let out = args.out.clone().context("missing output path")?;
    let started = Instant::now();
    let writer = if args.plan_only {
        None
    } else {
        let file = File::create(&out).with_context(|| format!("creating {}", out.display()))?;
        Some(PcapWriter::new(BufWriter::with_capacity(1 << 20, file))?)
    };
    let bench = *name == "bench";
    // Bench and the floods are too big to list every flow; their sessions are still listed
    // for the floods (only the upload forms one).
    let flood = scenario::flood::is_flood(name);
    let mut ctx = Ctx::new(
        args.seed,
        Mux::new(writer),
        !bench && !flood,
        !bench || args.detail,
    );
    scenario::build(
        name,
        &mut ctx,
        &scenario::Options {
            target_bytes: args.target_bytes,
            size: args.size,
            count: args.count,
        },
    )?;
    let mut got = ctx.finish()?;
    if let Some(sink) = got.sink.take() {
        let file = sink.into_inner().map_err(|e| e.into_error())?;
        let written = file.metadata()?.len();
        let expected = 24 + 16 * got.stats.packets + got.stats.wire_bytes;
        ensure!(
            written == expected,
            "wrote {written} bytes, expected {expected}"
        );
    }

    let mut command = format!(
        "cargo run --release --example pcapgen -- {name} {}",
        out.display()
    );
    if args.seed != 1 {
        command.push_str(&format!(" --seed {}", args.seed));
    }
    if bench {
        command.push_str(&format!(" --target-bytes {}", args.target_bytes));
    }
    if let Some(size) = args.size {
        command.push_str(&format!(" --size {size}"));
    }
    if let Some(count) = args.count {
        command.push_str(&format!(" --count {count}"));
    }
    let ts = |us: u64| Ts(us * 1000).eve();
    let truth = TruthFile {
        generator: "xferwatch examples/pcapgen",
        scenario: name,
        description,
        command,
        seed: args.seed,
        plan_only: args.plan_only,
        packets: got.stats.packets,
        wire_bytes: got.stats.wire_bytes,
        pcap_bytes: 24 + 16 * got.stats.packets + got.stats.wire_bytes,
        first_ts: ts(got.stats.first_us.unwrap_or(ctx::EPOCH_US)),
        last_ts: ts(got.stats.last_us),
        peak_open_flows: got.stats.peak_open,
        internal_ranges: ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7"],
        external_ranges: [
            "192.0.2.0/24",
            "198.51.100.0/24",
            "203.0.113.0/24",
            "2001:db8::/32",
        ],
        summary: &got.summary,
        mismatch_flows: &got.mismatches,
        sessions: &got.sessions,
        flows: &got.flows,
    };
    let mut truth_path = out.into_os_string();
    truth_path.push(".truth.json");
    let truth_path = PathBuf::from(truth_path);
    let file =
        File::create(&truth_path).with_context(|| format!("creating {}", truth_path.display()))?;
    let mut w = BufWriter::new(file);
    serde_json::to_writer_pretty(&mut w, &truth)?;
    w.write_all(b"\n")?;
    w.flush()?;
    eprintln!(
        "pcapgen: {name}: {} packets, {} flows, {} bytes, peak {} open flows, {:.1}s",
        got.stats.packets,
        got.summary.flows,
        truth.pcap_bytes,
        got.stats.peak_open,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    //! End-to-end checks: every scenario's pcap decodes, and decoding it reproduces the
    //! truth file's per-flow counts.

    use std::collections::HashMap;
    use std::net::IpAddr;

    use etherparse::{NetSlice, SlicedPacket, TransportSlice};

    use super::*;
    use crate::truth::DirTruth;

    type Key = (IpAddr, u16, IpAddr, u16, bool);

    /// Options for a test run: the given `bench` size, and sized detection scenarios cut
    /// to 3 MB so the checks stay fast in a debug build.
    fn options(name: &str, target_bytes: u64) -> scenario::Options {
        let sized = scenario::detection::SIZED.iter().any(|(n, _)| *n == name);
        scenario::Options {
            target_bytes,
            size: sized.then_some(3_000_000),
            count: None,
        }
    }

    fn generate(name: &str, target_bytes: u64) -> (Vec<u8>, ctx::Collected<Vec<u8>>) {
        let mux = Mux::new(Some(PcapWriter::new(Vec::new()).unwrap()));
        let mut ctx = Ctx::new(1, mux, true, true);
        scenario::build(name, &mut ctx, &options(name, target_bytes)).unwrap();
        let mut got = ctx.finish().unwrap();
        (got.sink.take().unwrap(), got)
    }

    /// Decodes a pcap and recounts every flow direction the way the truth file defines it.
    fn recount(pcap: &[u8], got: &ctx::Collected<Vec<u8>>) -> HashMap<(u32, bool), DirTruth> {
        let mut keys: HashMap<Key, (u32, bool)> = HashMap::new();
        for f in &got.flows {
            let (c, s) = (f.client_ip.parse().unwrap(), f.server_ip.parse().unwrap());
            let tcp = f.transport == "tcp";
            assert!(
                keys.insert((c, f.client_port, s, f.server_port, tcp), (f.id, true))
                    .is_none()
            );
            assert!(
                keys.insert((s, f.server_port, c, f.client_port, tcp), (f.id, false))
                    .is_none()
            );
        }
        let mut counts: HashMap<(u32, bool), DirTruth> = HashMap::new();
        let mut seq_end: HashMap<(u32, bool), u32> = HashMap::new();
        let mut at = 24;
        let mut last_ts = 0u64;
        while at < pcap.len() {
            let word = |i: usize| u32::from_le_bytes(pcap[at + i..at + i + 4].try_into().unwrap());
            let ts = u64::from(word(0)) * 1_000_000 + u64::from(word(4));
            assert!(ts >= last_ts, "packets out of time order");
            last_ts = ts;
            let len = word(8) as usize;
            let frame = &pcap[at + 16..at + 16 + len];
            at += 16 + len;
            let p = SlicedPacket::from_ethernet(frame).unwrap();
            let (src, dst): (IpAddr, IpAddr) = match &p.net {
                Some(NetSlice::Ipv4(ip)) => (
                    ip.header().source_addr().into(),
                    ip.header().destination_addr().into(),
                ),
                Some(NetSlice::Ipv6(ip)) => (
                    ip.header().source_addr().into(),
                    ip.header().destination_addr().into(),
                ),
                _ => panic!("not IP"),
            };
            let (key, payload, seq) = match &p.transport {
                Some(TransportSlice::Tcp(t)) => {
                    let h = t.to_header();
                    (
                        (src, h.source_port, dst, h.destination_port, true),
                        t.payload().len(),
                        Some(h),
                    )
                }
                Some(TransportSlice::Udp(u)) => (
                    (src, u.source_port(), dst, u.destination_port(), false),
                    u.payload().len(),
                    None,
                ),
                _ => panic!("not TCP/UDP"),
            };
            let id = *keys
                .get(&key)
                .unwrap_or_else(|| panic!("frame of no flow: {key:?}"));
            let c = counts.entry(id).or_default();
            c.pkts += 1;
            c.wire_bytes += len as u64;
            let end = seq
                .as_ref()
                .map(|h| h.sequence_number.wrapping_add(payload as u32));
            let fresh = match (end, seq_end.get(&id)) {
                // No reordering in these captures: data ending at or before the highest
                // byte seen so far is a retransmission.
                (Some(e), Some(prev)) if payload > 0 => (e.wrapping_sub(*prev) as i32) > 0,
                _ => true,
            };
            if let (Some(e), true) = (end, fresh) {
                seq_end.insert(id, e);
            }
            if fresh {
                c.payload_bytes += payload as u64;
            } else {
                c.retransmitted_pkts += 1;
                c.retransmitted_bytes += payload as u64;
            }
        }
        assert_eq!(at, pcap.len());
        counts
    }

    fn check(name: &str, target: u64) {
        let (pcap, got) = generate(name, target);
        let counts = recount(&pcap, &got);
        assert_eq!(got.stats.packets, got.summary.packets, "{name}");
        for f in &got.flows {
            let ts = counts.get(&(f.id, true)).copied().unwrap_or_default();
            let tc = counts.get(&(f.id, false)).copied().unwrap_or_default();
            assert_eq!(ts, f.toserver, "{name} flow {} to server", f.id);
            assert_eq!(tc, f.toclient, "{name} flow {} to client", f.id);
            if let Some(link) = &f.linked {
                assert!(
                    link.control_flow < f.id,
                    "{name}: data flow before its control"
                );
            }
        }
        for s in &got.sessions {
            for id in &s.flows {
                assert!(
                    got.flows.iter().any(|f| f.id == *id),
                    "{name}: session names flow {id}"
                );
            }
        }
        let (again, _) = generate(name, target);
        assert!(pcap == again, "{name} is not reproducible");
    }

    #[test]
    fn every_small_scenario_matches_its_truth() {
        for (name, _) in scenario::SCENARIOS {
            if name != "bench" && !scenario::flood::is_flood(name) {
                check(name, 0);
            }
        }
    }

    /// The floods at a small count: exactly `count` flood items of the right shape, the
    /// upload's session, and the same bytes twice.
    #[test]
    fn floods_have_their_count_and_the_upload() {
        use etherparse::{LaxNetSlice, LaxSlicedPacket};
        for (name, _) in scenario::flood::FLOODS {
            let build = || {
                let mux = Mux::new(Some(PcapWriter::new(Vec::new()).unwrap()));
                let mut ctx = Ctx::new(1, mux, false, true);
                let opts = scenario::Options {
                    target_bytes: 0,
                    size: None,
                    count: Some(101),
                };
                scenario::build(name, &mut ctx, &opts).unwrap();
                let mut got = ctx.finish().unwrap();
                (got.sink.take().unwrap(), got)
            };
            let (pcap, got) = build();
            assert_eq!(got.stats.packets, got.summary.packets, "{name}");
            assert_eq!(
                got.sessions.len(),
                1,
                "{name}: only the upload is a session"
            );
            assert!(
                got.sessions[0].outbound_payload_bytes >= scenario::flood::UPLOAD_BYTES,
                "{name}: the upload moves its file outbound"
            );
            let (mut syns, mut frags, mut mf, mut pasv, mut rrq) = (0, 0, 0, 0, 0);
            let mut at = 24;
            while at < pcap.len() {
                let len = u32::from_le_bytes(pcap[at + 8..at + 12].try_into().unwrap()) as usize;
                let frame = &pcap[at + 16..at + 16 + len];
                at += 16 + len;
                let p = LaxSlicedPacket::from_ethernet(frame).unwrap();
                if let Some(LaxNetSlice::Ipv4(ip)) = &p.net
                    && ip.header().is_fragmenting_payload()
                {
                    frags += 1;
                    mf += usize::from(ip.header().more_fragments());
                    continue;
                }
                match &p.transport {
                    Some(TransportSlice::Tcp(t)) => {
                        syns += usize::from(t.syn() && !t.ack());
                        let text = String::from_utf8_lossy(t.payload());
                        pasv += text.matches("227 Entering Passive Mode").count();
                    }
                    Some(TransportSlice::Udp(u)) => {
                        rrq += usize::from(u.payload().starts_with(&[0, 1]));
                    }
                    _ => {}
                }
            }
            // The upload itself opens two connections and has one PASV.
            match name {
                "flood-syn" => assert_eq!(syns, 101 + 2, "{name}"),
                "flood-fragments" => assert_eq!((frags, mf), (101, 101), "{name}"),
                "flood-pasv" => assert_eq!(pasv, 101 + 1, "{name}"),
                _ => assert_eq!(rrq, 101, "{name}"),
            }
            let (again, _) = build();
            assert!(pcap == again, "{name} is not reproducible");
        }
    }

    #[test]
    fn bench_matches_its_truth_and_has_every_mismatch() {
        check("bench", 3_000_000);
        let (_, got) = generate("bench", 3_000_000);
        // One of each case is written up front; random ones may add more.
        assert!(got.summary.verdicts.values().sum::<u64>() >= 7);
        assert_eq!(got.summary.verdicts.len(), 3, "all three verdicts present");
        assert!(
            got.summary.sessions.len() == 3,
            "ftp, smb and tftp sessions present"
        );
    }
}
