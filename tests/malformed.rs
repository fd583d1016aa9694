//! Malformed captures end to end (DESIGN §9, issue 7): a corrupt capture file ends that file
//! with exit code 2 after what was read is processed and flushed, with one message naming
//! the damage and no panic; link types may change from one pcapng interface to the next;
//! frames of 64 KiB and more decode.
//!
//! The reader's own unit tests (`src/capture/mod.rs`) cover classic pcap damage record by
//! record; here every case goes through the binary, and pcapng damage is added.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)] // test code

mod common;

use std::path::PathBuf;

use common::{Run, run};
use etherparse::PacketBuilder;
use serde_json::Value;

const LINKTYPE_ETHERNET: u32 = 1;
const LINKTYPE_RAW: u32 = 101;
const LINKTYPE_LINUX_SLL: u32 = 113;
/// LINKTYPE_USER0: nothing this sensor decodes.
const LINKTYPE_USER0: u32 = 147;

const CLIENT: [u8; 4] = [10, 1, 2, 10];
const SERVER: [u8; 4] = [203, 0, 113, 50];

/// A capture file in the temporary directory, removed when dropped.
struct TempCapture(PathBuf);

impl TempCapture {
    fn new(name: &str, bytes: &[u8]) -> TempCapture {
        let p =
            std::env::temp_dir().join(format!("xferwatch-malformed-{}-{name}", std::process::id()));
        std::fs::write(&p, bytes).unwrap();
        TempCapture(p)
    }

    fn replay(&self) -> Run {
        let r = run(&["-c", "pcaps/demo.toml", "-r", self.0.to_str().unwrap()]);
        assert!(
            !r.stderr.contains("panicked"),
            "{}: panic: {}",
            self.0.display(),
            r.stderr
        );
        r
    }
}

impl Drop for TempCapture {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

// --- frames -------------------------------------------------------------------------------

/// Client-to-server (`to_server`) or reply TCP segment as an IPv4 packet without link layer.
fn ipv4_tcp(to_server: bool, seq: u32, syn: bool, payload: &[u8]) -> Vec<u8> {
    let (src, dst, sport, dport) = if to_server {
        (CLIENT, SERVER, 40_000, 21)
    } else {
        (SERVER, CLIENT, 21, 40_000)
    };
    let b = PacketBuilder::ipv4(src, dst, 64).tcp(sport, dport, seq, 64_000);
    let b = if syn { b.syn() } else { b.ack(1) };
    let mut out = Vec::new();
    b.write(&mut out, payload).unwrap();
    out
}

fn ethernet(ip: &[u8], ethertype: u16) -> Vec<u8> {
    let mut f = vec![0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1];
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(ip);
    f
}

/// Linux cooked capture v1: packet type, ARPHRD, address length and address, protocol.
fn linux_sll(ip: &[u8]) -> Vec<u8> {
    let mut f = vec![0, 4, 0, 1, 0, 6, 2, 0, 0, 0, 0, 1, 0, 0];
    f.extend_from_slice(&0x0800u16.to_be_bytes());
    f.extend_from_slice(ip);
    f
}

/// The three packets every damaged file starts with: handshake SYN, SYN-ACK, and an FTP
/// banner from the server.
fn good_frames() -> Vec<Vec<u8>> {
    vec![
        ethernet(&ipv4_tcp(true, 100, true, b""), 0x0800),
        ethernet(&ipv4_tcp(false, 500, true, b""), 0x0800),
        ethernet(&ipv4_tcp(false, 501, false, b"220 ready\r\n"), 0x0800),
    ]
}

// --- file formats ---------------------------------------------------------------------------

fn pcap_header(linktype: u32) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    v.extend_from_slice(&2u16.to_le_bytes());
    v.extend_from_slice(&4u16.to_le_bytes());
    v.extend_from_slice(&[0; 8]);
    v.extend_from_slice(&262_144u32.to_le_bytes());
    v.extend_from_slice(&linktype.to_le_bytes());
    v
}

