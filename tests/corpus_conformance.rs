//! Conformance over the shared public corpus: one line per ground-truth flow with our label
//! next to tshark's and nDPI's (`target/corpus-report.tsv`). Every flow where we differ from
//! either witness must be listed in `tests/corpus/explained.tsv` with a reason, and every
//! listed flow must still differ exactly that way (no stale explanations).
//!
//! Labels outside our vocabulary (NetBIOS, LLMNR, DHCP, QUIC …) are `unknown` to us by
//! contract (DESIGN §4), so a witness naming one of them agrees with our `unknown`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)] // test code

mod common;

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;

use serde_json::Value;

/// Our vocabulary as a witness label maps onto it.
fn norm_tshark(chain: &str, has_payload: bool) -> String {
    let c = chain.trim();
    let first = c.split(':').next().unwrap_or("");
    let mapped = match first {
        "ftp" => "ftp",
        "ftp-data" => "ftp-data",
        "nbss" if c.contains("smb") => "smb",
        "tftp" => "tftp",
        "http" => "http",
        "tls" => "tls",
        "ssh" => "ssh",
        // LLMNR and mDNS are the DNS message format on other ports.
        "dns" | "llmnr" | "mdns" => "dns",
        "smtp" => "smtp",
        "-" | "(no tshark flow)" | "" => {
            if has_payload {
                "unknown"
            } else {
                "none"
            }
        }
        _ => "unknown",
    };
    mapped.to_string()
}

fn norm_ndpi(label: &str, has_payload: bool) -> String {
    let l = label.trim();
    let mapped = if l.is_empty() {
        if has_payload { "unknown" } else { "none" }
    } else if l == "FTP_CONTROL" {
        "ftp"
    } else if l == "FTP_DATA" {
        "ftp-data"
    } else if l.contains("SMBv") {
        "smb"
    } else if l == "TFTP" {
        "tftp"
    } else if l == "HTTP" || l.ends_with(".HTTP") {
        "http"
    } else if l == "TLS" {
        "tls"
    } else if l == "SSH" {
        "ssh"
    } else if l.starts_with("DNS") || l == "LLMNR" || l == "MDNS" {
        "dns"
    } else if l == "SMTP" {
        "smtp"
    } else {
        "unknown"
    };
    mapped.to_string()
}

/// Our label in the witnesses' vocabulary: data channels compare as their protocol family
/// where the witness has no separate name for them.
fn comparable(ours: &str, witness: &str) -> bool {
    ours == witness
        || (ours == "tftp-data" && witness == "tftp")
        || (ours == "ftps-data" && witness == "tls")
}

fn endpoint(s: &str) -> (String, u64) {
    let (ip, port) = s.rsplit_once(':').unwrap();
    (
        ip.trim_start_matches('[').trim_end_matches(']').to_string(),
        port.parse().unwrap(),
    )
}

