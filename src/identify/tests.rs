//! Classifier tests (label merge, FTPS upgrade, budget, SMB watcher) and property tests over
//! every probe. Vectors are hand-written from the RFCs, not copied from captures.

use super::*;
use proptest::prelude::*;

const TS: Direction = Direction::ToServer;
const TC: Direction = Direction::ToClient;

/// A ClientHello record with optional ALPN names (SNI omitted).
fn client_hello(alpn: &[&str]) -> Vec<u8> {
    let mut exts = Vec::new();
    if !alpn.is_empty() {
        let mut list = Vec::new();
        for p in alpn {
            list.push(p.len() as u8);
            list.extend_from_slice(p.as_bytes());
        }
        exts.extend_from_slice(&16u16.to_be_bytes());
        exts.extend_from_slice(&((list.len() + 2) as u16).to_be_bytes());
        exts.extend_from_slice(&(list.len() as u16).to_be_bytes());
        exts.extend(list);
    }
    let mut body = vec![3, 3];
    body.extend_from_slice(&[0x5a; 32]);
    body.push(0);
    body.extend_from_slice(&[0, 2, 0x13, 0x01, 1, 0]);
    body.extend_from_slice(&(exts.len() as u16).to_be_bytes());
    body.extend(exts);
    let mut rec = vec![0x16, 3, 1, 0, 0, 1, 0, 0, body.len() as u8];
    let hs_len = (body.len() + 4) as u16;
    rec[3..5].copy_from_slice(&hs_len.to_be_bytes());
    rec.extend(body);
    rec
}

/// A complete ServerHello record (TLS 1.2 shape, no extensions).
fn server_hello() -> Vec<u8> {
    let mut body = vec![3, 3];
    body.extend_from_slice(&[0x22; 32]);
    body.push(0);
    body.extend_from_slice(&[0xc0, 0x2f, 0]);
    let mut rec = vec![
        0x16,
        3,
        3,
        0,
        body.len() as u8 + 4,
        2,
        0,
        0,
        body.len() as u8,
    ];
    rec.extend(body);
    rec
}

fn smb2_message(command: u16, flags: u32, body: &[u8]) -> Vec<u8> {
    let mut h = b"\xfeSMB".to_vec();
    h.extend_from_slice(&64u16.to_le_bytes());
    h.extend_from_slice(&[0; 6]);
    h.extend_from_slice(&command.to_le_bytes());
    h.extend_from_slice(&[1, 0]);
    h.extend_from_slice(&flags.to_le_bytes());
    h.resize(64, 0);
    h.extend_from_slice(body);
    let len = (h.len() as u32).to_be_bytes();
    let mut m = vec![0, len[1], len[2], len[3]];
    m.extend(h);
    m
}

fn smb2_negotiate_response(dialect: u16) -> Vec<u8> {
    let mut body = vec![65, 0, 1, 0];
    body.extend_from_slice(&dialect.to_le_bytes());
    body.resize(65, 0);
    smb2_message(0, 1, &body)
}

/// Feeds (direction, bytes) pairs with pcap_cnt 1, 2, 3…
fn run(l4: L4, server_port: u16, steps: &[(Direction, &[u8])]) -> Classifier {
    let mut c = Classifier::new(l4, 50000, server_port);
    for (i, (d, bytes)) in steps.iter().enumerate() {
        c.feed(*d, bytes, i as u64 + 1, &Budget::default());
    }
    c
}

fn label(c: &Classifier) -> (AppProto, Option<AppProto>, Option<AppProto>, bool) {
    let l = c.labels();
    (l.app_proto, l.ts, l.tc, l.tentative)
}

#[test]
fn idle_classifier_is_small() {
    assert!(
        std::mem::size_of::<Classifier>() < 200,
        "{}",
        std::mem::size_of::<Classifier>()
    );
    let c = Classifier::new(L4::Tcp, 1, 2);
    assert!(c.wants_more());
    assert_eq!(c.evidence(TS).state, ProbeState::Idle);
    assert_eq!(c.labels().app_proto, AppProto::Unknown);
}