/// A classic record at second `sec` whose header claims `caplen` bytes.
fn pcap_record(sec: u32, data: &[u8], caplen: u32) -> Vec<u8> {
    let mut v = Vec::new();
    for x in [sec, 0, caplen, data.len() as u32] {
        v.extend_from_slice(&x.to_le_bytes());
    }
    v.extend_from_slice(data);
    v
}

fn pcap(frames: &[Vec<u8>]) -> Vec<u8> {
    let mut v = pcap_header(LINKTYPE_ETHERNET);
    for (i, f) in frames.iter().enumerate() {
        v.extend(pcap_record(1_793_610_000 + i as u32, f, f.len() as u32));
    }
    v
}

/// A pcapng block: type, total length, body padded to 4 bytes, total length again.
fn ng_block(kind: u32, body: &[u8]) -> Vec<u8> {
    let mut padded = body.to_vec();
    padded.resize(body.len().div_ceil(4) * 4, 0);
    let total = (12 + padded.len()) as u32;
    let mut v = Vec::new();
    v.extend_from_slice(&kind.to_le_bytes());
    v.extend_from_slice(&total.to_le_bytes());
    v.extend_from_slice(&padded);
    v.extend_from_slice(&total.to_le_bytes());
    v
}

fn ng_section() -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(&0x1a2b_3c4du32.to_le_bytes());
    body.extend_from_slice(&1u16.to_le_bytes());
    body.extend_from_slice(&0u16.to_le_bytes());
    body.extend_from_slice(&u64::MAX.to_le_bytes()); // section length unknown
    ng_block(0x0a0d_0d0a, &body)
}

fn ng_interface(linktype: u16) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(&linktype.to_le_bytes());
    body.extend_from_slice(&0u16.to_le_bytes());
    body.extend_from_slice(&262_144u32.to_le_bytes());
    ng_block(1, &body)
}

/// An enhanced packet block on interface `if_id` at second `sec` (microsecond units).
fn ng_packet(if_id: u32, sec: u64, data: &[u8]) -> Vec<u8> {
    let ts = sec * 1_000_000;
    let mut body = Vec::new();
    body.extend_from_slice(&if_id.to_le_bytes());
    body.extend_from_slice(&((ts >> 32) as u32).to_le_bytes());
    body.extend_from_slice(&(ts as u32).to_le_bytes());
    body.extend_from_slice(&(data.len() as u32).to_le_bytes());
    body.extend_from_slice(&(data.len() as u32).to_le_bytes());
    body.extend_from_slice(data);
    ng_block(6, &body)
}

/// Section, one Ethernet interface and the good frames.
fn pcapng_good() -> Vec<u8> {
    let mut v = ng_section();
    v.extend(ng_interface(LINKTYPE_ETHERNET as u16));
    for (i, f) in good_frames().iter().enumerate() {
        v.extend(ng_packet(0, 1_793_610_000 + i as u64, f));
    }
    v
}

// --- checks ---------------------------------------------------------------------------------

fn n(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not a count: {v}"))
}

/// Exit 2, one error line naming the damage, and the good frames read, tracked and flushed:
/// the final stats count them and the flow they make is written.
fn assert_failed_after_good_frames(r: &Run, what: &str, message: &str) {
    assert_eq!(r.code, 2, "{what}: exit {} stderr {}", r.code, r.stderr);
    assert!(
        r.stderr.contains(message),
        "{what}: stderr {:?} lacks {message:?}",
        r.stderr
    );
    let s = &r.stats()["stats"];
    assert_eq!(n(&s["capture"]["frames"]), 3, "{what}: {}", s["capture"]);
    assert_eq!(n(&s["capture"]["input_errors"]), 1, "{what}");
    let flows = r.of("flow");
    assert_eq!(flows.len(), 1, "{what}: the flow read before the damage");
    let f = &flows[0]["flow"];
    assert_eq!(n(&f["pkts_toserver"]) + n(&f["pkts_toclient"]), 3, "{what}");
    assert_eq!(n(&flows[0]["xfer"]["payload_toclient"]), 11, "{what}");
}

