//! Replays the project's generated captures and checks every flow record against the
//! generator's own truth file: orientation, packets, wire bytes, unique payload,
//! retransmitted bytes, zones, labels and mismatch verdicts.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)] // test code

mod common;

use common::{find_flow, replay, truth};
use serde_json::Value;

const CAPTURES: &[&str] = &[
    "demo.pcap",
    "mismatch.pcap",
    "ftp-passive-upload.pcap",
    "ftp-passive-download.pcap",
    "ftp-active-upload.pcap",
    "ftp-active-download.pcap",
    "ftp-epsv-upload.pcap",
    "ftp-eprt-ipv6.pcap",
    "ftps-explicit.pcap",
    "ftps-implicit.pcap",
    "tftp-get.pcap",
    "tftp-put.pcap",
    "tftp-blksize.pcap",
    "tftp-error.pcap",
    "smb2-put.pcap",
    "smb2-get.pcap",
    "smb3-encrypted.pcap",
    "smb1-negotiate.pcap",
];

fn u(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not a number: {v}"))
}

#[test]
fn flow_records_match_generator_truth() {
    for pcap in CAPTURES {
        let run = replay(pcap);
        let t = truth(pcap);
        let flows = t["flows"].as_array().expect("flows");
        assert_eq!(
            run.of("flow").len(),
            flows.len(),
            "{pcap}: number of flow records"
        );
        for tf in flows {
            let (cip, cport) = (tf["client_ip"].as_str().unwrap(), u(&tf["client_port"]));
            let (sip, sport) = (tf["server_ip"].as_str().unwrap(), u(&tf["server_port"]));
            let linked = !tf["linked"].is_null();
            // Unlinked flows must be oriented as the generator opened them. A linked TFTP
            // transfer's first packet comes from the server's new port, so only its link
            // can orient it (checked by the session tests).
            let (f, reversed) = match find_flow(&run, cip, cport, sip, sport) {
                Some(f) => (f, false),
                None if linked => (
                    find_flow(&run, sip, sport, cip, cport).unwrap_or_else(|| {
                        panic!("{pcap}: no flow between {cip}:{cport} and {sip}:{sport}")
                    }),
                    true,
                ),
                None => panic!("{pcap}: no flow {cip}:{cport} -> {sip}:{sport}"),
            };
            let ctx = format!("{pcap} flow {}", tf["id"]);
            let sides = if reversed {
                [("toserver", "toclient"), ("toclient", "toserver")]
            } else {
                [("toserver", "toserver"), ("toclient", "toclient")]
            };
            for (ours, theirs) in sides {
                assert_eq!(
                    u(&f["flow"][format!("pkts_{ours}")]),
                    u(&tf[theirs]["pkts"]),
                    "{ctx} pkts_{ours}"
                );
                assert_eq!(
                    u(&f["flow"][format!("bytes_{ours}")]),
                    u(&tf[theirs]["wire_bytes"]),
                    "{ctx} bytes_{ours}"
                );
                assert_eq!(
                    u(&f["xfer"][format!("payload_{ours}")]),
                    u(&tf[theirs]["payload_bytes"]),
                    "{ctx} payload_{ours}"
                );
                assert_eq!(
                    u(&f["xfer"][format!("retransmitted_{ours}")]),
                    u(&tf[theirs]["retransmitted_bytes"]),
                    "{ctx} retransmitted_{ours}"
                );
                assert_eq!(
                    u(&f["xfer"][format!("missing_{ours}")]),
                    0,
                    "{ctx} missing_{ours}"
                );
            }
            let (cz, sz) = if reversed {
                ("server_zone", "client_zone")
            } else {
                ("client_zone", "server_zone")
            };
            assert_eq!(f["xfer"]["src_zone"], tf[cz], "{ctx} src_zone");
            assert_eq!(f["xfer"]["dest_zone"], tf[sz], "{ctx} dest_zone");
            if tf["linked"].is_null() {
                assert_eq!(f["app_proto"], tf["app_proto"], "{ctx} app_proto");
            }
        }
    }
}

