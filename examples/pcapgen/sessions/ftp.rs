//! An FTP or FTPS session: the control dialogue plus one data connection per transfer.
//!
//! Passive modes (PASV/EPSV): the client connects to the port the server announced, then
//! sends the transfer command. Active modes (PORT/EPRT): the client announces its port, sends
//! the command, and the server connects from port 20 (989 for implicit FTPS). Whoever sends
//! the content closes the data connection; the server then replies 226 on the control.
//! With TLS, the FTP client is the TLS client on every connection (RFC 4217 §7), even when
//! the server opened the TCP connection.

use std::io::Write;
use std::net::IpAddr;

use anyhow::Result;
use xferwatch::app_proto::AppProto;
use xferwatch::direction::Direction;

use crate::conv::{Conv, Link};
use crate::ctx::Ctx;
use crate::net::Endpoint;
use crate::payload::{Fill, Payload};
use crate::proto::{ftp, tls};
use crate::truth::{FileDir, FileTruth, FlowTruth, LinkTruth, SessionKind, Verdict};

/// How a data connection is set up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataMode {
    /// PASV / 227 (IPv4 only).
    Pasv,
    /// EPSV / 229.
    Epsv,
    /// PORT (IPv4 only).
    Port,
    /// EPRT with the client's address family.
    Eprt,
}

/// The transfer command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cmd {
    /// Upload.
    Stor,
    /// Upload, appending.
    Appe,
    /// Upload under a server-chosen unique name.
    Stou,
    /// Download.
    Retr,
    /// Directory listing (download).
    List,
}

impl Cmd {
    fn verb(self) -> &'static str {
        match self {
            Cmd::Stor => "STOR",
            Cmd::Appe => "APPE",
            Cmd::Stou => "STOU",
            Cmd::Retr => "RETR",
            Cmd::List => "LIST",
        }
    }

    fn is_upload(self) -> bool {
        matches!(self, Cmd::Stor | Cmd::Appe | Cmd::Stou)
    }
}

/// One transfer within a session.
#[derive(Debug, Clone)]
pub struct Transfer {
    /// Data-connection setup.
    pub mode: DataMode,
    /// Command.
    pub cmd: Cmd,
    /// File name (for LIST, the directory argument, may be empty).
    pub name: String,
    /// Content size in bytes (ignored for LIST, which sends a listing).
    pub size: u64,
    /// What the content looks like.
    pub fill: Fill,
    /// Retransmit the last content segment once (sequence accounting check).
    pub retransmit: bool,
}

impl Transfer {
    /// A transfer of `size` random-looking bytes.
    pub fn new(mode: DataMode, cmd: Cmd, name: &str, size: u64) -> Transfer {
        Transfer {
            mode,
            cmd,
            name: name.to_owned(),
            size,
            fill: Fill::Random,
            retransmit: false,
        }
    }
}

/// TLS use on the control connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tls {
    /// Cleartext FTP.
    None,
    /// AUTH TLS on a cleartext connection (RFC 4217).
    Explicit,
    /// TLS from the first byte (port 990).
    Implicit,
}

/// Everything that varies between FTP sessions.
#[derive(Debug, Clone)]
pub struct FtpPlan {
    /// FTP client.
    pub client: IpAddr,
    /// FTP server.
    pub server: IpAddr,
    /// Control port (21, 990, or something unusual for a mismatch).
    pub port: u16,
    /// Login name.
    pub user: String,
    /// TLS mode.
    pub tls: Tls,
    /// Server name for SNI.
    pub sni: String,
    /// Path characteristics.
    pub link: Link,
    /// 802.1Q tag.
    pub vlan: Option<u16>,
    /// Transfers in order.
    pub transfers: Vec<Transfer>,
    /// Think time between commands, µs.
    pub think_us: u64,
    /// Expected verdict on the control flow.
    pub verdict: Option<Verdict>,
    /// Send FEAT/PWD too (interactive clients do; scripts often skip them).
    pub chatty: bool,
}

