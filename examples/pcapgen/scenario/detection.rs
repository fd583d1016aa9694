//! Detection scenarios (issue 5): one capture per rule firing and per negative case.
//!
//! The big ones are not committed; `tests/detection.rs` generates them into a temporary
//! directory at test time. `--size` sets the transfer size of the scenarios that move one
//! big body, `--count` the number of sessions of `ftp-repeated`.

use std::io::Write;

use anyhow::Result;

use super::Options;
use super::hosts::*;
use crate::conv::Link;
use crate::ctx::{Ctx, EPOCH_US};
use crate::net::Endpoint;
use crate::payload::Fill;
use crate::sessions::ftp::{Cmd, DataMode, FtpPlan, Transfer, ftp_session};
use crate::sessions::web::{self, At, Req};

/// Seconds to microseconds.
const S: u64 = 1_000_000;

/// The scenarios of this family that read `--size`, with their default size.
pub const SIZED: [(&str, u64); 5] = [
    ("ftp-internal-big-upload", 110_000_000),
    ("ftp-big-upload-external", 120_000_000),
    ("ftp-download-external", 4_000_000),
    ("http-upload-external", 6_000_000),
    ("ssh-dns-external", 5_000_000),
];

/// Sessions of `ftp-repeated` unless `--count` says otherwise.
pub const DEFAULT_REPEATS: u32 = 5;

/// Time between two sessions of `ftp-repeated`: five of them fit in four minutes.
pub const REPEAT_SPACING_US: u64 = 60 * S;

/// The size `--size` gives `name`, or its default.
fn size(name: &str, opts: &Options) -> u64 {
    let default = SIZED
        .iter()
        .find(|(n, _)| *n == name)
        .map_or(0, |(_, d)| *d);
    opts.size.unwrap_or(default)
}

/// Builds the named detection scenario; `false` when `name` is not one of them.
pub fn build<W: Write>(name: &str, ctx: &mut Ctx<W>, opts: &Options) -> Result<bool> {
    let t0 = EPOCH_US;
    match name {
        "ftp-internal-big-upload" => {
            // Workstation to the internal file server: no external peer, so nothing may fire.
            let up = Transfer::new(
                DataMode::Pasv,
                Cmd::Stor,
                "nightly-dump.bak",
                size(name, opts),
            );
            let mut plan = FtpPlan::new(WS, FS01, "backup", vec![up]);
            plan.link = Link::LAN;
            plan.chatty = false;
            ftp_session(ctx, &plan, t0)?;
        }
        "ftp-big-upload-external" => {
            let up = Transfer::new(
                DataMode::Pasv,
                Cmd::Stor,
                "project-assets.dat",
                size(name, opts),
            );
            let plan = FtpPlan::new(WS, FTP_EXT, "jdoe", vec![up]);
            ftp_session(ctx, &plan, t0)?;
        }
        "ftp-download-external" => {
            let transfers = vec![
                Transfer::new(DataMode::Pasv, Cmd::List, "", 0),
                Transfer::new(
                    DataMode::Pasv,
                    Cmd::Retr,
                    "installer-4.2.msi",
                    size(name, opts),
                ),
            ];
            ftp_session(ctx, &FtpPlan::new(WS, FTP_EXT, "jdoe", transfers), t0)?;
        }
        "http-upload-external" => {
            let at = At::new(WS, Endpoint::new(WEB, 80), t0, Link::WAN);
            let reqs = [Req::Get(2_400), Req::Post(size(name, opts))];
            let http = web::http(ctx, at, "www.example.com", &reqs, 800_000);
            ctx.commit(http);
        }
        "ssh-dns-external" => {
            // Lookups through a public resolver, an interactive session and an scp upload.
            let mut start = t0;
            for (host, addr) in [("ssh.example.net", SSH_EXT), ("www.example.com", WEB)] {
                let dns = web::dns(ctx, WS, RESOLVER_EXT, host, addr, start);
                start = dns.now() + 5_000;
                ctx.commit(dns);
            }
            let at = At::new(WS, Endpoint::new(SSH_EXT, 22), start, Link::WAN);
            let ssh = web::ssh(ctx, at, 8);
            ctx.commit(ssh);
            let at = At::new(WS, Endpoint::new(SSH_EXT, 22), start + 20 * S, Link::WAN);
            let scp = web::scp_upload(ctx, at, size(name, opts));
            ctx.commit(scp);
        }
        "ftp-repeated" => {
            // A script that logs in every minute and drops a small status file.
            for i in 0..opts.count.unwrap_or(DEFAULT_REPEATS) {
                let mut up = Transfer::new(DataMode::Pasv, Cmd::Stor, "status.txt", 2_048);
                up.fill = Fill::Text;
                let mut plan = FtpPlan::new(WS, FTP_EXT, "agent", vec![up]);
                plan.chatty = false;
                ftp_session(ctx, &plan, t0 + u64::from(i) * REPEAT_SPACING_US)?;
            }
        }
        "ftp-suspicious-names" => {
            // Two uploads to two servers, so suppression (keyed on host and external
            // address) cannot fold one alert into the other.
            let up = Transfer::new(
                DataMode::Pasv,
                Cmd::Stor,
                "a1b2c3d4e5f60718293a4b5c6d7e8f90.bin",
                200_000,
            );
            ftp_session(ctx, &FtpPlan::new(WS, FTP_EXT, "jdoe", vec![up]), t0)?;
            let up = Transfer::new(DataMode::Epsv, Cmd::Stor, "invoice.pdf.exe", 150_000);
            let plan = FtpPlan::new(WS, FTP_EXT2, "jdoe", vec![up]);
            ftp_session(ctx, &plan, t0 + 30 * S)?;
        }
        _ => return Ok(false),
    }
    Ok(true)
}
