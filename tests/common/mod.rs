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

/// `"name" "direction" bytes` of every file the given session records name.
pub fn session_files<'a>(sessions: impl IntoIterator<Item = &'a Value>) -> Vec<String> {
    let mut v: Vec<String> = sessions
        .into_iter()
        .flat_map(|s| {
            s["session"]["files"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .map(|f| format!("{} {} {}", f["name"], f["direction"], f["bytes"]))
        .collect();
    v.sort();
    v
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

/// A temporary directory, removed when dropped.
pub struct Scratch(PathBuf);

impl Scratch {
    pub fn new(tag: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("xferwatch-test-{}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create scratch dir");
        Scratch(dir)
    }

    /// The directory itself.
    pub fn dir(&self) -> &Path {
        &self.0
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    /// Writes a file and returns its path as a string for the command line.
    pub fn write(&self, name: &str, text: &str) -> String {
        let p = self.path(name);
        std::fs::write(&p, text).expect("write scratch file");
        p.to_str().expect("utf-8 path").to_owned()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The generator binary: next to this test binary's profile directory first (that is the
/// build `cargo test` just made), then under `CARGO_TARGET_DIR` or `target/`.
pub fn pcapgen() -> PathBuf {
    let name = format!("pcapgen{}", std::env::consts::EXE_SUFFIX);
    let mut candidates = Vec::new();
    // This binary is target/<profile>/deps/detection-<hash>.
    if let Ok(exe) = std::env::current_exe()
        && let Some(profile) = exe.parent().and_then(Path::parent)
    {
        candidates.push(profile.join("examples").join(&name));
    }
    let target = match std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from) {
        Some(t) if t.is_absolute() => t,
        Some(t) => root().join(t),
        None => root().join("target"),
    };
    for profile in ["debug", "release"] {
        candidates.push(target.join(profile).join("examples").join(&name));
    }
    candidates
        .iter()
        .find(|p| p.is_file())
        .cloned()
        .unwrap_or_else(|| {
            panic!(
                "the capture generator is not built (looked for {candidates:?}); run \
                 `cargo test` (which builds the examples) or `cargo build --example pcapgen`"
            )
        })
}

/// Generates `scenario` into `dir/<file>` and returns the pcap's path.
pub fn generate(dir: &Scratch, scenario: &str, file: &str, extra: &[&str]) -> PathBuf {
    let out = dir.path(file);
    let bin = pcapgen();
    let res = Command::new(&bin)
        .arg(scenario)
        .arg(&out)
        .args(extra)
        .output()
        .expect("run pcapgen");
    assert!(
        res.status.success(),
        "{} {scenario} failed: {}\n(an unknown scenario means the binary is stale: \
         `cargo build --example pcapgen`)",
        bin.display(),
        String::from_utf8_lossy(&res.stderr)
    );
    out
}
