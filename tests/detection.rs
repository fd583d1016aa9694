//! Detection end to end (issue 5): each rule fires on a capture that should trip it and
//! stays silent on the negatives; allowlists, suppression and determinism behave as
//! `docs/detections.md` says; the namespace-lab recordings raise exactly the alerts the rule
//! text calls for.
//!
//! Generated captures are written at test time into a temporary directory by the project's
//! generator (`examples/pcapgen`, which `cargo test` builds): the 110 MB and 120 MB ones must
//! never be committed.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)] // test code

mod common;

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

use common::{Run, Scratch, generate, root, run};
use etherparse::{SlicedPacket, TransportSlice};
use serde_json::Value;

/// Marks the documentation ranges external, as the generated captures need.
const GEN_CONFIG: &str = "pcaps/demo.toml";
/// The same for the lab recordings (198.51.100.0/24 and 2001:db8::/32).
const LAB_CONFIG: &str = "pcaps/real/lab.toml";

/// The generator's workstation and external FTP servers (`pcaps/README.md`).
const WS: &str = "10.1.2.10";
const FTP_EXT: &str = "203.0.113.50";
const FTP_EXT2: &str = "192.0.2.21";

// --- helpers ----------------------------------------------------------------------------

/// The truth file the generator wrote next to `pcap`.
fn truth(pcap: &Path) -> Value {
    let mut p = pcap.as_os_str().to_owned();
    p.push(".truth.json");
    serde_json::from_str(&std::fs::read_to_string(p).expect("truth file")).expect("truth JSON")
}

/// Replays `pcap` with `config` (relative to the repository, or absolute).
fn replay(pcap: &Path, config: &str) -> Run {
    let r = run(&["-c", config, "-r", pcap.to_str().expect("utf-8 path")]);
    assert_eq!(
        r.code,
        0,
        "{}: exit {} stderr {}",
        pcap.display(),
        r.code,
        r.stderr
    );
    r
}

/// One alert as compared here: rule, phase, internal and external address, the external
/// port of the session (from the evidence), and the file name for filename alerts.
///
/// The header ports are left out on purpose: today they are those of whichever flow of the
/// session triggered the check (see `alert_header_is_the_sessions_main_flow`).
fn describe(a: &Value) -> String {
    let x = &a["xfer"];
    let e = &x["evidence"];
    let mut s = format!(
        "{} {} {} -> {}",
        x["rule"].as_str().unwrap(),
        x["phase"].as_str().unwrap(),
        a["src_ip"].as_str().unwrap(),
        a["dest_ip"].as_str().unwrap()
    );
    if let Some(p) = e["external_port"].as_u64() {
        s.push_str(&format!(" port {p}"));
    }
    if x["rule"] == "suspicious-filename" {
        s.push_str(&format!(" {}", e["file_name"].as_str().unwrap()));
    }
    s
}

/// Every alert of a run, described and sorted.
fn alert_set(r: &Run) -> Vec<String> {
    let mut v: Vec<String> = r.of("alert").into_iter().map(describe).collect();
    v.sort();
    v
}

fn assert_alerts(r: &Run, want: &[&str], what: &str) {
    let mut want: Vec<String> = want.iter().map(|s| (*s).to_owned()).collect();
    want.sort();
    assert_eq!(alert_set(r), want, "{what}: alerts");
}

/// The alert of `rule` in `phase` (exactly one).
fn the_alert<'a>(r: &'a Run, rule: &str, phase: &str) -> &'a Value {
    let found: Vec<&Value> = r
        .of("alert")
        .into_iter()
        .filter(|a| a["xfer"]["rule"] == rule && a["xfer"]["phase"] == phase)
        .collect();
    assert_eq!(found.len(), 1, "one {rule} {phase} alert");
    found[0]
}

/// The criterion `name` of an alert.
fn criterion<'a>(a: &'a Value, name: &str) -> &'a Value {
    a["xfer"]["criteria"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no criterion {name} in {}", a["xfer"]["criteria"]))
}