#[test]
fn ftp_banner_and_commands_agree() {
    let c = run(
        L4::Tcp,
        21,
        &[
            (TC, b"220 (vsFTPd 3.0.3)\r\n"),
            (TS, b"USER anonymous\r\n"),
            (TC, b"331 Please specify the password.\r\n"),
        ],
    );
    assert_eq!(label(&c), (AppProto::Ftp, None, None, false));
    let tc = c.evidence(TC);
    assert_eq!(tc.signature.map(|s| s.name), Some(ftp::SIG_BANNER));
    assert_eq!(tc.pcap_cnt, Some(1));
    assert_eq!(
        tc.head(),
        b"220 (vsFTPd 3.0.3)\r\n331 Please specify the password.\r\n"
    );
    let ts = c.evidence(TS);
    assert_eq!(
        (ts.signature.map(|s| s.role), ts.pcap_cnt),
        (Some(Role::Client), Some(2))
    );
    assert_eq!((ts.bytes_probed, ts.packets_probed), (16, 1));
    // FTP keeps the cheap FTPS watcher running.
    assert!(c.wants_more());
}

#[test]
fn same_bytes_same_label_on_any_port() {
    let flows: [&[(Direction, &[u8])]; 4] = [
        &[(TC, b"220 ProFTPD Server ready\r\n"), (TS, b"USER ftp\r\n")],
        &[
            (TS, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
            (TC, b"HTTP/1.1 200 OK\r\n"),
        ],
        &[
            (TS, b"SSH-2.0-OpenSSH_9.6\r\n"),
            (TC, b"SSH-2.0-OpenSSH_9.6\r\n"),
        ],
        &[
            (TS, &smb2_message(0, 0, &[36, 0, 2, 0])),
            (TC, &smb2_negotiate_response(0x0302)),
        ],
    ];
    for steps in flows {
        let want = label(&run(L4::Tcp, 50001, steps));
        assert_ne!(want.0, AppProto::Unknown);
        for port in [20, 21, 22, 25, 53, 69, 80, 139, 443, 445, 990, 8080] {
            assert_eq!(label(&run(L4::Tcp, port, steps)), want, "port {port}");
        }
    }
}

#[test]
fn tls_is_ftps_only_on_implicit_ports_or_with_alpn_ftp() {
    let hello = client_hello(&["http/1.1"]);
    assert_eq!(
        run(L4::Tcp, 443, &[(TS, &hello)]).labels().app_proto,
        AppProto::Tls
    );
    assert_eq!(
        run(L4::Tcp, 990, &[(TS, &hello)]).labels().app_proto,
        AppProto::Ftps
    );
    assert_eq!(
        run(L4::Tcp, 989, &[(TS, &hello)]).labels().app_proto,
        AppProto::Ftps
    );
    let ftp_alpn = client_hello(&["ftp"]);
    let l = run(L4::Tcp, 4433, &[(TS, &ftp_alpn), (TC, &server_hello())]).labels();
    assert_eq!((l.app_proto, l.orig), (AppProto::Ftps, None));
    // Plain HTTP on 990 is HTTP, never FTPS.
    let c = run(
        L4::Tcp,
        990,
        &[
            (TS, b"GET / HTTP/1.1\r\n\r\n"),
            (TC, b"HTTP/1.1 200 OK\r\n"),
        ],
    );
    assert_eq!(label(&c), (AppProto::Http, None, None, false));
}

#[test]
fn explicit_ftps_upgrade() {
    let hello = client_hello(&[]);
    let c = run(
        L4::Tcp,
        21,
        &[
            (TC, b"220 FTP server ready\r\n"),
            (TS, b"AUTH TLS\r\n"),
            (TC, b"234 Proceed with negotiation.\r\n"),
            (TS, &hello),
        ],
    );
    let l = c.labels();
    assert_eq!(
        (l.app_proto, l.orig, l.ts, l.tc),
        (AppProto::Ftps, Some(AppProto::Ftp), None, None)
    );
    assert_eq!(c.ftps_upgrade_pcap_cnt(), Some(4));
    assert!(!c.wants_more(), "upgrade seen, both sides decided");
}

#[test]
fn refused_auth_stays_ftp() {
    let c = run(
        L4::Tcp,
        21,
        &[
            (TC, b"220 FTP server ready\r\n"),
            (TS, b"AUTH TLS\r\n"),
            (TC, b"534 Policy requires no TLS.\r\n"),
            (TS, &client_hello(&[])),
        ],
    );
    assert_eq!(
        (c.labels().app_proto, c.labels().orig),
        (AppProto::Ftp, None)
    );
    // 234 without an AUTH first does not upgrade either.
    let c = run(
        L4::Tcp,
        21,
        &[
            (TC, b"220 FTP ready\r\n"),
            (TC, b"234 x\r\n"),
            (TS, &client_hello(&[])),
        ],
    );
    assert_eq!(c.labels().app_proto, AppProto::Ftp);
}

#[test]
fn ftp_watch_is_bounded() {
    let mut steps: Vec<(Direction, &[u8])> = vec![(TC, b"220 FTP ready\r\n"), (TS, b"USER a\r\n")];
    for _ in 0..FTPS_WATCH_PACKETS {
        steps.push((TS, b"NOOP\r\n"));
    }
    let c = run(L4::Tcp, 21, &steps);
    assert!(!c.wants_more());
}

#[test]
fn disagreement_names_client_side() {
    let c = run(
        L4::Tcp,
        80,
        &[
            (TS, b"GET / HTTP/1.1\r\n\r\n"),
            (TC, b"SSH-2.0-OpenSSH_8.9\r\n"),
        ],
    );
    assert_eq!(
        label(&c),
        (
            AppProto::Http,
            Some(AppProto::Http),
            Some(AppProto::Ssh),
            false
        )
    );
    assert!(c.labels().disagree());
    // With a file-transfer protocol on one side, that side is named.
    let c = run(
        L4::Tcp,
        80,
        &[
            (TS, b"GET / HTTP/1.0\r\n\r\n"),
            (TC, b"220 ProFTPD ready\r\n"),
        ],
    );
    assert_eq!(
        label(&c),
        (
            AppProto::Ftp,
            Some(AppProto::Http),
            Some(AppProto::Ftp),
            false
        )
    );
}

#[test]
fn unknown_side_is_not_disagreement() {
    // SMB request answered by bytes that are not SMB (the corpus' SMB-on-80 server).
    let mut neg = vec![0, 0, 0, 0x23];
    neg.extend_from_slice(b"\xffSMB\x72\x00\x00\x00\x00\x08\x01\x40");
    neg.resize(39, 0);
    let c = run(
        L4::Tcp,
        80,
        &[(TS, &neg), (TC, b"\xb3x\xfd*\xae-J\xee\x19Y\x89\x19o")],
    );
    assert_eq!(label(&c), (AppProto::Smb, None, None, false));
    assert_eq!(c.evidence(TC).state, ProbeState::Unknown);
}

#[test]
fn smtp_is_never_ftp() {
    let c = run(
        L4::Tcp,
        21,
        &[
            (TC, b"220 mail.example.com ESMTP Postfix\r\n"),
            (TS, b"EHLO a\r\n"),
        ],
    );
    assert_eq!(label(&c), (AppProto::Smtp, None, None, false));
    // A markerless 220 greeting is decided by the client's first verb.
    let c = run(
        L4::Tcp,
        25,
        &[
            (TC, b"220 host ready\r\n"),
            (TS, b"EHLO client.example\r\n"),
        ],
    );
    assert_eq!(label(&c), (AppProto::Smtp, None, None, false));
    let c = run(
        L4::Tcp,
        2121,
        &[(TC, b"220 host ready\r\n"), (TS, b"USER bob\r\n")],
    );
    assert_eq!(label(&c), (AppProto::Ftp, None, None, false));
    // Alone, it is tentative FTP.
    let c = run(L4::Tcp, 21, &[(TC, b"220 host ready\r\n")]);
    assert_eq!(label(&c), (AppProto::Ftp, None, None, true));
}

#[test]
fn pop3_with_ftp_like_verbs_is_unknown() {
    let c = run(
        L4::Tcp,
        110,
        &[(TC, b"+OK POP3 ready\r\n"), (TS, b"USER bob\r\n")],
    );
    assert_eq!(label(&c), (AppProto::Unknown, None, None, false));
}

#[test]
fn client_quit_alone_is_tentative_ftp() {
    let c = run(L4::Tcp, 21, &[(TS, b"QUIT\r\n")]);
    assert_eq!(c.evidence(TS).state, ProbeState::Probing);
    assert_eq!(label(&c), (AppProto::Ftp, None, None, true));
    let mut c = c;
    c.finish();
    assert_eq!(
        c.evidence(TS).signature.map(|s| s.name),
        Some(ftp::SIG_COMMAND_SHARED)
    );
    // QUIT answered by 221 is still only tentative (SMTP says the same).
    let c = run(L4::Tcp, 21, &[(TS, b"QUIT\r\n"), (TC, b"221 Goodbye.\r\n")]);
    assert_eq!(label(&c), (AppProto::Ftp, None, None, true));
    // A distinctive verb answered by a reply is confirmed, without a banner (midstream).
    let c = run(
        L4::Tcp,
        21,
        &[
            (TS, b"PASV\r\n"),
            (TC, b"227 Entering Passive Mode (1,2,3,4,5,6).\r\n"),
        ],
    );
    assert_eq!(label(&c), (AppProto::Ftp, None, None, false));
}

#[test]
fn budget_exhaustion_is_unknown_and_buffer_bounded() {
    let budget = Budget {
        max_bytes: 300,
        max_packets: 8,
    };
    let mut c = Classifier::new(L4::Tcp, 40000, 445);
    // An HTTP request line that never ends keeps the HTTP probe waiting.
    c.feed(TS, b"GET /", 1, &budget);
    for i in 0..20 {
        c.feed(TS, &[b'a'; 100], i + 2, &budget);
        let inner = c.inner.as_ref().unwrap();
        assert!(inner.ts.buf.len() <= budget.max_bytes);
        assert!(
            inner.ts.buf.capacity() <= budget.max_bytes,
            "{}",
            inner.ts.buf.capacity()
        );
    }
    let ev = c.evidence(TS);
    assert_eq!(ev.state, ProbeState::Unknown);
    assert_eq!(ev.bytes_probed, 300);
    assert_eq!(ev.packets_probed, 4);
    assert_eq!(c.labels().app_proto, AppProto::Unknown);
    assert!(
        c.inner.as_ref().unwrap().ts.buf.capacity() == 0,
        "buffer freed once decided"
    );
}

#[test]
fn packet_budget_ends_probing() {
    let budget = Budget {
        max_bytes: 4096,
        max_packets: 3,
    };
    let mut c = Classifier::new(L4::Udp, 40000, 69);
    for i in 0..5 {
        // TFTP DATA blocks alone are not TFTP.
        c.feed(TS, &[0, 3, 0, i as u8 + 1, b'x', b'y'], i, &budget);
    }
    assert_eq!(c.evidence(TS).state, ProbeState::Unknown);
    assert_eq!(c.evidence(TS).packets_probed, 3);
}

#[test]
fn binary_stream_is_unknown_at_once() {
    let c = run(
        L4::Tcp,
        445,
        &[(TS, &[0xde, 0xad, 0xbe, 0xef, 0x01, 0x02, 0x03, 0x04])],
    );
    assert_eq!(c.evidence(TS).state, ProbeState::Unknown);
    assert_eq!(c.labels().app_proto, AppProto::Unknown);
    assert!(c.wants_more(), "the server side has not spoken");
}

#[test]
fn smb_split_header_and_watcher() {
    let mut client = smb2_message(0, 0, &[36, 0, 2, 0, 1, 0, 0, 0]);
    client.extend(smb2_message(1, 0, &[25, 0]));
    let mut server = smb2_negotiate_response(0x0311);
    let mut enc = vec![0, 0, 0, 80];
    enc.extend_from_slice(b"\xfdSMB");
    enc.resize(84, 0x77);
    server.extend(&enc);
    let mut c = Classifier::new(L4::Tcp, 50000, 445);
    // The NBSS header and the SMB2 header arrive split over several segments.
    for (i, b) in client.chunks(5).enumerate() {
        c.feed(TS, b, i as u64, &Budget::default());
    }
    for (i, b) in server.chunks(3).enumerate() {
        c.feed(TC, b, 1000 + i as u64, &Budget::default());
    }
    assert_eq!(label(&c), (AppProto::Smb, None, None, false));
    let ts = c.evidence(TS);
    assert_eq!(
        ts.signature.map(|s| (s.name, s.offset)),
        Some((smb::SIG_SMB2, 4))
    );
    assert_eq!(
        ts.pcap_cnt,
        Some(4),
        "the 5th segment completes the header check"
    );
    let info = c.smb_info().unwrap();
    assert_eq!(
        info,
        SmbInfo {
            family: SmbFamily::Smb3,
            dialect: Some(0x0311),
            encrypted: true,
            compressed: false
        }
    );
}

#[test]
fn orientation_from_roles() {
    let c = run(
        L4::Tcp,
        21,
        &[(TC, b"220 FTP ready\r\n"), (TS, b"USER a\r\n")],
    );
    assert_eq!(c.sides_swapped(), Some(false));
    // Picked up midstream: the flow's "client" is the SMB server answering.
    let c = run(L4::Tcp, 49199, &[(TS, &smb2_negotiate_response(0x0210))]);
    assert_eq!(c.sides_swapped(), Some(true));
    let c = run(
        L4::Tcp,
        22,
        &[(TS, b"SSH-2.0-a\r\n"), (TC, b"SSH-2.0-b\r\n")],
    );
    assert_eq!(c.sides_swapped(), None);
}

#[test]
fn nbss_session_request_on_139() {
    let mut req = vec![0x81, 0, 0, 68];
    for _ in 0..2 {
        req.push(32);
        req.extend_from_slice(b"CACACACACACACACACACACACACACACAAA");
        req.push(0);
    }
    let mut smb1 = vec![0, 0, 0, 0x23];
    smb1.extend_from_slice(b"\xffSMB\x72\x00\x00\x00\x00\x18");
    smb1.resize(39, 0);
    let mut c = run(
        L4::Tcp,
        139,
        &[(TS, &req), (TC, &[0x82, 0, 0, 0]), (TS, &smb1)],
    );
    assert_eq!(label(&c), (AppProto::Smb, None, None, false));
    // The server side waits for the message after its positive response; at the end the
    // response stands on its own, backed by the client's SMB.
    assert_eq!(c.evidence(TC).state, ProbeState::Probing);
    c.finish();
    assert_eq!(
        c.evidence(TS).signature.map(|s| s.name),
        Some(smb::SIG_SMB1)
    );
    assert_eq!(
        c.evidence(TC).signature.map(|s| s.name),
        Some(smb::SIG_POSITIVE)
    );
    assert_eq!(c.smb_info().map(|i| i.family), Some(SmbFamily::Smb1));
    // The request alone still names SMB's session service.
    let c = run(L4::Tcp, 139, &[(TS, &req)]);
    assert_eq!(label(&c), (AppProto::Smb, None, None, false));
    // A bare positive response with a silent peer is only tentative.
    let c = run(L4::Tcp, 139, &[(TC, &[0x82, 0, 0, 0])]);
    assert_eq!(label(&c), (AppProto::Smb, None, None, true));
}

#[test]
fn tftp_request_and_oack() {
    let c = run(L4::Udp, 69, &[(TS, b"\x00\x01rfc1350.txt\x00octet\x00")]);
    assert_eq!(label(&c), (AppProto::Tftp, None, None, false));
    // OACK from a new transfer identifier starts a transfer flow.
    let c = run(
        L4::Udp,
        60027,
        &[
            (TS, b"\x00\x06blksize\x00256\x00"),
            (TC, b"\x00\x04\x00\x00"),
        ],
    );
    assert_eq!(label(&c), (AppProto::TftpData, None, None, false));
    // A server answering from port 69 with an OACK is the same request flow.
    let c = run(
        L4::Udp,
        69,
        &[
            (TS, b"\x00\x01f\x00octet\x00tsize\x000\x00"),
            (TC, b"\x00\x06tsize\x00512\x00"),
        ],
    );
    assert_eq!(label(&c), (AppProto::Tftp, None, None, false));
}

#[test]
fn udp_offsets_count_earlier_datagrams() {
    let mut q = vec![
        0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 3, b'w', b'w', b'w', 0,
    ];
    q.extend_from_slice(&[0, 1, 0, 1]);
    let c = run(L4::Udp, 8053, &[(TS, b"\x01\x02junk"), (TS, &q)]);
    let s = c.evidence(TS).signature.unwrap();
    assert_eq!((s.proto, s.offset), (AppProto::Dns, 6));
    assert_eq!(c.evidence(TS).pcap_cnt, Some(2));
}

#[test]
fn other_transport_payload_is_unknown() {
    let c = run(L4::Other, 0, &[(TS, b"GET / HTTP/1.1\r\n\r\n")]);
    assert_eq!(c.labels().app_proto, AppProto::Unknown);
}

#[test]
fn decided_flow_stops_wanting_bytes() {
    let c = run(
        L4::Tcp,
        443,
        &[(TS, &client_hello(&[])), (TC, &server_hello())],
    );
    assert_eq!(c.labels().app_proto, AppProto::Tls);
    assert!(!c.wants_more());
}

/// Text and binary fragments that probes care about, used as seeds for the property tests.
fn seeds() -> Vec<Vec<u8>> {
    let mut v: Vec<Vec<u8>> = [
        &b"220 (vsFTPd 3.0.3)\r\n"[..],
        b"220-Welcome\r\n220 ok\r\n",
        b"220 mx ESMTP\r\n",
        b"USER anonymous\r\n",
        b"QUIT\r\n",
        b"AUTH TLS\r\n",
        b"227 Entering Passive Mode\r\n",
        b"EHLO a.example\r\n",
        b"MAIL FROM:<a@b>\r\n",
        b"GET / HTTP/1.1\r\n",
        b"USER / HTTP/1.1\r\n",
        b"EHLO a HTTP/1.1\r\n",
        b"HTTP/1.1 200 OK\r\n",
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
        b"SSH-2.0-OpenSSH\r\n",
        b"\x00\x01f\x00octet\x00",
        b"\x00\x06blksize\x00512\x00",
        b"\x00\x00\x00\x20\xffSMB",
        b"\x82\x00\x00\x00",
        b"\x85\x00\x00\x00",
        b"\x00\x1d\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x03www\x00\x00\x01\x00\x01",
    ]
    .iter()
    .map(|s| s.to_vec())
    .collect();
    v.push(client_hello(&["ftp"]));
    v.push(smb2_message(0, 0, &[36, 0]));
    v.push(smb2_negotiate_response(0x0210));
    v
}

fn seeded_bytes() -> impl Strategy<Value = Vec<u8>> {
    let seeds = seeds();
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..600),
        (
            proptest::sample::select(seeds),
            proptest::collection::vec(any::<u8>(), 0..64),
            0usize..80
        )
            .prop_map(|(mut s, tail, cut)| {
                let keep = cut.min(s.len());
                s.truncate(if cut % 3 == 0 { s.len() } else { keep });
                s.extend(tail);
                s
            }),
    ]
}