// --- classic pcap -----------------------------------------------------------------------------

#[test]
fn truncated_record_exits_2_after_flushing_what_was_read() {
    let mut bytes = pcap(&good_frames());
    let next = ethernet(&ipv4_tcp(true, 101, false, b"USER jdoe\r\n"), 0x0800);
    let rec = pcap_record(1_793_610_010, &next, next.len() as u32);
    // Cut inside the record's data, then inside its header.
    for cut in [rec.len() - 5, 9] {
        let mut b = bytes.clone();
        b.extend_from_slice(&rec[..cut]);
        let f = TempCapture::new(&format!("trunc{cut}.pcap"), &b);
        assert_failed_after_good_frames(&f.replay(), "truncated record", "truncated");
    }
    bytes.truncate(10);
    let f = TempCapture::new("trunc-header.pcap", &bytes);
    let r = f.replay();
    assert_eq!(r.code, 2, "a cut global header: {}", r.stderr);
}

/// A record length beyond `max_record_bytes` (default 256 KiB) is corrupt whether the bytes
/// are there or not; the reader never allocates for it. (A claim just above the limit at
/// the end of the file is reported as truncation instead: both end the file with code 2.)
#[test]
fn huge_record_length_exits_2_without_reading_it() {
    let present = vec![0u8; 300_000];
    let cases: [(u32, &[u8]); 3] = [
        (0x7fff_ffff, &[0u8; 64]),
        (u32::MAX, &[0u8; 64]),
        (300_000, &present),
    ];
    for (caplen, data) in cases {
        let mut b = pcap(&good_frames());
        b.extend(pcap_record(1_793_610_010, data, caplen));
        let f = TempCapture::new(&format!("huge{caplen}.pcap"), &b);
        assert_failed_after_good_frames(&f.replay(), "huge record", "max_record_bytes");
    }
}

#[test]
fn bad_magic_exits_2_with_one_message() {
    let cases: [(&str, Vec<u8>); 4] = [
        ("text", b"this is not a capture file at all\n".repeat(4)),
        ("zeros", vec![0u8; 4096]),
        ("empty", Vec::new()),
        ("pcap-v3", {
            let mut h = pcap_header(LINKTYPE_ETHERNET);
            h[4] = 3;
            h
        }),
    ];
    for (name, bytes) in cases {
        let f = TempCapture::new(name, &bytes);
        let r = f.replay();
        assert_eq!(r.code, 2, "{name}: exit {} stderr {}", r.code, r.stderr);
        let lines: Vec<&str> = r.stderr.lines().filter(|l| !l.trim().is_empty()).collect();
        assert!(
            lines.iter().any(|l| l.contains(f.0.to_str().unwrap())),
            "{name}: the message names the file: {lines:?}"
        );
        assert_eq!(n(&r.stats()["stats"]["capture"]["frames"]), 0, "{name}");
    }
}

// --- pcapng -----------------------------------------------------------------------------------

#[test]
fn pcapng_blocks_with_bad_lengths_exit_2_after_the_good_ones() {
    let packet = ng_packet(
        0,
        1_793_610_010,
        &ethernet(&ipv4_tcp(true, 101, false, b"USER jdoe\r\n"), 0x0800),
    );
    let set_len = |block: &[u8], lead: Option<u32>, trail: Option<u32>| {
        let mut b = block.to_vec();
        if let Some(l) = lead {
            b[4..8].copy_from_slice(&l.to_le_bytes());
        }
        if let Some(t) = trail {
            let at = b.len() - 4;
            b[at..].copy_from_slice(&t.to_le_bytes());
        }
        b
    };
    let len = packet.len() as u32;
    let cases: [(&str, Vec<u8>); 6] = [
        ("shorter than a header", set_len(&packet, Some(8), None)),
        ("not a multiple of 4", set_len(&packet, Some(len + 2), None)),
        ("trailer disagrees", set_len(&packet, None, Some(len + 4))),
        (
            "past the end of file",
            set_len(&packet, Some(len + 64), None),
        ),
        ("huge", set_len(&packet, Some(0xffff_fff0), None)),
        ("cut short", packet[..packet.len() - 6].to_vec()),
    ];
    for (what, damaged) in cases {
        let mut b = pcapng_good();
        b.extend(damaged);
        let f = TempCapture::new(&what.replace(' ', "-"), &b);
        let r = f.replay();
        assert_eq!(r.code, 2, "{what}: exit {} stderr {}", r.code, r.stderr);
        assert_failed_after_good_frames(&r, what, f.0.to_str().unwrap());
    }
}