impl FtpPlan {
    /// A cleartext session on port 21 with defaults for the rest.
    pub fn new(client: IpAddr, server: IpAddr, user: &str, transfers: Vec<Transfer>) -> FtpPlan {
        FtpPlan {
            client,
            server,
            port: 21,
            user: user.to_owned(),
            tls: Tls::None,
            sni: "ftp.example.net".to_owned(),
            link: Link::WAN,
            vlan: None,
            transfers,
            think_us: 150_000,
            verdict: None,
            chatty: true,
        }
    }
}

/// The control connection while it is being built.
struct Control<'a, W: Write> {
    ctx: &'a mut Ctx<W>,
    conv: Conv,
    encrypted: bool,
    think_us: u64,
}

impl<W: Write> Control<'_, W> {
    /// Sends one line in `dir`, as TLS records once the channel is encrypted.
    fn line(&mut self, dir: Direction, bytes: Vec<u8>) {
        let payload = if self.encrypted {
            Payload::bytes(tls::app_records(&mut self.ctx.rng, bytes.len()))
        } else {
            Payload::bytes(bytes)
        };
        self.conv.send(dir, payload);
    }

    /// A command after some think time, then its reply.
    fn exchange(&mut self, cmd: Vec<u8>, reply: Vec<u8>) {
        let think = self.ctx.rng.range(self.think_us / 2, self.think_us + 1);
        self.conv.wait(think);
        self.line(Direction::ToServer, cmd);
        self.line(Direction::ToClient, reply);
    }

    /// The TLS handshake on the control connection.
    fn handshake(&mut self, sni: &str, alpn: &[&str]) {
        let rng = &mut self.ctx.rng;
        let hello = tls::client_hello(rng, sni, alpn);
        let flight = tls::server_flight(rng, 2_900);
        let fin = tls::client_finished(rng);
        self.conv.send(Direction::ToServer, Payload::bytes(hello));
        self.conv.send(Direction::ToClient, Payload::bytes(flight));
        self.conv.send(Direction::ToServer, Payload::bytes(fin));
        self.encrypted = true;
    }
}

/// Builds and commits one FTP session starting at `start`; returns the time it ends.
pub fn ftp_session<W: Write>(ctx: &mut Ctx<W>, plan: &FtpPlan, start: u64) -> Result<u64> {
    let client_port = ctx.rng.ephemeral_port();
    let conv = ctx
        .tcp(
            Endpoint::new(plan.client, client_port),
            Endpoint::new(plan.server, plan.port),
            start,
            plan.link,
        )
        .with_vlan(plan.vlan);
    let mut c = Control {
        ctx,
        conv,
        encrypted: false,
        think_us: plan.think_us,
    };
    c.conv.handshake();
    if plan.tls == Tls::Implicit {
        c.handshake(&plan.sni, &["ftp"]);
    }
    c.line(Direction::ToClient, ftp::reply(220, "(vsFTPd 3.0.5)"));
    if plan.tls == Tls::Explicit {
        c.exchange(
            ftp::cmd("AUTH", "TLS"),
            ftp::reply(234, "Proceed with negotiation."),
        );
        c.handshake(&plan.sni, &[]);
    }
    if plan.tls != Tls::None {
        c.exchange(ftp::cmd("PBSZ", "0"), ftp::reply(200, "PBSZ set to 0."));
        c.exchange(ftp::cmd("PROT", "P"), ftp::reply(200, "PROT now Private."));
    }
    c.exchange(
        ftp::cmd("USER", &plan.user),
        ftp::reply(331, "Please specify the password."),
    );
    c.exchange(
        ftp::cmd("PASS", "Winter2026!"),
        ftp::reply(230, "Login successful."),
    );
    c.exchange(ftp::cmd("SYST", ""), ftp::reply(215, "UNIX Type: L8"));
    if plan.chatty {
        c.exchange(
            ftp::cmd("FEAT", ""),
            ftp::multiline(
                211,
                "Features:",
                &[
                    "EPRT",
                    "EPSV",
                    "MDTM",
                    "PASV",
                    "REST STREAM",
                    "SIZE",
                    "TVFS",
                    "UTF8",
                ],
                "End",
            ),
        );
        c.exchange(
            ftp::cmd("PWD", ""),
            ftp::reply(
                257,
                &format!("\"/home/{}\" is the current directory", plan.user),
            ),
        );
    }
    c.exchange(
        ftp::cmd("TYPE", "I"),
        ftp::reply(200, "Switching to Binary mode."),
    );

    let mut data_truths: Vec<FlowTruth> = Vec::new();
    let mut files = Vec::new();
    for t in &plan.transfers {
        let (truth, file) = transfer(&mut c, plan, t)?;
        data_truths.push(truth);
        files.extend(file);
    }

    c.exchange(ftp::cmd("QUIT", ""), ftp::reply(221, "Goodbye."));
    c.conv.close(Direction::ToClient);
    let (label, orig, tls_name) = match plan.tls {
        Tls::None => (AppProto::Ftp, None, "none"),
        Tls::Explicit => (AppProto::Ftps, Some(AppProto::Ftp), "explicit"),
        Tls::Implicit => (AppProto::Ftps, None, "implicit"),
    };
    let end = c.conv.now();
    let mut conv = c.conv;
    conv.meta.app_proto = Some(label);
    conv.meta.app_proto_orig = orig;
    conv.meta.verdict = plan.verdict;
    conv.meta.note = format!(
        "FTP control ({}), user {}, {} transfer(s)",
        match plan.tls {
            Tls::None => "cleartext",
            Tls::Explicit => "AUTH TLS",
            Tls::Implicit => "implicit TLS",
        },
        plan.user,
        plan.transfers.len()
    );
    let ctx = c.ctx;
    let control = ctx.commit(conv);
    let mut all: Vec<&FlowTruth> = vec![&control];
    all.extend(data_truths.iter());
    ctx.session(
        SessionKind::Ftp {
            user: plan.user.clone(),
            tls: tls_name,
        },
        &all,
        files,
    );
    Ok(end)
}

