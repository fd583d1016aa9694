//! One flow per mismatch case of DESIGN §4, an attempt that must get no verdict, and the
//! matching negatives (each protocol on its own port).

use std::io::Write;
use std::net::IpAddr;

use anyhow::Result;
use xferwatch::app_proto::AppProto;
use xferwatch::direction::Direction;

use crate::conv::Link;
use crate::ctx::{Ctx, EPOCH_US};
use crate::net::{Endpoint, v4};
use crate::payload::Payload;
use crate::proto::misc;
use crate::sessions::ftp::{Cmd, DataMode, FtpPlan, Transfer, ftp_session};
use crate::sessions::smb::{SmbOp, SmbPlan, smb_session};
use crate::sessions::tftp::{TftpPlan, tftp_session};
use crate::sessions::web::{self, At, Req};
use crate::truth::Verdict;

/// The cases, in the order the scenario writes them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Case {
    /// FTP control on 80: port-mismatch.
    FtpOn80,
    /// SMB2 on 443: port-mismatch.
    SmbOn443,
    /// TFTP RRQ to udp/53: port-mismatch on the request flow.
    TftpOn53,
    /// HTTP on 21: expected-protocol-absent.
    HttpOn21,
    /// TLS on 445: expected-protocol-absent.
    TlsOn445,
    /// Random bytes both ways on 445: expected-protocol-absent, `unknown`.
    RandomOn445,
    /// Client speaks HTTP, server answers with an SSH banner on 8080: direction-disagreement.
    HttpSshOn8080,
    /// SYN, SYN-ACK, RST on 445: an attempt, no verdict.
    Attempt445,
    /// FTP on 21 with a passive data channel: no verdict.
    FtpOn21,
    /// SMB on 445: no verdict.
    SmbOn445,
    /// HTTP on 80: no verdict.
    HttpOn80,
    /// TLS on 443: no verdict.
    TlsOn443,
}

/// Every case.
pub const ALL: [Case; 12] = [
    Case::FtpOn80,
    Case::SmbOn443,
    Case::TftpOn53,
    Case::HttpOn21,
    Case::TlsOn445,
    Case::RandomOn445,
    Case::HttpSshOn8080,
    Case::Attempt445,
    Case::FtpOn21,
    Case::SmbOn445,
    Case::HttpOn80,
    Case::TlsOn443,
];

/// Builds the whole scenario: each case from its own client to its own server, a few
/// seconds apart, so each flow is easy to find by address.
pub fn build<W: Write>(ctx: &mut Ctx<W>) -> Result<()> {
    for (i, case) in ALL.iter().enumerate() {
        let client = v4(10, 1, 2, 20 + i as u8);
        let server = match case {
            Case::FtpOn21 => v4(203, 0, 113, 50),
            Case::SmbOn445 => v4(10, 1, 5, 20),
            _ => v4(198, 51, 100, 80 + i as u8),
        };
        run(ctx, *case, client, server, EPOCH_US + i as u64 * 3_000_000)?;
    }
    Ok(())
}