proptest! {
    #[test]
    fn probes_never_panic_and_finish_decides(data in seeded_bytes()) {
        for p in &PROBES {
            let _ = (p.probe)(&data);
            prop_assert_ne!((p.finish)(&data), ProbeResult::NeedMore, "{:?}", p.id);
        }
    }

    /// At most one probe matches any input: the reason port order cannot change a label.
    #[test]
    fn probes_are_mutually_exclusive(data in seeded_bytes()) {
        for l4 in [L4::Tcp, L4::Udp] {
            for at_end in [false, true] {
                let matched: Vec<ProbeId> = PROBES
                    .iter()
                    .filter(|p| p.l4 == l4)
                    .filter(|p| {
                        let r = if at_end { (p.finish)(&data) } else { (p.probe)(&data) };
                        matches!(r, ProbeResult::Match(_))
                    })
                    .map(|p| p.id)
                    .collect();
                prop_assert!(matched.len() <= 1, "{:?} on {:?}", matched, data);
            }
        }
    }

    #[test]
    fn classifier_never_panics_and_stays_bounded(
        l4 in prop_oneof![Just(L4::Tcp), Just(L4::Udp), Just(L4::Other)],
        port in any::<u16>(),
        max_bytes in 0usize..2048,
        max_packets in 0u32..12,
        chunks in proptest::collection::vec((any::<bool>(), seeded_bytes()), 0..16),
    ) {
        let budget = Budget { max_bytes, max_packets };
        let mut c = Classifier::new(l4, 1234, port);
        // Labels and SMB details when the classifier first stopped wanting bytes: the engine
        // stops feeding a judged flow, which is only right if nothing changes after that.
        let mut settled = None;
        for (i, (to_server, bytes)) in chunks.iter().enumerate() {
            let dir = if *to_server { TS } else { TC };
            c.feed(dir, bytes, i as u64, &budget);
            if let Some(inner) = &c.inner {
                prop_assert!(inner.ts.buf.capacity() <= max_bytes.max(1));
                prop_assert!(inner.tc.buf.capacity() <= max_bytes.max(1));
            }
            // The cached answer is the computed one.
            prop_assert_eq!(c.wants_more(), c.inner.as_deref().is_none_or(inner_wants_more));
            let now = (c.labels(), c.smb_info(), c.ftps_upgrade_pcap_cnt());
            match settled {
                Some(before) => {
                    prop_assert!(!c.wants_more());
                    prop_assert_eq!(before, now);
                }
                None if !c.wants_more() => settled = Some(now),
                None => {}
            }
        }
        let mut swapped = c.clone();
        swapped.swap_sides();
        prop_assert_eq!(swapped.wants_more(), c.wants_more());
        for d in [TS, TC] {
            let ev = c.evidence(d);
            prop_assert!(ev.bytes_probed as usize <= max_bytes);
            prop_assert!(ev.packets_probed <= max_packets.max(1));
            prop_assert!(ev.head().len() <= HEAD_LEN);
        }
        c.finish();
        prop_assert_eq!(c.wants_more(), c.inner.as_deref().is_none_or(inner_wants_more));
        let l = c.labels();
        prop_assert_eq!(l.ts.is_some(), l.tc.is_some());
    }
}

