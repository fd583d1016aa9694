//! Flood scenarios (issue 7): one kind of junk in bulk, with a real FTP upload to an
//! external server in the middle of it that must still raise its alert.
//!
//! `--count` sets the flood's size (SYNs, fragments, PASV replies or TFTP requests). The
//! flood is spread evenly from the capture's start to half a second after the upload ends,
//! so the upload's control and data flows live through all of it. Flood flows are not
//! listed in the truth file (a million of them would not help anyone); the summary counts
//! them and the upload's session is listed as usual.

use std::io::Write;
use std::net::IpAddr;

use anyhow::{Result, bail, ensure};
use xferwatch::app_proto::AppProto;
use xferwatch::direction::Direction;

use super::Options;
use super::hosts::*;
use crate::conv::Link;
use crate::ctx::{Ctx, EPOCH_US};
use crate::net::{Endpoint, v4};
use crate::payload::{Fill, Payload};
use crate::proto::{ftp, tftp};
use crate::sessions::ftp::{Cmd, DataMode, FtpPlan, Transfer, ftp_session};

/// The flood scenarios with their default `--count`.
pub const FLOODS: [(&str, u32); 4] = [
    ("flood-syn", 1_000_000),
    ("flood-fragments", 100_000),
    ("flood-pasv", 100_000),
    ("flood-tftp", 100_000),
];

/// Size of the upload mixed into every flood: above the outbound-ratio rule's 1 MiB.
pub const UPLOAD_BYTES: u64 = 2_000_000;

/// File name of the upload mixed into every flood.
pub const UPLOAD_NAME: &str = "quarterly-export.dat";

/// The upload starts this long after the flood.
const UPLOAD_DELAY_US: u64 = 50_000;

/// The flood goes on this long after the upload ends.
const TAIL_US: u64 = 500_000;

/// How often the mux is drained while a flood is built, in flood items: keeps the number
/// of built but unwritten flows (and the generator's memory) small.
const DRAIN_EVERY: u32 = 4096;

/// PASV commands (and 227 replies) per control-channel message of `flood-pasv`.
const PASV_BATCH: u32 = 20;

/// True for the names of this family.
pub fn is_flood(name: &str) -> bool {
    FLOODS.iter().any(|(n, _)| *n == name)
}

/// Builds the named flood; `false` when `name` is not one of them.
pub fn build<W: Write>(name: &str, ctx: &mut Ctx<W>, opts: &Options) -> Result<bool> {
    let Some(&(_, default)) = FLOODS.iter().find(|(n, _)| *n == name) else {
        return Ok(false);
    };
    let count = opts.count.unwrap_or(default);
    ensure!(count > 0, "--count must be at least 1");
    let t0 = EPOCH_US;
    let up = Transfer::new(DataMode::Pasv, Cmd::Stor, UPLOAD_NAME, UPLOAD_BYTES);
    let mut plan = FtpPlan::new(WS, FTP_EXT, "jdoe", vec![up]);
    plan.chatty = false;
    let end = ftp_session(ctx, &plan, t0 + UPLOAD_DELAY_US)?;
    let span = end + TAIL_US - t0;
    match name {
        "flood-syn" => syn_flood(ctx, count, t0, span)?,
        "flood-fragments" => fragment_flood(ctx, count, t0, span)?,
        "flood-pasv" => pasv_flood(ctx, count, t0, span)?,
        _ => tftp_flood(ctx, count, t0, span)?,
    }
    Ok(true)
}

/// Time of item `i` of `n` spread over `span` from `t0`.
fn at(t0: u64, span: u64, i: u32, n: u32) -> u64 {
    t0 + span * u64::from(i) / u64::from(n)
}

/// An address in a documentation range standing in for the Internet.
fn random_external(ctx: &mut Ctx<impl Write>) -> IpAddr {
    let host = ctx.rng.range(1, 255) as u8;
    if ctx.rng.next_u32() & 1 == 0 {
        v4(198, 51, 100, host)
    } else {
        v4(203, 0, 113, host)
    }
}

/// A random host of 10.1.0.0/16.
fn random_internal(ctx: &mut Ctx<impl Write>) -> IpAddr {
    let x = ctx.rng.next_u32();
    v4(10, 1, (x >> 8) as u8, (x as u8).max(1))
}

/// `count` lone SYNs with random 5-tuples from the Internet into the internal network,
/// none answered.
fn syn_flood<W: Write>(ctx: &mut Ctx<W>, count: u32, t0: u64, span: u64) -> Result<()> {
    for i in 0..count {
        let t = at(t0, span, i, count);
        if i % DRAIN_EVERY == 0 {
            ctx.run_until(t)?;
        }
        let src = Endpoint::new(random_external(ctx), ctx.rng.range(1024, 65_536) as u16);
        let dst = Endpoint::new(random_internal(ctx), ctx.rng.range(1, 65_536) as u16);
        let mut conv = ctx.tcp(src, dst, t, Link::WAN);
        conv.syn_only();
        conv.meta.note = "SYN flood".to_owned();
        ctx.commit(conv);
    }
    Ok(())
}