/// `stats.detect.<table>.<rule>` of the final stats record.
fn detect_count(r: &Run, table: &str, rule: &str) -> u64 {
    r.stats()["stats"]["detect"][table][rule]
        .as_u64()
        .unwrap_or_else(|| panic!("stats.detect.{table}.{rule}"))
}

/// Packet number (1-based, as EVE `pcap_cnt` counts) of the first TCP FIN between the two
/// ports. Reads the classic pcap the generator or tcpdump wrote (little-endian, Ethernet).
fn first_fin(pcap: &Path, port_a: u16, port_b: u16) -> u64 {
    let mut r = BufReader::with_capacity(1 << 20, File::open(pcap).expect("open pcap"));
    let mut global = [0u8; 24];
    r.read_exact(&mut global).expect("pcap header");
    assert_eq!(global[..4], [0xd4, 0xc3, 0xb2, 0xa1], "little-endian pcap");
    let mut rec = [0u8; 16];
    let mut frame = Vec::new();
    let mut n = 0u64;
    while r.read_exact(&mut rec).is_ok() {
        n += 1;
        let len = u32::from_le_bytes(rec[8..12].try_into().unwrap()) as usize;
        frame.resize(len, 0);
        r.read_exact(&mut frame).expect("pcap record");
        let Ok(p) = SlicedPacket::from_ethernet(&frame) else {
            continue;
        };
        if let Some(TransportSlice::Tcp(t)) = &p.transport {
            let ports = (t.source_port(), t.destination_port());
            if t.fin() && (ports == (port_a, port_b) || ports == (port_b, port_a)) {
                return n;
            }
        }
    }
    panic!(
        "{}: no FIN between ports {port_a} and {port_b}",
        pcap.display()
    );
}

/// The generator's FTP data flows (those linked to a control flow) in `truth`.
fn data_flows(t: &Value) -> Vec<&Value> {
    t["flows"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| !f["linked"].is_null())
        .collect()
}

fn u(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not a number: {v}"))
}

// --- rules firing -----------------------------------------------------------------------