#[test]
fn mismatch_verdicts_match_generator_truth() {
    for pcap in CAPTURES {
        let run = replay(pcap);
        let t = truth(pcap);
        let mut want: Vec<(String, u64, String)> = t["flows"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|f| {
                f["expected_verdict"].as_str().map(|v| {
                    (
                        f["client_ip"].as_str().unwrap().to_string(),
                        u(&f["client_port"]),
                        v.to_string(),
                    )
                })
            })
            .collect();
        let mut got: Vec<(String, u64, String)> = run
            .of("alert")
            .into_iter()
            .filter(|a| {
                matches!(
                    a["xfer"]["rule"].as_str(),
                    Some("port-mismatch" | "expected-protocol-absent" | "direction-disagreement")
                )
            })
            .map(|a| {
                (
                    a["src_ip"].as_str().unwrap().to_string(),
                    u(&a["src_port"]),
                    a["xfer"]["rule"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        want.sort();
        got.sort();
        assert_eq!(got, want, "{pcap}: mismatch alerts");
    }
}

/// Every session the generator wrote appears once, with the outbound and inbound payload
/// bytes of all its flows rolled up, and (where the protocol shows them in clear) its files
/// with direction and size.
#[test]
fn sessions_roll_up_linked_flows_and_files() {
    for pcap in CAPTURES {
        let run = replay(pcap);
        let t = truth(pcap);
        let ours = run.of("session");
        let Some(sessions) = t["sessions"].as_array() else {
            continue;
        };
        assert_eq!(
            ours.len(),
            sessions.len(),
            "{pcap}: number of session records"
        );
        for ts in sessions {
            let kind = ts["kind"].as_str().unwrap();
            let s = ours
                .iter()
                .find(|s| {
                    s["src_ip"] == ts["client_ip"]
                        && s["dest_ip"] == ts["server_ip"]
                        && s["app_proto"].as_str().unwrap().starts_with(&kind[..3])
                        && s["session"]["outbound_bytes"] == ts["outbound_payload_bytes"]
                })
                .unwrap_or_else(|| {
                    panic!(
                        "{pcap}: no {kind} session {} -> {} with outbound {}",
                        ts["client_ip"], ts["server_ip"], ts["outbound_payload_bytes"]
                    )
                });
            let ctx = format!("{pcap} {kind} session {}", s["session"]["id"]);
            assert_eq!(
                s["session"]["inbound_bytes"], ts["inbound_payload_bytes"],
                "{ctx} inbound"
            );
            assert_eq!(
                s["xfer"]["session_id"], s["session"]["id"],
                "{ctx} session_id"
            );
            // Encrypted sessions (FTPS, SMB3 transform) hide file names: nothing to compare.
            let encrypted =
                ts["tls"].as_str().is_some_and(|v| v != "none") || *pcap == "smb3-encrypted.pcap";
            if encrypted {
                continue;
            }
            let mut want: Vec<(String, String, u64)> = ts["files"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|f| f["size"].as_u64().unwrap_or(0) > 0 || f["direction"] != "upload")
                .map(|f| {
                    (
                        f["name"].as_str().unwrap().to_string(),
                        f["direction"].as_str().unwrap().to_string(),
                        u(&f["size"]),
                    )
                })
                .collect();
            let mut got: Vec<(String, String, u64)> = s["session"]["files"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|f| {
                    f["direction"] != "listing" && f["kind"] != "pipe" && u(&f["bytes"]) > 0
                })
                .map(|f| {
                    (
                        f["name"].as_str().unwrap().to_string(),
                        f["direction"].as_str().unwrap().to_string(),
                        u(&f["bytes"]),
                    )
                })
                .collect();
            want.retain(|f| f.2 > 0);
            // STOU: the server picks the name and says it in a reply the parser does not
            // read; the session keeps the client's argument.
            for f in &mut want {
                if f.0 == "upload.7" {
                    f.0 = "upload".to_string();
                }
            }
            want.sort();
            got.sort();
            assert_eq!(got, want, "{ctx} files");
        }
    }
}

/// Linked data channels carry the label the expectation gave them and their session id.
#[test]
fn linked_flows_are_labelled_and_tied_to_their_session() {
    for pcap in CAPTURES {
        let run = replay(pcap);
        let t = truth(pcap);
        for tf in t["flows"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| !f["linked"].is_null())
        {
            let (cip, cport) = (tf["client_ip"].as_str().unwrap(), u(&tf["client_port"]));
            let (sip, sport) = (tf["server_ip"].as_str().unwrap(), u(&tf["server_port"]));
            let f = find_flow(&run, cip, cport, sip, sport)
                .or_else(|| find_flow(&run, sip, sport, cip, cport))
                .unwrap_or_else(|| {
                    panic!("{pcap}: no linked flow {cip}:{cport} <-> {sip}:{sport}")
                });
            let ctx = format!("{pcap} flow {}", tf["id"]);
            assert_eq!(f["app_proto"], tf["app_proto"], "{ctx} app_proto");
            assert_eq!(
                f["app_proto_expected"], tf["app_proto"],
                "{ctx} app_proto_expected"
            );
            assert!(f["xfer"]["session_id"].is_string(), "{ctx} session_id");
            if tf["app_proto"] == "tftp-data" {
                // We orient a TFTP transfer by its request: the requesting client is src.
                assert_eq!(f["src_ip"], tf["server_ip"], "{ctx} TFTP client is src");
            }
        }
    }
}