/// The shortcut in `merge` gives what the full rules give, for every pair of outcomes built
/// from the protocols and a sample of signature names (FTP's special ones included), with and
/// without the FTPS upgrade.
#[test]
fn merge_shortcut_matches_the_full_rules() {
    let names = [
        ftp::SIG_BANNER,
        ftp::SIG_BANNER_GENERIC,
        ftp::SIG_COMMAND,
        ftp::SIG_COMMAND_SHARED,
        ftp::SIG_REPLY,
        tls::SIG_CLIENT_HELLO,
        smb::SIG_POSITIVE,
    ];
    let mut outcomes = vec![Outcome::Silent, Outcome::Unknown];
    for proto in AppProto::ALL {
        for name in names {
            for needs_peer in [false, true] {
                outcomes.push(Outcome::Sig(sig(proto, name, 0, Role::Client, needs_peer)));
            }
        }
    }
    for &ts in &outcomes {
        for &tc in &outcomes {
            for upgraded in [false, true] {
                assert_eq!(
                    merge(ts, tc, upgraded),
                    merge_rules(ts, tc, upgraded),
                    "{ts:?} / {tc:?} / upgraded {upgraded}"
                );
            }
        }
    }
}

#[test]
fn probe_rows_match_the_table() {
    for (i, p) in PROBES.iter().enumerate() {
        assert_eq!(p.id.row(), i, "{:?}", p.id);
    }
}

/// A TFTP request is answered from a new port, so its own flow has nothing more to wait
/// for: identification settles on the request alone (and the engine frees the probe state),
/// instead of holding it until the flow times out. A DNS query, answered on its own flow,
/// keeps waiting.
#[test]
fn a_tftp_request_settles_without_waiting_for_its_peer() {
    let budget = Budget {
        max_bytes: 4096,
        max_packets: 8,
    };
    let mut c = Classifier::new(L4::Udp, 40000, 69);
    c.feed(TS, b"\x00\x01pxelinux.0\x00octet\x00", 1, &budget);
    assert_eq!(c.evidence(TS).state, ProbeState::Matched);
    assert!(!c.wants_more());
    assert_eq!(c.labels().app_proto, AppProto::Tftp);

    let mut d = Classifier::new(L4::Udp, 40001, 53);
    let query =
        b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x07example\x03com\x00\x00\x01\x00\x01";
    d.feed(TS, query, 1, &budget);
    assert!(d.wants_more());
}