/// 120 MB passive upload to an external server: outbound-ratio, transfer-size and
/// outbound-volume each fire once, while the data connection is still open, and the two
/// session rules get a closing record. A second replay writes the same alert lines.
#[test]
fn big_external_upload_alerts_while_it_runs() {
    let dir = Scratch::new("big-external");
    let pcap = generate(&dir, "ftp-big-upload-external", "big.pcap", &[]);
    let t = truth(&pcap);
    let r = replay(&pcap, GEN_CONFIG);
    let peer = format!("{WS} -> {FTP_EXT} port 21");
    assert_alerts(
        &r,
        &[
            &format!("outbound-ratio crossing {peer}"),
            &format!("transfer-size crossing {peer}"),
            &format!("outbound-volume crossing {peer}"),
            &format!("outbound-ratio session-end {peer}"),
            &format!("transfer-size session-end {peer}"),
        ],
        "ftp-big-upload-external",
    );

    let data = data_flows(&t);
    assert_eq!(data.len(), 1);
    let data = data[0];
    let size = u(&data["toserver"]["payload_bytes"]);
    assert_eq!(size, 120_000_000);
    let fin = first_fin(
        &pcap,
        u(&data["client_port"]) as u16,
        u(&data["server_port"]) as u16,
    );
    let fin_ts = data["last_ts"].as_str().unwrap();
    for rule in ["outbound-ratio", "transfer-size", "outbound-volume"] {
        let a = the_alert(&r, rule, "crossing");
        let cnt = u(&a["pcap_cnt"]);
        assert!(
            cnt < fin,
            "{rule} fired at packet {cnt}, not before the data FIN ({fin})"
        );
        assert!(
            a["timestamp"].as_str().unwrap() < fin_ts,
            "{rule} timestamp"
        );
        assert!(
            u(&a["xfer"]["evidence"]["outbound_bytes"]) < size,
            "{rule} fired on the figures so far"
        );
    }

    // Each fires at its first crossing, with the figures of that moment.
    let ratio = the_alert(&r, "outbound-ratio", "crossing");
    let out = u(&criterion(ratio, "outbound_bytes")["observed"]);
    assert!((1_048_576..2 * 1_048_576).contains(&out), "ratio at {out}");
    assert!(
        criterion(ratio, "outbound_share")["observed"]
            .as_f64()
            .unwrap()
            >= 0.9
    );
    let big = the_alert(&r, "transfer-size", "crossing");
    let out = u(&criterion(big, "session_outbound_bytes")["observed"]);
    assert!((52_428_800..53_000_000).contains(&out), "size at {out}");
    assert_eq!(
        big["xfer"]["evidence"]["file_name"], "project-assets.dat",
        "the file alone crossed"
    );
    // One host, one destination: one record scoped to the destination, carrying both
    // the host and the destination criterion.
    let vol = the_alert(&r, "outbound-volume", "crossing");
    assert_eq!(vol["xfer"]["evidence"]["scope"], "destination");
    for name in [
        "host_outbound_bytes_in_window",
        "destination_outbound_bytes_in_window",
    ] {
        let c = criterion(vol, name);
        assert_eq!(u(&c["threshold"]), 100_000_000);
        assert!((100_000_001..101_000_000).contains(&u(&c["observed"])));
    }
    // Closing records give the final figures and when the rule crossed.
    for rule in ["outbound-ratio", "transfer-size"] {
        let end = the_alert(&r, rule, "session-end");
        let crossing = the_alert(&r, rule, "crossing");
        assert_eq!(
            end["xfer"]["evidence"]["crossed_at"], crossing["timestamp"],
            "{rule} crossed_at"
        );
        assert!(u(&end["xfer"]["evidence"]["outbound_bytes"]) > size);
    }
    assert_eq!(r.stats()["stats"]["detect"]["session_end_records"], 2);

    let again = replay(&pcap, GEN_CONFIG);
    assert_eq!(
        alert_lines(&again),
        alert_lines(&r),
        "same capture, same alert lines"
    );
}

/// The `alert` lines of a run, exactly as written.
fn alert_lines(r: &Run) -> Vec<&str> {
    r.lines
        .iter()
        .filter(|l| l.contains("\"event_type\":\"alert\""))
        .map(String::as_str)
        .collect()
}

