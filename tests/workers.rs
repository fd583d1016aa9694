//! Several workers give the records one worker gives (issue 6): frames are sharded by
//! internal host (or host pair), so every flow, its FTP/TFTP/SMB session, its linked data
//! channels and the per-host detection windows stay on one worker.
//!
//! Each capture is replayed with `[capture] workers = 1` and with 3 (and 2 for the mixed
//! capture): the non-stats records must be the same multiset, and the final stats record's
//! counters must be the same sums, apart from the gauges that are summed peaks.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)] // test code

mod common;

use std::path::Path;

use common::{Run, Scratch, generate, root, run};
use serde_json::Value;

/// Runs `pcap` with `base` (a config file's text) plus `[capture] workers = n`.
fn replay_with(dir: &Scratch, base: &str, pcap: &Path, n: usize) -> Run {
    let cfg = dir.write(
        &format!("w{n}.toml"),
        &format!("{base}\n[capture]\nworkers = {n}\n"),
    );
    let r = run(&["-c", &cfg, "-r", pcap.to_str().unwrap()]);
    assert!(
        r.code == 0 || r.code == 2,
        "{}: exit {} {}",
        pcap.display(),
        r.code,
        r.stderr
    );
    r
}

/// Every record except `stats`, as sorted lines.
fn records(r: &Run) -> Vec<String> {
    let mut v: Vec<String> = r
        .lines
        .iter()
        .filter(|l| !l.contains("\"event_type\":\"stats\""))
        .cloned()
        .collect();
    v.sort();
    v
}

/// Counters that are gauges or peaks: several workers report the sum of their own.
const GAUGES: &[&str] = &[
    "peak",
    "max_active",
    "active",
    "open",
    "tracked",
    "backlog_bytes",
];

/// Compares two stats bodies counter by counter, skipping gauges and the writer's own count
/// of stats records (a multi-worker run writes one merged record per complete round).
fn same_counters(a: &Value, b: &Value, path: &str, diffs: &mut Vec<String>) {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            for (k, av) in x {
                let p = format!("{path}.{k}");
                if GAUGES.contains(&k.as_str())
                    || p.starts_with(".output.") && p.ends_with(".stats")
                {
                    continue;
                }
                same_counters(av, y.get(k).unwrap_or(&Value::Null), &p, diffs);
            }
        }
        _ if a != b => diffs.push(format!("{path}: {a} vs {b}")),
        _ => {}
    }
}

/// An expectation nobody used leaves as `expired` when an insert or lookup on its worker
/// notices its ttl passed first, else as `cancelled` when its session ends: which one depends
/// on what else that worker sees. Their sum does not.
fn unused_merged(stats: &Value) -> Value {
    let mut v = stats.clone();
    let e = &mut v["stats"]["sessions"]["expectations"];
    let sum = e["expired"].as_u64().unwrap_or(0) + e["cancelled"].as_u64().unwrap_or(0);
    e["expired"] = sum.into();
    e["cancelled"] = 0.into();
    v
}

fn compare(dir: &Scratch, base: &str, pcap: &Path, workers: &[usize]) -> usize {
    let one = replay_with(dir, base, pcap, 1);
    let want = records(&one);
    for &n in workers {
        let many = replay_with(dir, base, pcap, n);
        assert_eq!(one.code, many.code, "{}: exit codes", pcap.display());
        let got = records(&many);
        if got != want {
            let missing: Vec<_> = want.iter().filter(|l| !got.contains(l)).take(3).collect();
            let extra: Vec<_> = got.iter().filter(|l| !want.contains(l)).take(3).collect();
            panic!(
                "{} with {n} workers: records differ\nonly with 1: {missing:#?}\nonly with {n}: {extra:#?}",
                pcap.display()
            );
        }
        let mut diffs = Vec::new();
        let (a, b) = (unused_merged(one.stats()), unused_merged(many.stats()));
        same_counters(&a["stats"], &b["stats"], "", &mut diffs);
        assert!(
            diffs.is_empty(),
            "{} with {n} workers: final stats differ: {diffs:#?}",
            pcap.display()
        );
    }
    want.len()
}

#[test]
fn the_mixed_capture_gives_the_same_records_on_one_two_and_three_workers() {
    let dir = Scratch::new("workers-bench");
    let pcap = generate(
        &dir,
        "bench",
        "bench.pcap",
        &["--target-bytes", "6000000", "--seed", "5"],
    );
    let base = std::fs::read_to_string(root().join("pcaps/demo.toml")).unwrap();
    let one = replay_with(&dir, &base, &pcap, 1);
    // The capture must exercise what sharding could break: sessions with linked data
    // channels on several hosts, and alerts.
    assert!(
        one.of("session").len() >= 5,
        "sessions: {}",
        one.of("session").len()
    );
    assert!(!one.of("alert").is_empty());
    let linked = one
        .of("flow")
        .iter()
        .filter(|f| {
            f["app_proto_expected"]
                .as_str()
                .is_some_and(|p| p.ends_with("-data"))
        })
        .count();
    assert!(linked >= 5, "linked data channels: {linked}");
    compare(&dir, &base, &pcap, &[2, 3]);
}

#[test]
fn project_captures_give_the_same_records_on_three_workers() {
    let dir = Scratch::new("workers-pcaps");
    let demo = std::fs::read_to_string(root().join("pcaps/demo.toml")).unwrap();
    let lab = std::fs::read_to_string(root().join("pcaps/real/lab.toml")).unwrap();
    let mut n = 0;
    for (sub, base) in [("pcaps", &demo), ("pcaps/real", &lab)] {
        let mut files: Vec<_> = std::fs::read_dir(root().join(sub))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "pcap"))
            .collect();
        files.sort();
        for p in files {
            compare(&dir, base, &p, &[3]);
            n += 1;
        }
    }
    assert!(n >= 20, "only {n} captures found");
}

#[test]
fn corpus_captures_give_the_same_records_on_three_workers() {
    let Some(corpus) = common::corpus() else {
        eprintln!("skipped: ../shared/pcaps/corpus is not beside the repository");
        return;
    };
    let dir = Scratch::new("workers-corpus");
    let mut files = Vec::new();
    let mut stack = vec![corpus];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.contains(".pcap") || n.ends_with(".cap"))
            {
                files.push(p);
            }
        }
    }
    files.sort();
    assert!(files.len() >= 100, "corpus files: {}", files.len());
    let mut records = 0;
    for p in &files {
        records += compare(&dir, "", p, &[3]);
    }
    assert!(records > 1000, "records compared: {records}");
}
