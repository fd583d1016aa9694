//! Encapsulations end to end: the real passive FTP upload of `pcaps/real` is re-wrapped,
//! frame by frame, in each encapsulation a remote-SPAN or routed-segment sensor receives
//! (GRE, GRE with key/sequence/checksum carrying Ethernet, ERSPAN I/II/III, VXLAN, Geneve,
//! MPLS, PPPoE), and every wrapped capture must give the same flows, session bytes and
//! alerts as the plain one, with `xfer.tunnel` naming the tunnel.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)] // test code

mod common;

use std::path::Path;
use std::process::Command;

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_xferwatch");

/// Timestamp seconds, fraction and bytes of one capture record.
type Frame = (u32, u32, Vec<u8>);

/// The file header and every record of a classic little-endian pcap.
fn read_pcap(bytes: &[u8]) -> (Vec<u8>, Vec<Frame>) {
    assert_eq!(
        &bytes[..4],
        &[0xd4, 0xc3, 0xb2, 0xa1],
        "little-endian µs pcap"
    );
    let header = bytes[..24].to_vec();
    let mut out = Vec::new();
    let mut at = 24;
    while at + 16 <= bytes.len() {
        let u = |o: usize| u32::from_le_bytes(bytes[at + o..at + o + 4].try_into().unwrap());
        let (sec, frac, caplen) = (u(0), u(4), u(8) as usize);
        out.push((sec, frac, bytes[at + 16..at + 16 + caplen].to_vec()));
        at += 16 + caplen;
    }
    (header, out)
}

fn write_pcap(path: &Path, header: &[u8], frames: &[Frame]) {
    let mut f = header.to_vec();
    for (sec, frac, data) in frames {
        f.extend_from_slice(&sec.to_le_bytes());
        f.extend_from_slice(&frac.to_le_bytes());
        f.extend_from_slice(&(data.len() as u32).to_le_bytes());
        f.extend_from_slice(&(data.len() as u32).to_le_bytes());
        f.extend_from_slice(data);
    }
    std::fs::write(path, f).unwrap();
}

/// Ethernet + IPv4 (192.0.2.1 → 192.0.2.2, the tunnel endpoints) + `body` as `proto`.
fn outer_ip(proto: u8, body: &[u8]) -> Vec<u8> {
    let mut f = vec![0x02, 0, 0, 0, 0, 0xbb, 0x02, 0, 0, 0, 0, 0xaa, 0x08, 0x00];
    let total = (20 + body.len()) as u16;
    f.extend_from_slice(&[
        0x45,
        0,
        (total >> 8) as u8,
        total as u8,
        0,
        0,
        0x40,
        0,
        64,
        proto,
    ]);
    f.extend_from_slice(&[0, 0, 192, 0, 2, 1, 192, 0, 2, 2]);
    f.extend_from_slice(body);
    f
}

fn outer_udp(dport: u16, header: &[u8], inner: &[u8]) -> Vec<u8> {
    let len = (8 + header.len() + inner.len()) as u16;
    let mut u = vec![0xc3, 0x50, (dport >> 8) as u8, dport as u8];
    u.extend_from_slice(&[(len >> 8) as u8, len as u8, 0, 0]);
    u.extend_from_slice(header);
    u.extend_from_slice(inner);
    outer_ip(17, &u)
}

fn gre(header: &[u8], inner: &[u8]) -> Vec<u8> {
    let mut g = header.to_vec();
    g.extend_from_slice(inner);
    outer_ip(47, &g)
}