/// Five short FTP sessions with payload from one host to one external address and port
/// within four minutes: the fourth is one more than allowed and fires; the fifth repeats
/// the alert inside the suppression window, so it is counted, not written.
#[test]
fn repeated_sessions_fire_repeated_connections() {
    let dir = Scratch::new("repeated");
    let pcap = generate(&dir, "ftp-repeated", "repeated.pcap", &[]);
    let r = replay(&pcap, GEN_CONFIG);
    assert_alerts(
        &r,
        &[&format!(
            "repeated-connections crossing {WS} -> {FTP_EXT} port 21"
        )],
        "ftp-repeated",
    );
    let sessions = r.of("session");
    assert_eq!(sessions.len(), 5);
    let a = the_alert(&r, "repeated-connections", "crossing");
    let c = criterion(a, "sessions_in_window");
    assert_eq!((u(&c["observed"]), u(&c["threshold"])), (4, 3));
    let first_four: Vec<&Value> = sessions[..4].iter().map(|s| &s["session"]["id"]).collect();
    let listed: Vec<&Value> = a["xfer"]["evidence"]["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .collect();
    assert_eq!(listed, first_four, "the four sessions counted");
    assert_eq!(a["xfer"]["session_id"], sessions[3]["session"]["id"]);
    assert_eq!(a["xfer"]["suppressed_count"], 0);
    assert_eq!(detect_count(&r, "alerts", "repeated-connections"), 1);
    assert_eq!(detect_count(&r, "suppressed", "repeated-connections"), 1);

    let again = replay(&pcap, GEN_CONFIG);
    assert_eq!(alert_lines(&again), alert_lines(&r), "deterministic");
}

/// Suppression: with a 90 s window for repeated-connections and six sessions a minute
/// apart, the fourth session writes a record, the fifth is suppressed, and the sixth
/// (two minutes after the last record) writes one carrying `suppressed_count: 1` and the
/// series' `first_seen`. With the default hour, both repeats are only counted in the stats.
#[test]
fn suppressed_repeats_are_carried_by_the_next_record() {
    let dir = Scratch::new("suppression");
    let pcap = generate(&dir, "ftp-repeated", "six.pcap", &["--count", "6"]);
    let base = std::fs::read_to_string(root().join(GEN_CONFIG)).unwrap();
    let cfg = dir.write(
        "short-window.toml",
        &format!("{base}\n[suppression]\nrules = {{ repeated-connections = 90 }}\n"),
    );
    let r = replay(&pcap, &cfg);
    let written = r.of("alert");
    assert_eq!(alert_set(&r).len(), 2, "{:?}", alert_set(&r));
    let (first, second) = (written[0], written[1]);
    for a in [first, second] {
        assert_eq!(a["xfer"]["rule"], "repeated-connections");
    }
    assert_eq!(first["xfer"]["suppressed_count"], 0);
    assert_eq!(u(&criterion(first, "sessions_in_window")["observed"]), 4);
    assert_eq!(second["xfer"]["suppressed_count"], 1);
    // The detector keeps the last limit + 1 sessions (bounded memory): `observed` is 4
    // again and the evidence lists the four latest; the repeat count tells the rest.
    assert_eq!(u(&criterion(second, "sessions_in_window")["observed"]), 4);
    let latest: Vec<&Value> = r.of("session")[2..]
        .iter()
        .map(|s| &s["session"]["id"])
        .collect();
    let listed: Vec<&Value> = second["xfer"]["evidence"]["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .collect();
    assert_eq!(listed, latest);
    assert_eq!(second["xfer"]["first_seen"], first["xfer"]["last_seen"]);
    assert_eq!(second["xfer"]["last_seen"], second["timestamp"]);
    assert_eq!(detect_count(&r, "suppressed", "repeated-connections"), 1);

    // The default hour-long window folds both repeats into the count.
    let r = replay(&pcap, GEN_CONFIG);
    assert_eq!(r.of("alert").len(), 1);
    assert_eq!(detect_count(&r, "suppressed", "repeated-connections"), 2);
}

/// A hex-named file and a double extension, uploaded to two external servers.
#[test]
fn suspicious_filenames_fire() {
    let dir = Scratch::new("filenames");
    let pcap = generate(&dir, "ftp-suspicious-names", "names.pcap", &[]);
    let r = replay(&pcap, GEN_CONFIG);
    assert_alerts(
        &r,
        &[
            &format!(
                "suspicious-filename crossing {WS} -> {FTP_EXT} port 21 \
                 a1b2c3d4e5f60718293a4b5c6d7e8f90.bin"
            ),
            &format!("suspicious-filename crossing {WS} -> {FTP_EXT2} port 21 invoice.pdf.exe"),
        ],
        "ftp-suspicious-names",
    );
    for a in r.of("alert") {
        let e = &a["xfer"]["evidence"];
        let want = if e["file_name"] == "invoice.pdf.exe" {
            ("double_extension", "double-extension:pdf.exe")
        } else {
            ("random_stem", "random-stem:hex")
        };
        assert_eq!(a["xfer"]["criteria"][0]["name"], want.0);
        assert_eq!(e["filename_patterns"], serde_json::json!([want.1]));
    }
    let again = replay(&pcap, GEN_CONFIG);
    assert_eq!(alert_lines(&again), alert_lines(&r), "deterministic");
}

// --- negatives --------------------------------------------------------------------------

/// 110 MB between two internal hosts: no external peer, no alert, though the session and
/// its file were seen whole.
#[test]
fn internal_only_big_upload_raises_nothing() {
    let dir = Scratch::new("internal");
    let pcap = generate(&dir, "ftp-internal-big-upload", "internal.pcap", &[]);
    let r = replay(&pcap, GEN_CONFIG);
    assert_alerts(&r, &[], "ftp-internal-big-upload");
    let s = r.of("session");
    assert_eq!(s.len(), 1);
    let s = &s[0]["session"];
    assert_eq!(s["outbound_bytes"], 0);
    assert_eq!(s["files"][0]["name"], "nightly-dump.bak");
    assert_eq!(s["files"][0]["bytes"], 110_000_000);
}

/// A 4 MB download from an external FTP server: inbound, so no ratio alert (nor any other).
#[test]
fn external_download_gives_no_ratio_alert() {
    let dir = Scratch::new("download");
    let pcap = generate(&dir, "ftp-download-external", "download.pcap", &[]);
    let r = replay(&pcap, GEN_CONFIG);
    assert_alerts(&r, &[], "ftp-download-external");
    let s = &r.of("session")[0]["session"];
    assert!(u(&s["inbound_bytes"]) > 4_000_000);
    assert!(u(&s["outbound_bytes"]) < 1_000);
}

/// A 6 MB HTTP POST to an external host: not a file-transfer protocol.
#[test]
fn http_upload_gives_no_alert() {
    let dir = Scratch::new("http");
    let pcap = generate(&dir, "http-upload-external", "http.pcap", &[]);
    let r = replay(&pcap, GEN_CONFIG);
    assert_alerts(&r, &[], "http-upload-external");
    let f = r.of("flow");
    assert_eq!(f.len(), 1);
    assert_eq!(f[0]["app_proto"], "http");
    assert_eq!(f[0]["xfer"]["dest_zone"], "external");
    assert!(u(&f[0]["xfer"]["outbound_bytes"]) > 6_000_000);
}

/// DNS through an external resolver, an SSH session and a 5 MB scp upload.
#[test]
fn ssh_and_dns_give_no_alert() {
    let dir = Scratch::new("ssh-dns");
    let pcap = generate(&dir, "ssh-dns-external", "ssh-dns.pcap", &[]);
    let r = replay(&pcap, GEN_CONFIG);
    assert_alerts(&r, &[], "ssh-dns-external");
    let flows = r.of("flow");
    let labels: Vec<&str> = flows
        .iter()
        .map(|f| f["app_proto"].as_str().unwrap())
        .collect();
    assert_eq!(
        labels.iter().filter(|l| **l == "dns").count(),
        2,
        "{labels:?}"
    );
    assert_eq!(
        labels.iter().filter(|l| **l == "ssh").count(),
        2,
        "{labels:?}"
    );
    let scp = flows
        .iter()
        .map(|f| u(&f["xfer"]["outbound_bytes"]))
        .max()
        .unwrap();
    assert!(scp > 5_000_000, "the scp upload was counted outbound");
}

/// An allowlist entry for the partner's address silences everything about it, and only it.
#[test]
fn allowlisted_partner_gives_no_alert() {
    let dir = Scratch::new("allowlist");
    let pcap = generate(
        &dir,
        "ftp-big-upload-external",
        "partner.pcap",
        &["--size", "3000000"],
    );
    let base = std::fs::read_to_string(root().join(GEN_CONFIG)).unwrap();
    let cfg = dir.write(
        "partner.toml",
        &format!(
            "{base}\n[[allowlist]]\ndestination = \"{FTP_EXT}\"\n\
             comment = \"partner file exchange\"\n"
        ),
    );
    let peer = format!("{WS} -> {FTP_EXT} port 21");
    let plain = replay(&pcap, GEN_CONFIG);
    assert_alerts(
        &plain,
        &[
            &format!("outbound-ratio crossing {peer}"),
            &format!("outbound-ratio session-end {peer}"),
        ],
        "without the allowlist",
    );
    let allowed = replay(&pcap, &cfg);
    assert_alerts(&allowed, &[], "with the allowlist");
    assert_eq!(detect_count(&allowed, "allowlisted", "outbound-ratio"), 1);

    // The same entry leaves the other server's alert alone.
    let names = generate(&dir, "ftp-suspicious-names", "names.pcap", &[]);
    let r = replay(&names, &cfg);
    assert_alerts(
        &r,
        &[&format!(
            "suspicious-filename crossing {WS} -> {FTP_EXT2} port 21 invoice.pdf.exe"
        )],
        "allowlist covers only the partner",
    );
    assert_eq!(detect_count(&r, "allowlisted", "suspicious-filename"), 1);
}

// --- the namespace-lab recordings ---------------------------------------------------------

/// Real vsftpd / tftpd-hpa / Samba traffic (`pcaps/real/README.md`), with the lab config.
/// The expected set follows the rule text and the documented suppression keys:
///
/// - the passive upload of export-2026.zip (1.5 MiB, 99.97 % outbound) trips
///   outbound-ratio (crossing + closing record) and suspicious-filename (archive);
/// - the IPv6 session is half download (no ratio) but uploads a `.tar` (archive);
/// - the four TFTP requests to 198.51.100.20:69 all carried payload, one more than the 3
///   allowed: repeated-connections. Both uploads have archive names, but suspicious-filename
///   is suppressed per internal host and external address for an hour, so
///   `logs-2026.7z` is counted in `stats.detect.suppressed`, not written;
/// - downloads, internal traffic, FTPS (encrypted names, under 1 MiB) and encrypted SMB
///   (under 1 MiB) raise nothing.
#[test]
fn lab_captures_raise_exactly_the_expected_alerts() {
    let ext = "10.20.0.10 -> 198.51.100.20";
    let v6 = "fd00:20::10 -> 2001:db8:20::20";
    let cases: &[(&str, Vec<String>, u64)] = &[
        (
            "ftp-passive-upload-external.pcap",
            vec![
                format!("outbound-ratio crossing {ext} port 21"),
                format!("outbound-ratio session-end {ext} port 21"),
                format!("suspicious-filename crossing {ext} port 21 export-2026.zip"),
            ],
            0,
        ),
        ("ftp-active-download-external.pcap", vec![], 0),
        (
            "ftp-epsv-ipv6.pcap",
            vec![format!(
                "suspicious-filename crossing {v6} port 21 ipv6-export.tar"
            )],
            0,
        ),
        ("ftp-internal-upload.pcap", vec![], 0),
        ("ftps-explicit.pcap", vec![], 0),
        ("ftps-implicit.pcap", vec![], 0),
        (
            "tftp-put-get.pcap",
            vec![
                format!("repeated-connections crossing {ext} port 69"),
                format!("suspicious-filename crossing {ext} port 69 backup-2026.tar.gz"),
            ],
            1,
        ),
        ("smb2-put-get.pcap", vec![], 0),
        ("smb2-reordered.pcap", vec![], 0),
        ("smb3-encrypted.pcap", vec![], 0),
    ];
    let dir = root().join("pcaps/real");
    let listed = std::fs::read_dir(&dir)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "pcap")
        })
        .count();
    assert_eq!(listed, cases.len(), "every lab capture has a case");
    for (file, want, suppressed_names) in cases {
        let r = replay(&dir.join(file), LAB_CONFIG);
        let want: Vec<&str> = want.iter().map(String::as_str).collect();
        assert_alerts(&r, &want, file);
        assert_eq!(
            detect_count(&r, "suppressed", "suspicious-filename"),
            *suppressed_names,
            "{file}: suppressed filename alerts"
        );
        for a in r.of("alert") {
            assert_eq!(a["xfer"]["src_zone_source"], "home_nets", "{file}");
            assert_eq!(a["xfer"]["dest_zone_source"], "networks.external", "{file}");
        }
    }

    // The ratio alert on the real upload fires before the STOR data connection closes.
    let pcap = dir.join("ftp-passive-upload-external.pcap");
    let r = replay(&pcap, LAB_CONFIG);
    let stor = r
        .of("flow")
        .into_iter()
        .find(|f| f["xfer"]["command"] == "STOR")
        .expect("STOR data flow");
    let fin = first_fin(
        &pcap,
        u(&stor["src_port"]) as u16,
        u(&stor["dest_port"]) as u16,
    );
    let ratio = the_alert(&r, "outbound-ratio", "crossing");
    assert!(u(&ratio["pcap_cnt"]) < fin, "ratio before the STOR FIN");
    assert!(u(&ratio["xfer"]["evidence"]["outbound_bytes"]) < 1_572_983);
}