/// One data connection and its control-channel commands; returns the data flow's truth and
/// the file it moved (LIST moves a listing, not a file).
fn transfer<W: Write>(
    c: &mut Control<'_, W>,
    plan: &FtpPlan,
    t: &Transfer,
) -> Result<(FlowTruth, Option<FileTruth>)> {
    let passive = matches!(t.mode, DataMode::Pasv | DataMode::Epsv);
    let rng = &mut c.ctx.rng;
    let (announce, reply, data_client, data_server) = if passive {
        let port = rng.range(40_000, 60_000) as u16;
        let client_port = rng.ephemeral_port();
        let (cmd, reply) = match (t.mode, plan.server) {
            (DataMode::Pasv, IpAddr::V4(a)) => (ftp::cmd("PASV", ""), ftp::pasv_reply(a, port)),
            _ => (ftp::cmd("EPSV", ""), ftp::epsv_reply(port)),
        };
        (
            cmd,
            reply,
            Endpoint::new(plan.client, client_port),
            Endpoint::new(plan.server, port),
        )
    } else {
        let port = rng.ephemeral_port();
        let cmd = match (t.mode, plan.client) {
            (DataMode::Port, IpAddr::V4(a)) => ftp::cmd("PORT", &ftp::host_port(a, port)),
            _ => ftp::cmd("EPRT", &ftp::eprt_arg(plan.client, port)),
        };
        let verb = if cmd.starts_with(b"PORT") {
            "PORT"
        } else {
            "EPRT"
        };
        let reply = ftp::reply(
            200,
            &format!(
                "{verb} command successful. Consider using {}.",
                if verb == "PORT" { "PASV" } else { "EPSV" }
            ),
        );
        let server_port = if plan.tls == Tls::Implicit { 989 } else { 20 };
        (
            cmd,
            reply,
            Endpoint::new(plan.server, server_port),
            Endpoint::new(plan.client, port),
        )
    };
    let announce_verb = String::from_utf8_lossy(
        announce
            .split(|b| *b == b' ' || *b == b'\r')
            .next()
            .unwrap_or(b""),
    )
    .into_owned();
    c.exchange(announce, reply);

    let stored_name = if t.cmd == Cmd::Stou {
        format!("{}.{}", t.name, c.ctx.rng.range(1, 10))
    } else {
        t.name.clone()
    };
    let cmd_line = ftp::cmd(t.cmd.verb(), &t.name);
    let opening = match t.cmd {
        Cmd::Stor | Cmd::Appe => ftp::reply(150, "Ok to send data."),
        Cmd::Stou => ftp::reply(150, &format!("FILE: {stored_name}")),
        Cmd::Retr => ftp::reply(
            150,
            &format!(
                "Opening BINARY mode data connection for {} ({} bytes).",
                t.name, t.size
            ),
        ),
        Cmd::List => ftp::reply(150, "Here comes the directory listing."),
    };
    let done = match t.cmd {
        Cmd::List => ftp::reply(226, "Directory send OK."),
        _ => ftp::reply(226, "Transfer complete."),
    };

    // The client needs a moment to parse the 227/229 (or to open its listening socket).
    let mut data = c
        .ctx
        .tcp(data_client, data_server, c.conv.now() + 300, plan.link)
        .with_vlan(plan.vlan);
    if passive {
        data.handshake();
        c.conv.sync_to(data.now());
        c.exchange(cmd_line, opening);
    } else {
        c.conv.wait(c.ctx.rng.range(c.think_us / 2, c.think_us + 1));
        c.line(Direction::ToServer, cmd_line);
        data.sync_to(c.conv.now());
        data.handshake();
        c.conv.sync_to(data.now());
        c.line(Direction::ToClient, opening);
    }
    data.sync_to(c.conv.now());

    // Direction of each FTP role inside the data connection.
    let (from_ftp_client, from_ftp_server) = if passive {
        (Direction::ToServer, Direction::ToClient)
    } else {
        (Direction::ToClient, Direction::ToServer)
    };
    let content_dir = if t.cmd.is_upload() {
        from_ftp_client
    } else {
        from_ftp_server
    };
    let content_len = if t.cmd == Cmd::List { 0 } else { t.size };
    let seed = c.ctx.rng.next_u64();
    let listing = ftp::listing(&[
        ("q3-finance.zip", 409_600),
        ("notes.txt", 2_214),
        ("backup-2026-10.tar.gz", 8_112_384),
    ]);
    let plain_len = if t.cmd == Cmd::List {
        listing.len() as u64
    } else {
        content_len
    };
    if plan.tls != Tls::None {
        let rng = &mut c.ctx.rng;
        let hello = tls::client_hello(rng, &plan.sni, &[]);
        let flight = tls::server_flight(rng, 2_900);
        let fin = tls::client_finished(rng);
        data.send(from_ftp_client, Payload::bytes(hello));
        data.send(from_ftp_server, Payload::bytes(flight));
        data.send(from_ftp_client, Payload::bytes(fin));
        data.send(content_dir, Payload::tls_app_data(seed, plain_len));
    } else if t.cmd == Cmd::List {
        data.send(content_dir, Payload::bytes(listing));
    } else {
        data.send(content_dir, Payload::generated(t.fill, seed, content_len));
    }
    if t.retransmit {
        data.retransmit_last(content_dir)?;
    }
    data.close(content_dir);
    c.conv.sync_to(data.now());
    c.line(Direction::ToClient, done);

    let file = (t.cmd != Cmd::List).then(|| {
        let dir = if t.cmd.is_upload() {
            FileDir::Upload
        } else {
            FileDir::Download
        };
        let mut f = FileTruth::new(&stored_name, t.size, dir, t.cmd.verb());
        f.flow = Some(data.id());
        f
    });
    data.meta.app_proto = Some(if plan.tls == Tls::None {
        AppProto::FtpData
    } else {
        AppProto::FtpsData
    });
    data.meta.linked = Some(LinkTruth {
        control_flow: c.conv.id(),
        request: format!("{announce_verb}; {} {}", t.cmd.verb(), t.name)
            .trim_end()
            .to_owned(),
        opened_by: if passive { "ftp-client" } else { "ftp-server" },
    });
    data.meta.files.extend(file.clone());
    data.meta.note = format!(
        "FTP{} data ({}, {}) for {} {}",
        if plan.tls == Tls::None { "" } else { "S" },
        announce_verb,
        if passive {
            "client connects"
        } else {
            "server connects"
        },
        t.cmd.verb(),
        t.name
    );
    Ok((c.ctx.commit(data), file))
}
