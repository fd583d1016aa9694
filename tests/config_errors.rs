//! Bad `sensor.toml` files on disk: each error is one line naming the file, the line and
//! column of the bad text, and the key (DESIGN §2, §8).

use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};

use xferwatch::config::{Config, ConfigError, SHIPPED};

/// A file in the system temp dir, removed when dropped.
struct TempFile(PathBuf);

impl TempFile {
    #[allow(
        clippy::unwrap_used,
        reason = "a test that cannot write its fixture should fail"
    )]
    fn with_bytes(name: &str, bytes: &[u8]) -> TempFile {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let unique = format!(
            "xferwatch-config-{}-{}-{name}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let path = std::env::temp_dir().join(unique);
        std::fs::write(&path, bytes).unwrap();
        TempFile(path)
    }

    fn new(name: &str, text: &str) -> TempFile {
        TempFile::with_bytes(name, text.as_bytes())
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Loads `text` from a file and returns the file's path and the error message.
#[allow(clippy::expect_used, reason = "test helper")]
fn load_err(name: &str, text: &str) -> (String, String, ConfigError) {
    let file = TempFile::new(name, text);
    let err = Config::load(&file.0).expect_err("the file should be rejected");
    (file.0.display().to_string(), err.to_string(), err)
}

/// Asserts the message is `<path>:<line>:<column>: <key>: …` and mentions `needle`.
fn check(name: &str, text: &str, line: usize, column: usize, key: &str, needle: &str) {
    let (path, msg, err) = load_err(name, text);
    let prefix = format!("{path}:{line}:{column}: {key}: ");
    assert!(
        msg.starts_with(&prefix),
        "{name}: want prefix {prefix:?}\n got {msg:?}"
    );
    assert!(
        msg.contains(needle),
        "{name}: {msg:?} should mention {needle:?}"
    );
    assert!(!msg.contains('\n'), "{name}: not one line: {msg:?}");
    assert_eq!(err.position(), Some((line, column)));
    assert_eq!(err.key(), Some(key));
}

#[test]
fn the_shipped_file_loads_from_disk() {
    let file = TempFile::new("shipped.toml", SHIPPED);
    assert_eq!(Config::load(&file.0).unwrap(), Config::default());
}

#[test]
fn unknown_key() {
    let text = "[capture]\nsnaplen = 1500\npromisc = false\n";
    check(
        "unknown-key.toml",
        text,
        3,
        1,
        "[capture] promisc",
        "unknown field `promisc`",
    );
}

#[test]
fn unknown_section() {
    let text = "[capture]\nsnaplen = 1500\n\n[thresholdz]\nratio = 0.5\n";
    check(
        "unknown-section.toml",
        text,
        4,
        2,
        "[thresholdz]",
        "unknown field `thresholdz`",
    );
}

#[test]
fn wrong_type() {
    let text = "[output]\nstats_interval = \"60s\"\n";
    check(
        "wrong-type.toml",
        text,
        2,
        18,
        "[output] stats_interval",
        "invalid type: string",
    );
}

#[test]
fn bad_cidr() {
    let text = "[networks]\nhome_nets = [\n  \"10.0.0.0/8\",\n  \"192.168.0.0/40\",\n]\n";
    check(
        "bad-cidr.toml",
        text,
        4,
        3,
        "[networks] home_nets",
        "\"192.168.0.0/40\"",
    );
}

#[test]
fn zero_count() {
    let text = "[flows]\ntcp_new = 30\nmax_flows = 0\n";
    check(
        "zero.toml",
        text,
        3,
        13,
        "[flows] max_flows",
        "expected a non-zero count",
    );
    let text = "[flows]\ntcp_new = 0\n";
    check(
        "zero-secs.toml",
        text,
        2,
        11,
        "[flows] tcp_new",
        "a non-zero number of seconds",
    );
}

#[test]
fn bad_port() {
    let text = "[ports]\nsmb = [445, 0]\n";
    check(
        "port.toml",
        text,
        2,
        13,
        "[ports] smb",
        "a port number from 1 to 65535",
    );
}

#[test]
fn unknown_protocol_name() {
    let text = "[[ports.exception]]\ncidr = \"10.0.0.5\"\nprotocol = \"sftp\"\nports = [22]\n";
    check(
        "proto.toml",
        text,
        3,
        12,
        "[[ports.exception]] #1 protocol",
        "unknown protocol `sftp`",
    );
}

#[test]
fn missing_exception_key() {
    let text = "[[ports.exception]]\nprotocol = \"ftp\"\nports = [2121]\n";
    check(
        "missing.toml",
        text,
        1,
        1,
        "[[ports.exception]] #1",
        "missing field `cidr`",
    );
}

#[test]
fn conflicting_networks() {
    let text = "[networks]\ninternal = [\"192.0.2.0/24\"]\nexternal = [\"192.0.2.0/24\"]\n";
    check(
        "conflict.toml",
        text,
        3,
        13,
        "[networks] external",
        "also listed in `internal`",
    );
}

#[test]
fn malformed_toml() {
    let text = "[capture]\nsnaplen = 1500\nbpf = \"tcp port 21\n";
    check("malformed.toml", text, 3, 19, "[capture] bpf", "");
    let text = "[capture\nsnaplen = 1500\n";
    check("header.toml", text, 1, 9, "[capture", "unclosed table");
}

#[test]
fn unreadable_files_name_the_file_without_a_line() {
    let missing = std::env::temp_dir().join(format!(
        "xferwatch-config-{}-does-not-exist.toml",
        std::process::id()
    ));
    let err = Config::load(&missing).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.starts_with(&format!(
            "{}: cannot read the configuration: ",
            missing.display()
        )),
        "{msg}"
    );
    assert_eq!(err.position(), None);
    assert!(!msg.contains('\n'));

    let dir = Config::load(&std::env::temp_dir()).unwrap_err();
    assert!(matches!(dir, ConfigError::Read { .. }), "{dir}");

    let binary = TempFile::with_bytes("binary.toml", b"[capture]\nbpf = \"\xff\xfe\"\n");
    let err = Config::load(&binary.0).unwrap_err();
    assert!(matches!(err, ConfigError::Read { .. }), "{err}");

    let huge = TempFile::new("huge.toml", &"# padding\n".repeat(200_000));
    let err = Config::load(&huge.0).unwrap_err().to_string();
    assert!(err.contains("larger than 1024 KiB"), "{err}");
}