/// The TFTP recording with filename suppression off: both archive uploads are written, the
/// downloads (`firmware.bin`, `pxe-boot.img`) are not outbound and are not.
#[test]
fn lab_tftp_filenames_without_suppression() {
    let dir = Scratch::new("lab-tftp");
    let base = std::fs::read_to_string(root().join(LAB_CONFIG)).unwrap();
    let cfg = dir.write(
        "lab-nosup.toml",
        &format!("{base}\n[suppression]\nrules = {{ suspicious-filename = 0 }}\n"),
    );
    let r = replay(&root().join("pcaps/real/tftp-put-get.pcap"), &cfg);
    let ext = "10.20.0.10 -> 198.51.100.20 port 69";
    assert_alerts(
        &r,
        &[
            &format!("repeated-connections crossing {ext}"),
            &format!("suspicious-filename crossing {ext} backup-2026.tar.gz"),
            &format!("suspicious-filename crossing {ext} logs-2026.7z"),
        ],
        "tftp-put-get without filename suppression",
    );
}

// --- regressions: alert identity and filename timing ---------------------------------------

/// DESIGN §7 and docs/detections.md: an alert's header and `flow` object are those of the
/// session's main (control or request) flow. The engine builds them from whichever flow
/// triggered the check instead: the ratio crossing on the FTP upload names the data
/// connection (client port → PASV port), its closing record the LIST data connection, and
/// the TFTP filename alert the transfer flow (→ server's ephemeral port, not 69).
#[test]
fn alert_header_is_the_sessions_main_flow() {
    for file in ["ftp-passive-upload-external.pcap", "tftp-put-get.pcap"] {
        let r = replay(&root().join("pcaps/real").join(file), LAB_CONFIG);
        for a in r.of("alert") {
            let sid = &a["xfer"]["session_id"];
            let s = r
                .of("session")
                .into_iter()
                .find(|s| &s["session"]["id"] == sid)
                .expect("session record");
            let key = |v: &Value| {
                (
                    v["flow_id"].clone(),
                    v["src_port"].clone(),
                    v["dest_port"].clone(),
                )
            };
            assert_eq!(key(a), key(s), "{file}: {}", describe(a));
        }
    }
}

/// A TFTP WRQ names its file in the request, before any data moves; the FTP STOR alert
/// fires at the command (0 bytes so far). The TFTP filename alert only fires when the
/// session ends, because the request's file is never handed to the detector as new.
#[test]
fn tftp_filename_alert_fires_at_the_request() {
    let r = replay(&root().join("pcaps/real/tftp-put-get.pcap"), LAB_CONFIG);
    let a = the_alert(&r, "suspicious-filename", "crossing");
    let transfer = r
        .of("flow")
        .into_iter()
        .find(|f| {
            f["app_proto"] == "tftp-data" && f["xfer"]["session_id"] == a["xfer"]["session_id"]
        })
        .expect("transfer flow");
    assert!(
        u(&a["pcap_cnt"]) < u(&transfer["pcap_cnt"]),
        "fired at packet {}, the transfer's last packet is {}",
        a["pcap_cnt"],
        transfer["pcap_cnt"]
    );
}
