//! A TFTP transfer: the request to the server's well-known port, then the transfer between
//! the server's new port (its TID) and the client's port, in lock-step or in windows.
//!
//! RFC 1350: a read is answered by DATA 1, a write by ACK 0, each from the new TID. With
//! RFC 2347 options the server answers OACK instead, and the client sends ACK 0 (read) or
//! DATA 1 (write). With RFC 7440 windowsize W the sender sends W blocks, the receiver ACKs
//! the last. The transfer ends with a block shorter than blksize, empty when the size is a
//! multiple of it.

use std::io::Write;
use std::net::IpAddr;

use anyhow::Result;
use xferwatch::app_proto::AppProto;
use xferwatch::direction::Direction;

use crate::conv::Link;
use crate::ctx::Ctx;
use crate::net::Endpoint;
use crate::payload::{Fill, Payload};
use crate::proto::tftp;
use crate::truth::{FileDir, FileTruth, LinkTruth, SessionKind, Verdict};

/// Everything that varies between TFTP transfers.
#[derive(Debug, Clone)]
pub struct TftpPlan {
    /// Client.
    pub client: IpAddr,
    /// Server.
    pub server: IpAddr,
    /// Request port (69, or something unusual for a mismatch).
    pub port: u16,
    /// True for WRQ (upload), false for RRQ.
    pub write: bool,
    /// File name.
    pub file: String,
    /// `octet` or `netascii`.
    pub mode: &'static str,
    /// File size.
    pub size: u64,
    /// Request (and get) this block size.
    pub blksize: Option<u64>,
    /// Send tsize (0 in a RRQ, the size in a WRQ); the OACK carries the real size.
    pub tsize: bool,
    /// Request (and get) this window size.
    pub windowsize: Option<u64>,
    /// Answer the request with this ERROR instead of a transfer.
    pub error: Option<(u16, &'static str)>,
    /// Path characteristics.
    pub link: Link,
    /// 802.1Q tag.
    pub vlan: Option<u16>,
    /// Expected verdict on the request flow.
    pub verdict: Option<Verdict>,
}

impl TftpPlan {
    /// A plain octet-mode read of `size` bytes from port 69.
    pub fn read(client: IpAddr, server: IpAddr, file: &str, size: u64) -> TftpPlan {
        TftpPlan {
            client,
            server,
            port: 69,
            write: false,
            file: file.to_owned(),
            mode: "octet",
            size,
            blksize: None,
            tsize: false,
            windowsize: None,
            error: None,
            link: Link::LAN,
            vlan: None,
            verdict: None,
        }
    }
}

/// Builds and commits one TFTP transfer starting at `start`; returns its end time.
pub fn tftp_session<W: Write>(ctx: &mut Ctx<W>, plan: &TftpPlan, start: u64) -> Result<u64> {
    let cport = ctx.rng.ephemeral_port();
    let tid = ctx.rng.range(49_152, 65_535) as u16;
    let client = Endpoint::new(plan.client, cport);
    let mut req = ctx
        .udp(
            client,
            Endpoint::new(plan.server, plan.port),
            start,
            plan.link,
        )
        .with_vlan(plan.vlan);

    let mut opts: Vec<(String, String)> = Vec::new();
    if let Some(b) = plan.blksize {
        opts.push(("blksize".into(), b.to_string()));
    }
    if plan.tsize {
        opts.push((
            "tsize".into(),
            if plan.write {
                plan.size.to_string()
            } else {
                "0".into()
            },
        ));
    }
    if let Some(w) = plan.windowsize {
        opts.push(("windowsize".into(), w.to_string()));
    }
    let (opcode, verb) = if plan.write {
        (tftp::WRQ, "WRQ")
    } else {
        (tftp::RRQ, "RRQ")
    };
    req.send(
        Direction::ToServer,
        Payload::bytes(tftp::request(opcode, &plan.file, plan.mode, &opts)),
    );

    // The transfer flow's first packet comes from the server's new TID, so the server is
    // this flow's "client" as the sensor sees it.
    let mut xfer = ctx
        .udp(
            Endpoint::new(plan.server, tid),
            client,
            req.now() + plan.link.rtt_us / 2 + 300,
            plan.link,
        )
        .with_vlan(plan.vlan);
    let (srv, cli) = (Direction::ToServer, Direction::ToClient);

    let blksize = plan.blksize.unwrap_or(tftp::DEFAULT_BLKSIZE);
    let window = plan.windowsize.unwrap_or(1).max(1);
    let mut blocks = 0;
    let mut bytes = 0;
    let outcome;
    // The server accepts every option; in a RRQ's tsize it fills in the real size.
    let mut acked: Vec<(String, String)> = opts
        .iter()
        .map(|(k, v)| {
            if k == "tsize" {
                (k.clone(), plan.size.to_string())
            } else {
                (k.clone(), v.clone())
            }
        })
        .collect();
    if let Some((code, msg)) = plan.error {
        xfer.send(srv, Payload::bytes(tftp::error(code, msg)));
        outcome = format!("error {code}");
        acked.clear();
    } else {
        let (sender, receiver) = if plan.write { (cli, srv) } else { (srv, cli) };
        if !acked.is_empty() {
            xfer.send(srv, Payload::bytes(tftp::oack(&acked)));
            if !plan.write {
                xfer.send(cli, Payload::bytes(tftp::ack(0)));
            }
        } else if plan.write {
            xfer.send(srv, Payload::bytes(tftp::ack(0)));
        }
        let fill = if plan.mode == "netascii" {
            Fill::Netascii
        } else {
            Fill::Random
        };
        let seed = ctx.rng.next_u64();
        let total = tftp::block_count(plan.size, blksize);
        for n in 1..=total {
            let off = (n - 1) * blksize;
            let len = plan.size.saturating_sub(off).min(blksize);
            let head = tftp::data_head(tftp::wire_block(n));
            xfer.send(sender, Payload::with_body(head, fill, seed ^ n, len));
            if n % window == 0 || n == total {
                xfer.send(receiver, Payload::bytes(tftp::ack(tftp::wire_block(n))));
            }
        }
        blocks = total;
        bytes = plan.size;
        outcome = "complete".to_owned();
    }

    let request = format!("{verb} {}", plan.file);
    req.meta.app_proto = Some(AppProto::Tftp);
    req.meta.verdict = plan.verdict;
    req.meta.note = format!("TFTP {request} ({}) to port {}", plan.mode, plan.port);
    xfer.meta.app_proto = Some(AppProto::TftpData);
    xfer.meta.linked = Some(LinkTruth {
        control_flow: req.id(),
        request: request.clone(),
        opened_by: "tftp-server",
    });
    let mut files = Vec::new();
    if plan.error.is_none() {
        let dir = if plan.write {
            FileDir::Upload
        } else {
            FileDir::Download
        };
        let mut f = FileTruth::new(&plan.file, plan.size, dir, verb);
        f.flow = Some(xfer.id());
        xfer.meta.files.push(f.clone());
        files.push(f);
    }
    xfer.meta.note = format!(
        "TFTP transfer for {request}: {blocks} block(s) of {blksize}, window {window}, {outcome}"
    );
    let end = xfer.now();
    let r = ctx.commit(req);
    let x = ctx.commit(xfer);
    ctx.session(
        SessionKind::Tftp {
            op: if plan.write { "write" } else { "read" },
            file: plan.file.clone(),
            mode: plan.mode,
            options: acked,
            blocks,
            bytes,
            outcome,
        },
        &[&r, &x],
        files,
    );
    Ok(end)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mux::Mux;
    use crate::net::v4;

    fn run(plan: &TftpPlan) -> crate::ctx::Collected<Vec<u8>> {
        let mut ctx: Ctx<Vec<u8>> = Ctx::new(1, Mux::new(None), true, true);
        tftp_session(&mut ctx, plan, crate::ctx::EPOCH_US).unwrap();
        ctx.finish().unwrap()
    }

    #[test]
    fn windowed_read_block_and_ack_counts() {
        let mut plan = TftpPlan::read(v4(10, 0, 0, 2), v4(10, 0, 0, 3), "boot.img", 10_000);
        plan.blksize = Some(1428);
        plan.tsize = true;
        plan.windowsize = Some(4);
        let c = run(&plan);
        let x = &c.flows[1];
        // 10000 / 1428 = 7 full blocks (9996 bytes), then a 4-byte block: 8 DATA.
        // Server sends OACK + 8 DATA; client sends ACK 0 + ACKs after blocks 4 and 8.
        assert_eq!(x.toserver.pkts, 9);
        assert_eq!(x.toclient.pkts, 3);
        assert_eq!(
            x.toserver.payload_bytes,
            10_000
                + 8 * 4
                + tftp::oack(&[
                    ("blksize".into(), "1428".into()),
                    ("tsize".into(), "10000".into()),
                    ("windowsize".into(), "4".into()),
                ])
                .len() as u64
        );
        assert_eq!(x.linked.as_ref().unwrap().control_flow, c.flows[0].id);
        let crate::truth::SessionKind::Tftp { blocks, .. } = &c.sessions[0].kind else {
            panic!()
        };
        assert_eq!(*blocks, 8);
    }

    #[test]
    fn exact_multiple_ends_with_empty_block() {
        let mut plan = TftpPlan::read(v4(10, 0, 0, 2), v4(10, 0, 0, 3), "f", 1024);
        plan.write = true;
        let c = run(&plan);
        let x = &c.flows[1];
        // WRQ without options: server ACK 0, then DATA 1, 2 and an empty 3, each ACKed.
        assert_eq!(x.toclient.pkts, 3);
        assert_eq!(x.toserver.pkts, 4);
        assert_eq!(x.toclient.payload_bytes, 1024 + 3 * 4);
    }
}
