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

/// Every threshold, window and count refuses a negative value with its own wording.
#[test]
fn negative_thresholds() {
    let cases: [(&str, usize, &str, &str); 8] = [
        (
            "outbound_ratio = -0.5",
            18,
            "outbound_ratio",
            "floating point `-0.5`, expected a ratio from 0 to 1",
        ),
        (
            "outbound_ratio_min_bytes = -1048576",
            28,
            "outbound_ratio_min_bytes",
            "integer `-1048576`, expected a non-zero number of bytes",
        ),
        (
            "transfer_size_bytes = -1",
            23,
            "transfer_size_bytes",
            "integer `-1`, expected a non-zero number of bytes",
        ),
        (
            "outbound_volume_bytes = -100",
            25,
            "outbound_volume_bytes",
            "integer `-100`, expected a non-zero number of bytes",
        ),
        (
            "outbound_volume_window_secs = -3600",
            31,
            "outbound_volume_window_secs",
            "integer `-3600`, expected a non-zero number of seconds",
        ),
        (
            "repeated_connections_max = -3",
            28,
            "repeated_connections_max",
            "integer `-3`, expected a non-zero count",
        ),
        (
            "filename_hex_min_len = -16",
            24,
            "filename_hex_min_len",
            "integer `-16`",
        ),
        (
            "filename_entropy_bits = -1.0",
            25,
            "filename_entropy_bits",
            "floating point `-1.0`, expected bits per character above 0",
        ),
    ];
    for (line, column, key, needle) in cases {
        let text = format!("[thresholds]\n{line}\n");
        check(
            &format!("neg-{key}.toml"),
            &text,
            2,
            column,
            &format!("[thresholds] {key}"),
            needle,
        );
    }
    check(
        "neg-window.toml",
        "[suppression]\nwindow_secs = -1\n",
        2,
        15,
        "[suppression] window_secs",
        "integer `-1`, expected a number of seconds, 0 (off) or more",
    );
    check(
        "neg-rule-window.toml",
        "[suppression]\nrules = { suspicious-filename = -5 }\n",
        2,
        33,
        "[suppression.rules] suspicious-filename",
        "integer `-5`, expected a number of seconds, 0 (off) or more",
    );
}

/// Invalid networks in every place that takes one, each named by its key.
#[test]
fn invalid_cidr_everywhere() {
    let network = "expected a network such as \"10.0.0.0/8\" or \"2001:db8::/32\", or an address";
    check(
        "cidr-v6.toml",
        "[networks]\nexternal = [\"203.0.113.0/24\", \"fe80::/129\"]\n",
        2,
        31,
        "[networks] external",
        &format!("string \"fe80::/129\", {network}"),
    );
    check(
        "cidr-neg.toml",
        "[networks]\nhome_nets = [\"10.0.0.0/-8\"]\n",
        2,
        14,
        "[networks] home_nets",
        network,
    );
    check(
        "cidr-octet.toml",
        "[[allowlist]]\ncidr = \"10.0.0.300\"\n",
        2,
        8,
        "[[allowlist]] #1 cidr",
        &format!("string \"10.0.0.300\", {network}"),
    );
    check(
        "cidr-name.toml",
        "[[allowlist]]\nrule = \"transfer-size\"\ndestination = \"example.com\"\n",
        3,
        15,
        "[[allowlist]] #1 destination",
        network,
    );
    check(
        "cidr-two-prefixes.toml",
        "[[allowlist]]\ncidr = \"10.1.0.0/16\"\n\n[[allowlist]]\nhost = \"10.0.0.0/8/9\"\n",
        5,
        8,
        "[[allowlist]] #2 host",
        network,
    );
    check(
        "cidr-exception.toml",
        "[[ports.exception]]\ncidr = \"10.0.0.5/\"\nprotocol = \"ftp\"\nports = [2121]\n",
        2,
        8,
        "[[ports.exception]] #1 cidr",
        network,
    );
}

/// A rule name that is not one of DESIGN §6's, in an allowlist entry or a suppression
/// window, lists the valid names.
#[test]
fn unknown_rule_names() {
    let valid = "expected one of `port-mismatch`, `expected-protocol-absent`, \
                 `direction-disagreement`, `outbound-ratio`, `transfer-size`, \
                 `outbound-volume`, `repeated-connections`, `suspicious-filename`";
    check(
        "rule-bogus.toml",
        "[[allowlist]]\ncidr = \"10.0.0.1\"\nrule = \"bogus-rule\"\n",
        3,
        8,
        "[[allowlist]] #1 rule",
        &format!("unknown rule `bogus-rule`, {valid}"),
    );
    // The config key spelling of a rule is not its name.
    check(
        "rule-underscore.toml",
        "[[allowlist]]\ncidr = \"10.0.0.1\"\nrule = \"outbound_ratio\"\n",
        3,
        8,
        "[[allowlist]] #1 rule",
        "unknown rule `outbound_ratio`",
    );
    check(
        "rule-suppression.toml",
        "[suppression]\nrules = { exfil = 600 }\n",
        2,
        11,
        "[suppression.rules] exfil",
        &format!("unknown rule `exfil`, {valid}"),
    );
    check(
        "allow-proto.toml",
        "[[allowlist]]\ncidr = \"10.0.0.1\"\nprotocol = \"gopher\"\n",
        3,
        12,
        "[[allowlist]] #1 protocol",
        "unknown protocol `gopher`",
    );
    check(
        "allow-everything.toml",
        "[[allowlist]]\ncomment = \"matches all\"\n",
        1,
        1,
        "[[allowlist]] #1",
        "the entry matches everything",
    );
}