/// Interfaces of four link types in one section, and a packet naming an interface that
/// was never described: the three supported ones decode into one flow, the others are
/// counted, and the file is not an error.
#[test]
fn pcapng_mixed_link_types_decode_per_interface() {
    let mut b = ng_section();
    b.extend(ng_interface(LINKTYPE_ETHERNET as u16));
    b.extend(ng_interface(LINKTYPE_RAW as u16));
    b.extend(ng_interface(LINKTYPE_LINUX_SLL as u16));
    b.extend(ng_interface(LINKTYPE_USER0 as u16));
    let t = 1_793_610_000;
    b.extend(ng_packet(
        0,
        t,
        &ethernet(&ipv4_tcp(true, 100, true, b""), 0x0800),
    ));
    b.extend(ng_packet(1, t + 1, &ipv4_tcp(false, 500, true, b"")));
    b.extend(ng_packet(
        2,
        t + 2,
        &linux_sll(&ipv4_tcp(false, 501, false, b"220 ready\r\n")),
    ));
    b.extend(ng_packet(3, t + 3, &[0xde, 0xad, 0xbe, 0xef]));
    b.extend(ng_packet(9, t + 4, &ipv4_tcp(true, 101, false, b"")));
    let f = TempCapture::new("mixed.pcapng", &b);
    let r = f.replay();
    assert_eq!(r.code, 0, "stderr {}", r.stderr);
    let s = &r.stats()["stats"];
    assert_eq!(n(&s["capture"]["frames"]), 4, "{}", s["capture"]);
    assert_eq!(n(&s["capture"]["bad_interface"]), 1, "{}", s["capture"]);
    assert_eq!(n(&s["decoder"]["ipv4"]), 3, "{}", s["decoder"]);
    assert_eq!(
        n(&s["decoder"]["unsupported_linktype"]),
        1,
        "{}",
        s["decoder"]
    );
    let flows = r.of("flow");
    assert_eq!(flows.len(), 1, "one conversation across three link types");
    assert_eq!(flows[0]["app_proto"], "ftp", "{}", flows[0]);
    assert_eq!(n(&flows[0]["flow"]["pkts_toclient"]), 2);
}

// --- big frames -------------------------------------------------------------------------------