/// Rewraps an Ethernet frame in encapsulation `kind`.
fn wrap(kind: &str, eth: &[u8]) -> Vec<u8> {
    let ip = &eth[14..];
    let l2 = &eth[..12];
    let (et0, et1) = (eth[12], eth[13]);
    let v6 = (et0, et1) == (0x86, 0xdd);
    match kind {
        "gre" => gre(&[0x00, 0x00, et0, et1], ip),
        // Checksum, key and sequence present, carrying the whole Ethernet frame.
        "gre-teb" => gre(
            &[0xb0, 0x00, 0x65, 0x58, 0, 0, 0, 0, 0, 0, 0, 7, 0, 0, 0, 1],
            eth,
        ),
        "erspan-i" => gre(&[0x00, 0x00, 0x88, 0xbe], eth),
        "erspan-ii" => gre(
            &[
                0x10, 0x00, 0x88, 0xbe, 0, 0, 0, 1, 0x10, 0x64, 0x00, 0x05, 0, 0, 0, 0,
            ],
            eth,
        ),
        "erspan-iii" => gre(
            &[
                0x10, 0x00, 0x22, 0xeb, 0, 0, 0, 1, 0x20, 0x64, 0x00, 0x05, 1, 2, 3, 4, 0, 0, 0, 1,
                9, 9, 9, 9, 9, 9, 9, 9,
            ],
            eth,
        ),
        "vxlan" => outer_udp(4789, &[0x08, 0, 0, 0, 0, 0x10, 0x00, 0], eth),
        "geneve" => outer_udp(6081, &[0x01, 0, 0x65, 0x58, 0, 0, 0x2a, 0, 0, 1, 2, 3], eth),
        "mpls" => {
            let mut f = l2.to_vec();
            f.extend_from_slice(&[0x88, 0x47, 0x00, 0x01, 0x00, 0x40, 0x00, 0x02, 0x01, 0x40]);
            f.extend_from_slice(ip);
            f
        }
        "pppoe" => {
            let len = (ip.len() + 2) as u16;
            let mut f = l2.to_vec();
            f.extend_from_slice(&[0x88, 0x64, 0x11, 0x00, 0x00, 0x2a]);
            let ppp = if v6 { 0x57 } else { 0x21 };
            f.extend_from_slice(&[(len >> 8) as u8, len as u8, 0x00, ppp]);
            f.extend_from_slice(ip);
            f
        }
        other => panic!("unknown encapsulation {other}"),
    }
}

fn run(pcap: &Path) -> Vec<Value> {
    let out = Command::new(BIN)
        .arg("-c")
        .arg(common::root().join("pcaps/real/lab.toml"))
        .arg("-r")
        .arg(pcap)
        .args(["-o", "-"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// What must not change with the encapsulation.
fn summary(records: &[Value]) -> Vec<String> {
    let mut v: Vec<String> = records
        .iter()
        .filter_map(|r| match r["event_type"].as_str().unwrap() {
            "flow" => Some(format!(
                "flow {}:{} -> {}:{} {} {} {}",
                r["src_ip"],
                r["src_port"],
                r["dest_ip"],
                r["dest_port"],
                r["app_proto"],
                r["xfer"]["payload_toserver"],
                r["xfer"]["payload_toclient"]
            )),
            "session" => Some(format!(
                "session {} out {} in {}",
                r["app_proto"], r["session"]["outbound_bytes"], r["session"]["inbound_bytes"]
            )),
            "alert" => Some(format!(
                "alert {} {} -> {}",
                r["xfer"]["rule"], r["src_ip"], r["dest_ip"]
            )),
            _ => None,
        })
        .collect();
    v.sort();
    v
}

#[test]
fn every_encapsulation_gives_the_plain_result() {
    let src = common::root().join("pcaps/real/ftp-passive-upload-external.pcap");
    let (header, frames) = read_pcap(&std::fs::read(&src).unwrap());
    let plain = run(&src);
    let want = summary(&plain);
    assert!(
        want.iter()
            .any(|s| s.starts_with("alert \"outbound-ratio\"")),
        "{want:#?}"
    );
    assert!(
        want.iter().any(|s| s.starts_with("session \"ftp\"")),
        "{want:#?}"
    );

    let tmp = std::env::temp_dir().join(format!("xw-tunnels-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    let kinds = [
        ("gre", Some("gre")),
        ("gre-teb", Some("gre")),
        ("erspan-i", Some("erspan-i")),
        ("erspan-ii", Some("erspan-ii")),
        ("erspan-iii", Some("erspan-iii")),
        ("vxlan", Some("vxlan")),
        ("geneve", Some("geneve")),
        ("mpls", None),
        ("pppoe", None),
    ];
    for (kind, label) in kinds {
        let wrapped: Vec<_> = frames
            .iter()
            .map(|(s, f, d)| (*s, *f, wrap(kind, d)))
            .collect();
        let path = tmp.join(format!("{kind}.pcap"));
        write_pcap(&path, &header, &wrapped);
        let got = run(&path);
        assert_eq!(summary(&got), want, "{kind}");
        for f in got.iter().filter(|r| r["event_type"] == "flow") {
            assert_eq!(f["xfer"]["tunnel"].as_str(), label, "{kind}: {f}");
        }
        let stats = got.last().unwrap();
        assert_eq!(stats["event_type"], "stats");
        let decoder = &stats["stats"]["decoder"];
        let opened = match label {
            Some("gre") => decoder["tunnel_gre"].as_u64(),
            Some("vxlan") => decoder["tunnel_vxlan"].as_u64(),
            Some("geneve") => decoder["tunnel_geneve"].as_u64(),
            Some(_) => decoder["tunnel_erspan"].as_u64(),
            None => Some(frames.len() as u64),
        };
        assert_eq!(opened, Some(frames.len() as u64), "{kind}: {decoder}");
    }
    let _ = std::fs::remove_dir_all(&tmp);
}