/// Writes one case from `client` to `server` at `start`; returns its end time.
pub fn run<W: Write>(
    ctx: &mut Ctx<W>,
    case: Case,
    client: IpAddr,
    server: IpAddr,
    start: u64,
) -> Result<u64> {
    let wan = Link::WAN;
    let at = |port: u16| At::new(client, Endpoint::new(server, port), start, wan);
    let conv = match case {
        Case::FtpOn80 | Case::FtpOn21 => {
            let list = Transfer::new(DataMode::Pasv, Cmd::List, "", 0);
            let get = Transfer::new(DataMode::Pasv, Cmd::Retr, "notes.txt", 2_214);
            let mut plan = FtpPlan::new(client, server, "anonymous", vec![list, get]);
            plan.chatty = false;
            if case == Case::FtpOn80 {
                plan.port = 80;
                plan.verdict = Some(Verdict::PortMismatch);
            }
            return ftp_session(ctx, &plan, start);
        }
        Case::SmbOn443 | Case::SmbOn445 => {
            let ops = vec![SmbOp::Write {
                name: "out\\batch-0042.bin".into(),
                size: 12_000,
            }];
            let mut plan = SmbPlan::new(client, server, "srv", "share", ops);
            if case == Case::SmbOn443 {
                plan.port = 443;
                plan.link = wan;
                plan.verdict = Some(Verdict::PortMismatch);
            }
            return smb_session(ctx, &plan, start);
        }
        Case::TftpOn53 => {
            let mut plan = TftpPlan::read(client, server, "payload.bin", 3_000);
            plan.port = 53;
            plan.link = wan;
            plan.verdict = Some(Verdict::PortMismatch);
            return tftp_session(ctx, &plan, start);
        }
        Case::HttpOn21 | Case::HttpOn80 => {
            let port = if case == Case::HttpOn21 { 21 } else { 80 };
            let mut c = web::http(ctx, at(port), "files.example.net", &[Req::Get(4_000)], 0);
            if port == 21 {
                c.meta.verdict = Some(Verdict::ExpectedProtocolAbsent);
                c.meta.note = "HTTP on the FTP port".into();
            }
            c
        }
        Case::TlsOn445 | Case::TlsOn443 => {
            let port = if case == Case::TlsOn445 { 445 } else { 443 };
            let mut c = web::tls(
                ctx,
                at(port),
                "cdn.example.com",
                &["h2", "http/1.1"],
                &[(600, 9_000)],
                0,
            );
            if port == 445 {
                c.meta.verdict = Some(Verdict::ExpectedProtocolAbsent);
                c.meta.note = "TLS on the SMB port".into();
            }
            c
        }
        Case::RandomOn445 => {
            let port = ctx.rng.ephemeral_port();
            let mut c = ctx.tcp(
                Endpoint::new(client, port),
                Endpoint::new(server, 445),
                start,
                wan,
            );
            c.handshake();
            for _ in 0..8 {
                for dir in [Direction::ToServer, Direction::ToClient] {
                    let len = ctx.rng.range(600, 1_200) as usize;
                    let mut bytes = ctx.rng.bytes(len);
                    // A first byte outside every NBSS type (0x00, 0x81–0x85) and every other
                    // protocol's opening byte, so no probe can match by luck.
                    if let Some(b) = bytes.first_mut() {
                        *b = 0xA0 | (*b & 0x1F);
                    }
                    c.send(dir, Payload::bytes(bytes));
                }
            }
            // The server gives up on the garbage the way SMB servers do: with a reset.
            c.reset(Direction::ToClient);
            c.meta.app_proto = Some(AppProto::Unknown);
            c.meta.verdict = Some(Verdict::ExpectedProtocolAbsent);
            c.meta.note = "random bytes both ways on the SMB port".into();
            c
        }
        Case::HttpSshOn8080 => {
            let port = ctx.rng.ephemeral_port();
            let mut c = ctx.tcp(
                Endpoint::new(client, port),
                Endpoint::new(server, 8080),
                start,
                wan,
            );
            c.handshake();
            c.send(
                Direction::ToServer,
                Payload::bytes(misc::http_get("proxy.example.net", "/")),
            );
            c.send(
                Direction::ToClient,
                Payload::bytes(misc::ssh_banner("OpenSSH_8.2p1")),
            );
            let kex = misc::ssh_kexinit(&mut ctx.rng);
            c.send(Direction::ToClient, Payload::bytes(kex));
            c.close(Direction::ToClient);
            // The to-server side is identified first, so it names the flow.
            c.meta.app_proto = Some(AppProto::Http);
            c.meta.app_proto_ts = Some(AppProto::Http);
            c.meta.app_proto_tc = Some(AppProto::Ssh);
            c.meta.verdict = Some(Verdict::DirectionDisagreement);
            c.meta.note = "client speaks HTTP, server answers with an SSH banner".into();
            c
        }
        Case::Attempt445 => {
            let port = ctx.rng.ephemeral_port();
            let mut c = ctx.tcp(
                Endpoint::new(client, port),
                Endpoint::new(server, 445),
                start,
                wan,
            );
            c.handshake_then_reset();
            c.meta.note = "SYN, SYN-ACK, RST: an attempt without payload".into();
            c
        }
    };
    let end = conv.now();
    ctx.commit(conv);
    Ok(end)
}