/// IPv4 at its largest (total length 65 535) and IPv6 with a 65 535-byte payload: frames of
/// 65 549 and 65 589 bytes, in classic pcap and pcapng. Their payload is counted whole and
/// the FTP command in front of it is parsed.
#[test]
fn frames_of_64_kib_and_more_decode() {
    let mut body = b"220 big banner follows\r\n".to_vec();
    body.resize(65_535 - 20 - 20, b'x');
    let v4 = ethernet(&ipv4_tcp(false, 501, false, &body), 0x0800);
    assert_eq!(v4.len(), 65_549);
    let mut v6_payload = b"STOR big.bin\r\n".to_vec();
    v6_payload.resize(65_535 - 20, b'y');
    let mut ip6 = Vec::new();
    PacketBuilder::ipv6([0xfd; 16], [0x20; 16], 64)
        .tcp(40_001, 21, 7, 64_000)
        .ack(1)
        .write(&mut ip6, &v6_payload)
        .unwrap();
    let v6 = ethernet(&ip6, 0x86dd);
    assert_eq!(v6.len(), 65_589);

    let classic = pcap(&[v4.clone(), v6.clone()]);
    let mut ng = ng_section();
    ng.extend(ng_interface(LINKTYPE_ETHERNET as u16));
    ng.extend(ng_packet(0, 1_793_610_000, &v4));
    ng.extend(ng_packet(0, 1_793_610_001, &v6));
    for (name, bytes) in [("big.pcap", classic), ("big.pcapng", ng)] {
        let f = TempCapture::new(name, &bytes);
        let r = f.replay();
        assert_eq!(r.code, 0, "{name}: stderr {}", r.stderr);
        let d = &r.stats()["stats"]["decoder"];
        assert_eq!(
            (n(&d["ipv4"]), n(&d["ipv6"]), n(&d["tcp"])),
            (1, 1, 1 + 1),
            "{d}"
        );
        assert_eq!(n(&d["truncated_payload"]), 0, "{d}");
        let flows = r.of("flow");
        assert_eq!(flows.len(), 2, "{name}");
        let payload: Vec<u64> = flows
            .iter()
            .map(|f| n(&f["xfer"]["payload_toserver"]) + n(&f["xfer"]["payload_toclient"]))
            .collect();
        assert!(payload.contains(&(65_535 - 40)), "{name}: {payload:?}");
        assert!(payload.contains(&(65_535 - 20)), "{name}: {payload:?}");
        let wire: u64 = flows
            .iter()
            .map(|f| n(&f["flow"]["bytes_toserver"]) + n(&f["flow"]["bytes_toclient"]))
            .sum();
        assert_eq!(wire, 65_549 + 65_589, "{name}");
    }
}

/// Malformed frames become `anomaly` records (DESIGN §7), at most 10 per packet-time second;
/// the rest are counted, and the next record says how many it stands for.
#[test]
fn malformed_frames_make_rate_limited_anomaly_records() {
    // A SYN whose TCP data offset says 3 words (less than the 5 of a bare header).
    let mut bad = ipv4_tcp(true, 100, true, b"");
    bad[20 + 12] = 0x30;
    let bad = ethernet(&bad, 0x0800);
    let mut file = pcap_header(LINKTYPE_ETHERNET);
    // 25 in one second, then one in the next.
    for _ in 0..25 {
        file.extend(pcap_record(1_793_610_000, &bad, bad.len() as u32));
    }
    file.extend(pcap_record(1_793_610_001, &bad, bad.len() as u32));
    let cap = TempCapture::new("anomalies.pcap", &file);
    let r = cap.replay();
    assert_eq!(r.code, 0, "{}", r.stderr);
    let anomalies = r.of("anomaly");
    assert_eq!(anomalies.len(), 11, "{anomalies:#?}");
    for a in &anomalies {
        assert_eq!(a["anomaly"]["type"], "decode");
        assert_eq!(a["anomaly"]["event"], "invalid_tcp");
        assert_eq!(a["anomaly"]["linktype"], LINKTYPE_ETHERNET);
        assert_eq!(a["anomaly"]["caplen"], bad.len());
    }
    // The first ten are frames 1..=10; the eleventh is frame 26 and stands for 15 more.
    let cnts: Vec<u64> = anomalies.iter().map(|a| n(&a["pcap_cnt"])).collect();
    assert_eq!(cnts, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 26]);
    assert!(
        anomalies[..10]
            .iter()
            .all(|a| a["anomaly"].get("suppressed").is_none())
    );
    assert_eq!(anomalies[10]["anomaly"]["suppressed"], 15);
    let dec = &r.stats()["stats"]["decoder"];
    assert_eq!(n(&dec["invalid_tcp"]), 26);
    assert_eq!(n(&dec["anomaly_suppressed"]), 15);
    assert_eq!(n(&r.stats()["stats"]["output"]["written"]["anomaly"]), 11);
}
