//! TCP reordering end to end: a real SMB upload whose capture interleaved two bursts of
//! segments (`pcaps/real/smb2-reordered.pcap`, recorded by the live lab test when it failed
//! in CI on 2026-11-23) must give the same files and bytes as an orderly capture.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)] // test code

mod common;

use common::{Run, Scratch, root, run, session_files};

const PCAP: &str = "pcaps/real/smb2-reordered.pcap";

fn replay(config: &str) -> Run {
    let r = run(&["-c", config, "-r", PCAP]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    r
}

#[test]
fn reordered_smb_upload_is_parsed_whole() {
    let r = replay("pcaps/real/lab.toml");
    assert_eq!(
        session_files(r.of("session")),
        [
            "\"handbook.pdf\" \"download\" 500000",
            "\"payroll-2026.xlsx\" \"upload\" 512000",
        ]
    );
    let flow = &r.stats()["stats"]["flow"];
    let reorder = &flow["reorder"];
    assert!(reorder["held"].as_u64().unwrap() > 0, "{reorder}");
    assert_eq!(reorder["held"], reorder["in_order"], "{reorder}");
    assert_eq!(reorder["gave_up"], 0, "{reorder}");
    assert_eq!(reorder["no_buffer"], 0, "{reorder}");
    assert_eq!(flow["tcp_missing_bytes"], 0, "{flow}");
    // Both files are named in `smb` records too: the parser never lost its framing.
    let closes: Vec<&str> = r
        .of("smb")
        .iter()
        .filter(|s| s["smb"]["command"] == "SMB2_COMMAND_CLOSE")
        .filter_map(|s| s["smb"]["filename"].as_str())
        .collect();
    assert!(closes.contains(&"payroll-2026.xlsx"), "{closes:?}");
    assert!(closes.contains(&"handbook.pdf"), "{closes:?}");
}

/// Without the reorder buffer the same capture loses most of the upload: the capture does
/// exercise reordering, so the test above can fail.
#[test]
fn without_reordering_the_upload_is_cut_short() {
    let dir = Scratch::new("reorder-off");
    let lab = std::fs::read_to_string(root().join("pcaps/real/lab.toml")).unwrap();
    let cfg = dir.write("off.toml", &format!("{lab}\n[flows]\nreorder_bytes = 0\n"));
    let r = replay(&cfg);
    let upload = session_files(r.of("session"));
    let upload = upload
        .iter()
        .find(|f| f.starts_with("\"payroll-2026.xlsx\" \"upload\" "))
        .expect("the upload is still named");
    let bytes: u64 = upload.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(bytes < 512_000, "{upload}");
    assert_eq!(r.stats()["stats"]["flow"]["reorder"]["held"], 0);
}
