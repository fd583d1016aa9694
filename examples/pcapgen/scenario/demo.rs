//! The README's demo: a workstation uploads `q3-finance.zip` to an external FTP server in
//! passive mode and lists the directory, among ordinary traffic; one host speaks SMB2 on
//! port 443.

use std::io::Write;

use anyhow::Result;

use super::hosts::*;
use crate::conv::Link;
use crate::ctx::{Ctx, EPOCH_US};
use crate::net::Endpoint;
use crate::sessions::ftp::{Cmd, DataMode, FtpPlan, Transfer, ftp_session};
use crate::sessions::smb::{SmbOp, SmbPlan, smb_session};
use crate::sessions::tftp::{TftpPlan, tftp_session};
use crate::sessions::web::{self, At, Req};
use crate::truth::Verdict;

/// Seconds to microseconds, for readable offsets.
const S: u64 = 1_000_000;

/// Builds the demo.
pub fn build<W: Write>(ctx: &mut Ctx<W>) -> Result<()> {
    let t0 = EPOCH_US;

    let dns = web::dns(ctx, WS, RESOLVER, "files.example.net", FTP_EXT, t0);
    let ftp_start = dns.now() + 40_000;
    ctx.commit(dns);
    let upload = Transfer::new(DataMode::Pasv, Cmd::Stor, "q3-finance.zip", 409_600);
    let list = Transfer::new(DataMode::Pasv, Cmd::List, "", 0);
    ftp_session(
        ctx,
        &FtpPlan::new(WS, FTP_EXT, "jdoe", vec![upload, list]),
        ftp_start,
    )?;

    let dns = web::dns(ctx, WS, RESOLVER, "www.example.com", WEB, t0 + S);
    let start = dns.now() + 2_000;
    ctx.commit(dns);
    let at = At::new(WS, Endpoint::new(WEB, 443), start, Link::WAN);
    let tls = web::tls(
        ctx,
        at,
        "www.example.com",
        &["h2", "http/1.1"],
        &[(420, 9_800), (380, 2_600), (510, 6_300)],
        1_500_000,
    );
    ctx.commit(tls);

    let dns = web::dns(ctx, WS, RESOLVER, "news.example.org", WEB2, t0 + 2 * S);
    let start = dns.now() + 2_000;
    ctx.commit(dns);
    let at = At::new(WS, Endpoint::new(WEB2, 80), start, Link::WAN);
    let http = web::http(
        ctx,
        at,
        "news.example.org",
        &[Req::Get(6_200), Req::Get(3_900)],
        2_000_000,
    );
    ctx.commit(http);

    let at = At::new(WS2, Endpoint::new(SSH_EXT, 22), t0 + 3 * S, Link::WAN);
    let ssh = web::ssh(ctx, at, 6);
    ctx.commit(ssh);

    let ops = vec![SmbOp::Read {
        name: "reports\\budget-2027.xlsx".into(),
        size: 36_000,
    }];
    let mut smb = SmbPlan::new(WS2, FS01, "fs01", "finance", ops);
    smb.ipc = true;
    smb_session(ctx, &smb, t0 + 4 * S)?;

    tftp_session(
        ctx,
        &TftpPlan::read(LAB, TFTP_INT, "pxelinux.0", 15_000),
        t0 + 5 * S,
    )?;

    let mut odd = SmbPlan::new(WS, ODD, "odd", "share", Vec::new());
    odd.port = 443;
    odd.negotiate_only = true;
    odd.link = Link::WAN;
    odd.verdict = Some(Verdict::PortMismatch);
    smb_session(ctx, &odd, t0 + 6 * S)?;
    Ok(())
}
