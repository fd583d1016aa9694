//! Shared helpers for the integration tests: run the real binary, parse its EVE output.

#![allow(dead_code)] // each test binary uses a different subset
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)] // test code

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

/// Repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The shared public corpus, if it is beside the repository.
pub fn corpus() -> Option<PathBuf> {
    let p = root().join("../shared/pcaps/corpus");
    p.join("MANIFEST.tsv").exists().then_some(p)
}

/// Output of one sensor run.
pub struct Run {
    pub code: i32,
    pub records: Vec<Value>,
    /// The stdout lines as written, for byte-for-byte comparisons.
    pub lines: Vec<String>,
    pub stderr: String,
}

impl Run {
    /// Records of one event type.
    pub fn of(&self, event_type: &str) -> Vec<&Value> {
        self.records
            .iter()
            .filter(|r| r["event_type"] == event_type)
            .collect()
    }

    /// The final stats record.
    pub fn stats(&self) -> &Value {
        self.records
            .iter()
            .rev()
            .find(|r| r["event_type"] == "stats")
            .expect("a stats record")
    }
}

/// Runs `xferwatch ARGS -o -` and parses every stdout line as JSON (panics on a bad line).
pub fn run(args: &[&str]) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_xferwatch"))
        .args(args)
        .args(["-o", "-"])
        .current_dir(root())
        .output()
        .expect("run xferwatch");
    let stdout = String::from_utf8(out.stdout).expect("utf-8 output");
    let records = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad JSON line {l:?}: {e}")))
        .collect();
    Run {
        code: out.status.code().unwrap_or(-1),
        records,
        lines: stdout.lines().map(str::to_owned).collect(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Replays one of the project's captures with the config that marks documentation ranges
/// external.
pub fn replay(pcap: &str) -> Run {
    let path = root().join("pcaps").join(pcap);
    let r = run(&[
        "-c",
        "pcaps/demo.toml",
        "-r",
        path.to_str().expect("utf-8 path"),
    ]);
    assert_eq!(r.code, 0, "{pcap}: exit {} stderr {}", r.code, r.stderr);
    r
}

/// The truth file the generator wrote next to a capture.
pub fn truth(pcap: &str) -> Value {
    let p = root().join("pcaps").join(format!("{pcap}.truth.json"));
    serde_json::from_str(&std::fs::read_to_string(&p).expect("truth file")).expect("truth JSON")
}

/// Finds the flow record whose client/server match (in that orientation).
pub fn find_flow<'a>(
    run: &'a Run,
    cip: &str,
    cport: u64,
    sip: &str,
    sport: u64,
) -> Option<&'a Value> {
    run.of("flow").into_iter().find(|f| {
        f["src_ip"] == cip
            && f["src_port"] == cport
            && f["dest_ip"] == sip
            && f["dest_port"] == sport
    })
}

/// True when `path` exists.
pub fn exists(path: &Path) -> bool {
    path.exists()
}
