//! The benchmark capture: a large, mostly-web mix with a minority of file-transfer sessions
//! and a few mismatches, streamed to disk as it is generated.
//!
//! Conversations arrive as a Poisson process; each is planned in full when it arrives
//! (~40 bytes per packet), and the mux writes packets in time order and drops each flow once
//! its last packet is out. Think times of several seconds between requests on keep-alive
//! connections are what keep a few thousand flows open at once.

use std::io::Write;
use std::net::IpAddr;

use anyhow::Result;

use super::mismatch::{self, Case};
use crate::conv::Link;
use crate::ctx::{Ctx, EPOCH_US};
use crate::net::{Endpoint, v4, v6};
use crate::payload::Fill;
use crate::rng::Rng;
use crate::sessions::ftp::{Cmd, DataMode, FtpPlan, Tls, Transfer, ftp_session};
use crate::sessions::smb::{SmbOp, SmbPlan, smb_session};
use crate::sessions::tftp::{TftpPlan, tftp_session};
use crate::sessions::web::{self, At, Req};

/// Conversations (sessions count once) starting per second of capture time.
const ARRIVALS_PER_SEC: f64 = 150.0;
/// Mean think time between requests on a keep-alive connection, µs.
const THINK_MEAN_US: f64 = 24_000_000.0;

/// The mismatch cases mixed in (each also written once at the start, so that even a
/// small capture has one of each).
const MISMATCH_CASES: [Case; 8] = [
    Case::FtpOn80,
    Case::SmbOn443,
    Case::TftpOn53,
    Case::HttpOn21,
    Case::TlsOn445,
    Case::RandomOn445,
    Case::HttpSshOn8080,
    Case::Attempt445,
];

/// The hosts conversations are drawn from.
struct Pools {
    clients: Vec<IpAddr>,
    clients6: Vec<IpAddr>,
    web: Vec<IpAddr>,
    web6: Vec<IpAddr>,
    ftp: Vec<IpAddr>,
    smb: Vec<IpAddr>,
    tftp: Vec<IpAddr>,
    resolver: IpAddr,
}

impl Pools {
    fn new() -> Pools {
        let clients = (0..2_000u32)
            .map(|i| {
                if i % 10 == 9 {
                    v4(192, 168, (i / 200) as u8, (i % 200) as u8 + 20)
                } else {
                    v4(10, 20 + (i / 250) as u8, (i % 250) as u8 + 2, 10)
                }
            })
            .collect();
        let clients6 = (0..200u16)
            .map(|i| v6([0xfd00, 0x20, 0, i, 0, 0, 0, 0x10]))
            .collect();
        let web = (1..=254u8)
            .flat_map(|d| [v4(198, 51, 100, d), v4(203, 0, 113, d)])
            .collect();
        let web6 = (1..=64u16)
            .map(|i| v6([0x2001, 0xdb8, 0x80, i, 0, 0, 0, 0x443]))
            .collect();
        let mut ftp: Vec<IpAddr> = (100..=119u8).map(|d| v4(203, 0, 113, d)).collect();
        ftp.extend((21..=25u8).map(|d| v4(10, 1, 5, d)));
        let mut smb: Vec<IpAddr> = (40..=47u8).map(|d| v4(10, 1, 5, d)).collect();
        smb.extend((45..=47u8).map(|d| v4(198, 51, 100, d)));
        let tftp = vec![v4(10, 1, 5, 30), v4(192, 168, 10, 1), v4(203, 0, 113, 69)];
        Pools {
            clients,
            clients6,
            web,
            web6,
            ftp,
            smb,
            tftp,
            resolver: v4(10, 1, 5, 53),
        }
    }
}

/// Picks from a non-empty pool (falls back to the resolver address, never reached).
fn pick(rng: &mut Rng, pool: &[IpAddr], fallback: IpAddr) -> IpAddr {
    rng.pick(pool).copied().unwrap_or(fallback)
}

/// Builds conversations until the capture reaches about `target_bytes`.
pub fn build<W: Write>(ctx: &mut Ctx<W>, target_bytes: u64) -> Result<()> {
    let pools = Pools::new();
    let mut t = EPOCH_US;
    for case in MISMATCH_CASES {
        let client = pick(&mut ctx.rng, &pools.clients, pools.resolver);
        let server = pick(&mut ctx.rng, &pools.web, pools.resolver);
        t += 50_000;
        mismatch::run(ctx, case, client, server, t)?;
    }
    while ctx.planned_pcap_bytes() < target_bytes {
        t += ctx.rng.exp(1e6 / ARRIVALS_PER_SEC) as u64 + 1;
        ctx.run_until(t)?;
        spawn(ctx, &pools, t)?;
    }
    Ok(())
}