#[test]
fn corpus_labels_agree_or_are_explained() {
    let Some(corpus) = common::corpus() else {
        eprintln!("corpus_conformance: ../shared/pcaps/corpus not found; skipped");
        return;
    };
    let gt = std::fs::read_to_string(corpus.join("GROUND_TRUTH_FLOWS.tsv")).unwrap();
    let mut by_file: BTreeMap<String, Vec<Vec<String>>> = BTreeMap::new();
    for line in gt.lines().skip(1) {
        let cols: Vec<String> = line.split('\t').map(str::to_string).collect();
        by_file.entry(cols[0].clone()).or_default().push(cols);
    }
    let explained_text =
        std::fs::read_to_string(common::root().join("tests/corpus/explained.tsv")).unwrap();
    let mut explained: HashMap<(String, String), (String, String)> = HashMap::new();
    for line in explained_text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
    {
        let c: Vec<&str> = line.splitn(4, '\t').collect();
        assert_eq!(
            c.len(),
            4,
            "explained.tsv line needs file, flow, our label, reason: {line}"
        );
        explained.insert(
            (c[0].to_string(), c[1].to_string()),
            (c[2].to_string(), c[3].to_string()),
        );
    }

    let mut report =
        String::from("file\tflow\tl4\tclient\tserver\tours\ttshark\tndpi\tstatus\treason\n");
    let mut problems = Vec::new();
    let mut used = std::collections::HashSet::new();
    let (mut total, mut agree) = (0, 0);
    for (file, rows) in &by_file {
        let path = corpus.join(file);
        let run = common::run(&["-r", path.to_str().unwrap()]);
        let flows: Vec<&Value> = run.of("flow");
        for r in rows {
            let (flow_no, l4, client, server) = (&r[1], &r[2], &r[3], &r[4]);
            if client.is_empty() || server.is_empty() || !matches!(l4.as_str(), "TCP" | "UDP") {
                continue;
            }
            total += 1;
            let (cip, cport) = endpoint(client);
            let (sip, sport) = endpoint(server);
            let has_payload =
                r[6].parse::<u64>().unwrap_or(0) + r[7].parse::<u64>().unwrap_or(0) > 0;
            let proto = if l4 == "TCP" { "TCP" } else { "UDP" };
            let found = flows.iter().find(|f| {
                f["proto"] == proto
                    && ((f["src_ip"] == cip.as_str()
                        && f["src_port"] == cport
                        && f["dest_ip"] == sip.as_str()
                        && f["dest_port"] == sport)
                        || (f["src_ip"] == sip.as_str()
                            && f["src_port"] == sport
                            && f["dest_ip"] == cip.as_str()
                            && f["dest_port"] == cport))
            });
            let ours = match found {
                Some(f) => f["app_proto"].as_str().unwrap_or("none").to_string(),
                None => "missing".to_string(),
            };
            let tshark = norm_tshark(&r[8], has_payload);
            let ndpi = norm_ndpi(&r[9], has_payload);
            let key = (file.clone(), flow_no.clone());
            let agrees = comparable(&ours, &tshark) && comparable(&ours, &ndpi);
            let (status, reason) = if agrees {
                agree += 1;
                if explained.contains_key(&key) {
                    problems.push(format!(
                        "stale explanation (now agrees): {file} flow {flow_no}"
                    ));
                }
                ("agree", String::new())
            } else {
                match explained.get(&key) {
                    Some((label, reason)) if *label == ours => {
                        used.insert(key.clone());
                        ("explained", reason.clone())
                    }
                    Some((label, _)) => {
                        problems.push(format!(
                            "{file} flow {flow_no}: explained for label {label} but ours is now {ours} (tshark {tshark}, nDPI {ndpi})"
                        ));
                        ("WRONG-EXPLANATION", String::new())
                    }
                    None => {
                        problems.push(format!(
                            "{file} flow {flow_no} {client} -> {server}: ours {ours}, tshark {tshark} ({}), nDPI {ndpi} ({})",
                            r[8], r[9]
                        ));
                        ("UNEXPLAINED", String::new())
                    }
                }
            };
            let _ = writeln!(
                report,
                "{file}\t{flow_no}\t{l4}\t{client}\t{server}\t{ours}\t{tshark}\t{ndpi}\t{status}\t{reason}"
            );
        }
    }
    for key in explained.keys() {
        if !used.contains(key) && !problems.iter().any(|p| p.contains(&key.0)) {
            let still_listed = by_file
                .get(&key.0)
                .is_some_and(|rows| rows.iter().any(|r| r[1] == key.1));
            if !still_listed {
                problems.push(format!(
                    "explained.tsv names a flow not in the ground truth: {} flow {}",
                    key.0, key.1
                ));
            }
        }
    }
    let out = common::root().join("target/corpus-report.tsv");
    std::fs::create_dir_all(out.parent().unwrap()).unwrap();
    std::fs::write(&out, &report).unwrap();
    eprintln!(
        "corpus_conformance: {total} flows, {agree} agree with both witnesses, report in {}",
        out.display()
    );
    assert!(
        problems.is_empty(),
        "{} conformance problems:\n{}",
        problems.len(),
        problems.join("\n")
    );
}
