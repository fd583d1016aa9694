//! The single-protocol scenarios: FTP/FTPS, TFTP and SMB, one small session each.

use std::io::Write;

use anyhow::{Result, bail};

use super::hosts::*;
use crate::conv::Link;
use crate::ctx::{Ctx, EPOCH_US};
use crate::payload::Fill;
use crate::sessions::ftp::{Cmd, DataMode, FtpPlan, Tls, Transfer, ftp_session};
use crate::sessions::smb::{SmbOp, SmbPlan, smb_session, smb1_negotiate};
use crate::sessions::tftp::{TftpPlan, tftp_session};

/// Builds the named single-protocol scenario.
pub fn build<W: Write>(name: &str, ctx: &mut Ctx<W>) -> Result<()> {
    let t0 = EPOCH_US;
    match name {
        "ftp-passive-upload" => {
            let mut up = Transfer::new(DataMode::Pasv, Cmd::Stor, "payroll-2026-10.csv", 48_230);
            up.fill = Fill::Text;
            up.retransmit = true;
            let list = Transfer::new(DataMode::Pasv, Cmd::List, "", 0);
            ftp_session(ctx, &FtpPlan::new(WS, FTP_EXT, "jdoe", vec![up, list]), t0)?;
        }
        "ftp-passive-download" => {
            let list = Transfer::new(DataMode::Pasv, Cmd::List, "", 0);
            let get = Transfer::new(DataMode::Pasv, Cmd::Retr, "update.bin", 40_960);
            ftp_session(ctx, &FtpPlan::new(WS, FTP_EXT, "jdoe", vec![list, get]), t0)?;
        }
        "ftp-active-upload" => {
            let up = Transfer::new(DataMode::Port, Cmd::Stor, "db-dump.sql.gz", 36_864);
            let mut plan = FtpPlan::new(WS, FTP_EXT, "backup", vec![up]);
            plan.vlan = Some(20);
            plan.chatty = false;
            ftp_session(ctx, &plan, t0)?;
        }
        "ftp-active-download" => {
            let get = Transfer::new(DataMode::Port, Cmd::Retr, "config.tar", 30_720);
            let list = Transfer::new(DataMode::Eprt, Cmd::List, "", 0);
            ftp_session(ctx, &FtpPlan::new(WS, FTP_EXT, "jdoe", vec![get, list]), t0)?;
        }
        "ftp-epsv-upload" => {
            let transfers = vec![
                Transfer::new(DataMode::Epsv, Cmd::Stor, "report.docx", 20_480),
                Transfer::new(DataMode::Epsv, Cmd::Appe, "report.docx", 8_192),
                Transfer::new(DataMode::Epsv, Cmd::Stou, "upload", 12_000),
            ];
            ftp_session(ctx, &FtpPlan::new(WS, FTP_EXT, "jdoe", transfers), t0)?;
        }
        "ftp-eprt-ipv6" => {
            let transfers = vec![
                Transfer::new(DataMode::Eprt, Cmd::Stor, "keys.tar.gz", 30_000),
                Transfer::new(DataMode::Epsv, Cmd::List, "", 0),
            ];
            ftp_session(ctx, &FtpPlan::new(WS6, FTP_EXT6, "jdoe", transfers), t0)?;
        }
        "ftps-explicit" => {
            let up = Transfer::new(DataMode::Pasv, Cmd::Stor, "ledger.xlsx", 40_000);
            let mut plan = FtpPlan::new(WS, FTP_EXT, "jdoe", vec![up]);
            plan.tls = Tls::Explicit;
            ftp_session(ctx, &plan, t0)?;
        }
        "ftps-implicit" => {
            let transfers = vec![
                Transfer::new(DataMode::Pasv, Cmd::Stor, "archive.7z", 30_000),
                Transfer::new(DataMode::Port, Cmd::Retr, "readme.txt", 6_000),
            ];
            let mut plan = FtpPlan::new(WS, FTP_EXT, "jdoe", transfers);
            plan.tls = Tls::Implicit;
            plan.port = 990;
            ftp_session(ctx, &plan, t0)?;
        }
        "tftp-get" => {
            tftp_session(
                ctx,
                &TftpPlan::read(LAB, TFTP_INT, "pxelinux.0", 26_758),
                t0,
            )?;
        }
        "tftp-put" => {
            let mut plan = TftpPlan::read(WS, TFTP_EXT, "running-config", 9_000);
            plan.write = true;
            plan.mode = "netascii";
            plan.link = Link::WAN;
            tftp_session(ctx, &plan, t0)?;
        }
        "tftp-blksize" => {
            let mut plan = TftpPlan::read(LAB, TFTP_INT, "images/fw-7.2.bin", 60_000);
            plan.blksize = Some(1428);
            plan.tsize = true;
            plan.windowsize = Some(8);
            tftp_session(ctx, &plan, t0)?;
        }
        "tftp-error" => {
            let mut plan = TftpPlan::read(WS, TFTP_INT, "secret.cfg", 0);
            plan.error = Some((1, "File not found"));
            tftp_session(ctx, &plan, t0)?;
        }
        "smb2-put" => {
            let ops = vec![SmbOp::Write {
                name: "export\\customers.zip".into(),
                size: 96_000,
            }];
            let mut plan = SmbPlan::new(WS, SMB_EXT, "files.example.net", "drop", ops);
            plan.ipc = true;
            plan.link = Link::WAN;
            smb_session(ctx, &plan, t0)?;
        }
        "smb2-get" => {
            let ops = vec![SmbOp::Read {
                name: "reports\\q3-summary.pdf".into(),
                size: 80_000,
            }];
            let mut plan = SmbPlan::new(WS2, FS01, "fs01", "finance", ops);
            plan.dialect = 0x0210;
            plan.vlan = Some(30);
            smb_session(ctx, &plan, t0)?;
        }
        "smb3-encrypted" => {
            let ops = vec![
                SmbOp::Write {
                    name: "hr\\salaries.xlsx".into(),
                    size: 50_000,
                },
                SmbOp::Read {
                    name: "hr\\template.docx".into(),
                    size: 20_000,
                },
            ];
            let mut plan = SmbPlan::new(WS, FS01, "fs01", "hr", ops);
            plan.dialect = 0x0311;
            plan.encrypt = true;
            smb_session(ctx, &plan, t0)?;
        }
        "smb1-negotiate" => {
            smb1_negotiate(ctx, WS3, FS01, 445, t0)?;
            smb1_negotiate(ctx, WS3, FS01, 139, t0 + 2_000_000)?;
        }
        other => bail!("not a single-protocol scenario: {other}"),
    }
    Ok(())
}