/// Starts one conversation (or one session's worth of flows) at `t`.
fn spawn<W: Write>(ctx: &mut Ctx<W>, p: &Pools, t: u64) -> Result<()> {
    let fallback = p.resolver;
    let roll = ctx.rng.unit();
    let client = pick(&mut ctx.rng, &p.clients, fallback);
    let think = ctx.rng.exp(THINK_MEAN_US) as u64;
    if roll < 0.40 {
        let v6 = ctx.rng.chance(0.08);
        let (client, server) = if v6 {
            (
                pick(&mut ctx.rng, &p.clients6, fallback),
                pick(&mut ctx.rng, &p.web6, fallback),
            )
        } else {
            (client, pick(&mut ctx.rng, &p.web, fallback))
        };
        let n = 1 + ctx.rng.below(5) as usize;
        let exchanges: Vec<(u64, u64)> = (0..n)
            .map(|_| (ctx.rng.range(150, 1_500), ctx.rng.log_uniform(200, 40_000)))
            .collect();
        let at = At::new(client, Endpoint::new(server, 443), t, Link::WAN);
        let conv = web::tls(
            ctx,
            at,
            "www.example.com",
            &["h2", "http/1.1"],
            &exchanges,
            think,
        );
        ctx.commit(conv);
    } else if roll < 0.65 {
        let server = pick(&mut ctx.rng, &p.web, fallback);
        let name = format!("h{}.example.com", ctx.rng.below(5_000));
        let conv = web::dns(ctx, client, p.resolver, &name, server, t);
        ctx.commit(conv);
    } else if roll < 0.84 {
        let server = pick(&mut ctx.rng, &p.web, fallback);
        let n = 1 + ctx.rng.below(5) as usize;
        let reqs: Vec<Req> = (0..n)
            .map(|_| {
                if ctx.rng.chance(0.05) {
                    Req::Post(ctx.rng.log_uniform(500, 50_000))
                } else {
                    Req::Get(ctx.rng.log_uniform(200, 40_000))
                }
            })
            .collect();
        let at = At::new(client, Endpoint::new(server, 80), t, Link::WAN);
        let conv = web::http(ctx, at, "news.example.org", &reqs, think);
        ctx.commit(conv);
    } else if roll < 0.86 {
        let server = pick(&mut ctx.rng, &p.web, fallback);
        let rounds = ctx.rng.range(5, 40) as u32;
        let conv = web::ssh(
            ctx,
            At::new(client, Endpoint::new(server, 22), t, Link::WAN),
            rounds,
        );
        ctx.commit(conv);
    } else if roll < 0.875 {
        let server = pick(&mut ctx.rng, &p.web, fallback);
        let body = ctx.rng.log_uniform(500, 60_000);
        let conv = web::smtp(
            ctx,
            At::new(client, Endpoint::new(server, 25), t, Link::WAN),
            body,
        );
        ctx.commit(conv);
    } else if roll < 0.884 {
        ftp(ctx, p, client, t)?;
    } else if roll < 0.894 {
        smb(ctx, p, client, t)?;
    } else if roll < 0.902 {
        tftp(ctx, p, client, t)?;
    } else if roll < 0.904 {
        let case = ctx
            .rng
            .pick(&MISMATCH_CASES)
            .copied()
            .unwrap_or(Case::Attempt445);
        let server = pick(&mut ctx.rng, &p.web, fallback);
        mismatch::run(ctx, case, client, server, t)?;
    } else {
        // Intranet: internal web and TLS services on a LAN path.
        let server = v4(10, 1, 6, ctx.rng.range(10, 40) as u8);
        if ctx.rng.chance(0.5) {
            let n = 1 + ctx.rng.below(4) as usize;
            let reqs: Vec<Req> = (0..n)
                .map(|_| Req::Get(ctx.rng.log_uniform(200, 40_000)))
                .collect();
            let at = At::new(client, Endpoint::new(server, 80), t, Link::LAN);
            let conv = web::http(ctx, at, "intranet.corp.example", &reqs, think);
            ctx.commit(conv);
        } else {
            let n = 1 + ctx.rng.below(6) as usize;
            let exchanges: Vec<(u64, u64)> = (0..n)
                .map(|_| (ctx.rng.range(150, 1_500), ctx.rng.log_uniform(300, 60_000)))
                .collect();
            let at = At::new(client, Endpoint::new(server, 443), t, Link::LAN);
            let conv = web::tls(
                ctx,
                at,
                "wiki.corp.example",
                &["http/1.1"],
                &exchanges,
                think,
            );
            ctx.commit(conv);
        }
    }
    Ok(())
}