/// `count` IPv4 fragments in trains of two that overlap and never complete: the first
/// piece (UDP header and 120 bytes) and one from byte 64 for 128 bytes, both with MF set,
/// of a 600-byte datagram. Each train comes from its own random source.
fn fragment_flood<W: Write>(ctx: &mut Ctx<W>, count: u32, t0: u64, span: u64) -> Result<()> {
    let trains = count.div_ceil(2);
    for i in 0..trains {
        let t = at(t0, span, i, trains);
        if i % DRAIN_EVERY == 0 {
            ctx.run_until(t)?;
        }
        let src = Endpoint::new(random_external(ctx), ctx.rng.range(1024, 65_536) as u16);
        let dst = Endpoint::new(RESOLVER, 53);
        let mut conv = ctx.udp(src, dst, t, Link::WAN);
        let payload = Payload::generated(Fill::Random, u64::from(i), 600);
        // The last train of an odd count is cut to one piece so the total is `count`.
        let pieces: &[(u32, u32)] = if 2 * i + 1 == count {
            &[(0, 128)]
        } else {
            &[(0, 128), (64, 128)]
        };
        let id = ctx.rng.next_u32() as u16;
        conv.send_fragments(Direction::ToServer, payload, id, pieces, 20)?;
        conv.meta.note = "fragment flood: overlapping, never completed".to_owned();
        ctx.commit(conv);
    }
    Ok(())
}

/// One FTP control connection (a second workstation to a second external server) that
/// logs in and then asks for `count` passive data channels, PASV_BATCH at a time, and opens
/// none of them.
fn pasv_flood<W: Write>(ctx: &mut Ctx<W>, count: u32, t0: u64, span: u64) -> Result<()> {
    let client = Endpoint::new(WS2, ctx.rng.ephemeral_port());
    let server = Endpoint::new(FTP_EXT2, 21);
    let mut conv = ctx.tcp(client, server, t0, Link::WAN);
    conv.handshake();
    let (up, down) = (Direction::ToServer, Direction::ToClient);
    conv.send(down, Payload::bytes(ftp::reply(220, "(vsFTPd 3.0.5)")));
    conv.send(up, Payload::bytes(ftp::cmd("USER", "scanner")));
    conv.send(down, Payload::bytes(ftp::reply(331, "Password?")));
    conv.send(up, Payload::bytes(ftp::cmd("PASS", "x")));
    conv.send(down, Payload::bytes(ftp::reply(230, "Login successful.")));
    let IpAddr::V4(server_v4) = FTP_EXT2 else {
        bail!("PASV replies need an IPv4 server");
    };
    let batches = count.div_ceil(PASV_BATCH);
    let mut left = count;
    for b in 0..batches {
        conv.sync_to(at(t0, span, b, batches));
        let n = left.min(PASV_BATCH);
        left -= n;
        let mut cmds = Vec::new();
        let mut replies = Vec::new();
        for _ in 0..n {
            cmds.extend(ftp::cmd("PASV", ""));
            let port = ctx.rng.range(1024, 65_536) as u16;
            replies.extend(ftp::pasv_reply(server_v4, port));
        }
        conv.send(up, Payload::bytes(cmds));
        conv.send(down, Payload::bytes(replies));
    }
    conv.send(up, Payload::bytes(ftp::cmd("QUIT", "")));
    conv.send(down, Payload::bytes(ftp::reply(221, "Goodbye.")));
    conv.close(down);
    conv.meta.app_proto = Some(AppProto::Ftp);
    conv.meta.note = format!("PASV flood: {count} passive replies, no data channel");
    ctx.commit(conv);
    Ok(())
}

/// `count` TFTP read requests from random internal clients and ports to the internal TFTP
/// server, none answered.
fn tftp_flood<W: Write>(ctx: &mut Ctx<W>, count: u32, t0: u64, span: u64) -> Result<()> {
    for i in 0..count {
        let t = at(t0, span, i, count);
        if i % DRAIN_EVERY == 0 {
            ctx.run_until(t)?;
        }
        let client = Endpoint::new(random_internal(ctx), ctx.rng.range(1024, 65_536) as u16);
        let mut conv = ctx.udp(client, Endpoint::new(TFTP_INT, 69), t, Link::LAN);
        let file = format!("pxelinux.cfg/{:08x}", ctx.rng.next_u32());
        conv.send(
            Direction::ToServer,
            Payload::bytes(tftp::request(tftp::RRQ, &file, "octet", &[])),
        );
        conv.meta.app_proto = Some(AppProto::Tftp);
        conv.meta.note = "TFTP request flood: never answered".to_owned();
        ctx.commit(conv);
    }
    Ok(())
}