/// An FTP session of one to three transfers; now and then a large upload.
fn ftp<W: Write>(ctx: &mut Ctx<W>, p: &Pools, client: IpAddr, t: u64) -> Result<()> {
    let rng = &mut ctx.rng;
    let server = pick(rng, &p.ftp, p.resolver);
    let n = 1 + rng.below(3);
    let mut transfers = Vec::new();
    for i in 0..n {
        let mode = match rng.below(20) {
            0..=9 => DataMode::Pasv,
            10..=14 => DataMode::Epsv,
            15..=17 => DataMode::Port,
            _ => DataMode::Eprt,
        };
        let (cmd, name) = match rng.below(20) {
            0..=8 => (Cmd::Stor, format!("export-{:06x}.zip", rng.below(1 << 24))),
            9..=15 => (Cmd::Retr, format!("pkg/update-{}.bin", rng.below(500))),
            _ => (Cmd::List, String::new()),
        };
        let size = if i == 0 && cmd == Cmd::Stor && rng.chance(0.04) {
            rng.range(2 << 20, 12 << 20)
        } else {
            rng.log_uniform(2_000, 800_000)
        };
        let mut tr = Transfer::new(mode, cmd, &name, size);
        tr.retransmit = rng.chance(0.05);
        tr.fill = if rng.chance(0.3) {
            Fill::Text
        } else {
            Fill::Random
        };
        transfers.push(tr);
    }
    let mut plan = FtpPlan::new(client, server, "svc-export", transfers);
    plan.tls = match rng.below(25) {
        0 | 1 => Tls::Explicit,
        2 => Tls::Implicit,
        _ => Tls::None,
    };
    if plan.tls == Tls::Implicit {
        plan.port = 990;
    }
    plan.chatty = rng.chance(0.3);
    plan.think_us = rng.range(20_000, 2_000_000);
    if crate::net::zone(server) == crate::net::Zone::Internal {
        plan.link = Link::LAN;
    }
    ftp_session(ctx, &plan, t)?;
    Ok(())
}

/// An SMB connection with one to four file operations.
fn smb<W: Write>(ctx: &mut Ctx<W>, p: &Pools, client: IpAddr, t: u64) -> Result<()> {
    let rng = &mut ctx.rng;
    let server = pick(rng, &p.smb, p.resolver);
    let n = 1 + rng.below(4);
    let ops = (0..n)
        .map(|_| {
            let size = rng.log_uniform(4_000, 600_000);
            if rng.chance(0.4) {
                SmbOp::Write {
                    name: format!("scans\\doc-{:05}.pdf", rng.below(100_000)),
                    size,
                }
            } else {
                SmbOp::Read {
                    name: format!("projects\\plan-{:04}.xlsx", rng.below(10_000)),
                    size,
                }
            }
        })
        .collect();
    let mut plan = SmbPlan::new(client, server, "fs02", "projects", ops);
    plan.ipc = rng.chance(0.5);
    if rng.chance(0.25) {
        plan.dialect = 0x0311;
        plan.encrypt = true;
    }
    if crate::net::zone(server) != crate::net::Zone::Internal {
        plan.link = Link::WAN;
    }
    smb_session(ctx, &plan, t)?;
    Ok(())
}

/// A TFTP read or write, sometimes with options, rarely refused.
fn tftp<W: Write>(ctx: &mut Ctx<W>, p: &Pools, client: IpAddr, t: u64) -> Result<()> {
    let rng = &mut ctx.rng;
    let server = pick(rng, &p.tftp, p.resolver);
    let size = rng.log_uniform(2_000, 400_000);
    let mut plan = TftpPlan::read(
        client,
        server,
        &format!("boot/img-{}.bin", rng.below(64)),
        size,
    );
    plan.write = rng.chance(0.3);
    if rng.chance(0.4) {
        plan.blksize = Some(1_428);
        plan.tsize = true;
        plan.windowsize = rng.chance(0.5).then_some(8);
    }
    if rng.chance(0.05) {
        plan.error = Some((1, "File not found"));
    }
    if crate::net::zone(server) != crate::net::Zone::Internal {
        plan.link = Link::WAN;
    }
    tftp_session(ctx, &plan, t)?;
    Ok(())
}
