//! FTP control-channel parser and per-session state (RFC 959, RFC 2428 EPRT/EPSV,
//! RFC 1639 LPRT/LPSV, RFC 4217 AUTH TLS).
//!
//! [`FtpControl`] is fed the in-order bytes of one control connection, per direction, and
//! turns them into [`FtpEvent`]s: commands and replies, the data-connection expectations
//! announced by PORT/EPRT/LPRT and 227/229/228 replies, the transfer each data connection
//! will carry (STOR, RETR, LIST …) and how it ended, logins, the switch to TLS, anomalies,
//! and one [`FtpTransaction`] per command shaped like Suricata's EVE `ftp` object.
//!
//! Framing: lines end in LF (CRLF per the RFC; a bare LF is accepted). The line buffer is
//! bounded; an over-long line is cut at the limit, parsed as a truncated line (so command
//! and reply stay paired), the rest skipped to the next LF, and an anomaly raised. A gap in
//! the byte stream drops the partial line and resynchronises at the next LF.
//!
//! Expectations: active mode (PORT/EPRT/LPRT) is announced when the command is seen — the
//! server connects right after accepting it, and a lost reply must not lose the link; a
//! refused PORT leaves an expectation that simply expires. Passive mode is announced by the
//! 227/229/228 reply, whatever command it answers. Malformed values, an address family other
//! than the control connection's, and port 0 produce an anomaly and no expectation; an active
//! address other than the client's (FTP bounce) is reported with `bounce` set.
//!
//! Replies pair with commands first-in first-out; 1xx replies are preliminary and leave the
//! command pending. Pending commands are capped: the oldest is flushed as
//! `reply_received: "no"` when the cap is hit.

use std::collections::VecDeque;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use serde::Serialize;

use super::{Endpoint, TransferDirection, text};
use crate::direction::Direction;

/// Limits for one control session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FtpConfig {
    /// Longest line kept, in bytes without the line end (longer lines are cut).
    pub max_line: usize,
    /// Longest command argument or reply text kept in events and records.
    pub max_text: usize,
    /// Commands awaiting their final reply before the oldest is flushed unanswered.
    pub max_pending: usize,
    /// Replies kept per transaction record (later ones are counted, not stored).
    pub max_replies: usize,
    /// Replace the PASS argument by `***` in events and records.
    pub redact_password: bool,
}

impl Default for FtpConfig {
    fn default() -> FtpConfig {
        FtpConfig {
            max_line: 4096,
            max_text: 1024,
            max_pending: 64,
            max_replies: 8,
            redact_password: true,
        }
    }
}

/// Active (server connects out) or passive (client connects in) data connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DataMode {
    /// PORT / EPRT / LPRT: the client listens, the server opens the data connection.
    Active,
    /// PASV / EPSV / LPSV: the server listens, the client opens the data connection.
    Passive,
}

impl DataMode {
    /// Suricata's `mode` value.
    pub const fn as_str(self) -> &'static str {
        match self {
            DataMode::Active => "active",
            DataMode::Passive => "passive",
        }
    }
}

/// The command (or reply) that announced a data connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum DataCmd {
    /// `PORT h1,h2,h3,h4,p1,p2` (RFC 959).
    Port,
    /// `EPRT |af|addr|port|` (RFC 2428).
    Eprt,
    /// `LPRT af,hal,h…,pal,p…` (RFC 1639).
    Lprt,
    /// `227 … (h1,h2,h3,h4,p1,p2)` answering PASV.
    Pasv,
    /// `229 … (|||port|)` answering EPSV.
    Epsv,
    /// `228 … (af,hal,h…,pal,p…)` answering LPSV.
    Lpsv,
}

impl DataCmd {
    /// The command verb.
    pub const fn as_str(self) -> &'static str {
        match self {
            DataCmd::Port => "PORT",
            DataCmd::Eprt => "EPRT",
            DataCmd::Lprt => "LPRT",
            DataCmd::Pasv => "PASV",
            DataCmd::Epsv => "EPSV",
            DataCmd::Lpsv => "LPSV",
        }
    }

    /// Active or passive.
    pub const fn mode(self) -> DataMode {
        match self {
            DataCmd::Port | DataCmd::Eprt | DataCmd::Lprt => DataMode::Active,
            DataCmd::Pasv | DataCmd::Epsv | DataCmd::Lpsv => DataMode::Passive,
        }
    }
}

/// A data connection the control channel announced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataExpectation {
    /// Which command or reply announced it.
    pub cmd: DataCmd,
    /// The address written in the command or reply (`None` for EPSV, which names none, and
    /// for a passive reply naming `0.0.0.0`).
    pub stated: Option<IpAddr>,
    /// The address that will accept the data connection. Active: the stated address.
    /// Passive: the control connection's server address, whatever the reply stated — the
    /// sensor sees the same path as the control connection, and clients behind or in front
    /// of NAT connect to the address they already reach the server on.
    pub listener: IpAddr,
    /// Port that will accept the data connection.
    pub port: u16,
    /// Who opens (sends the SYN of) the data connection.
    pub opener: Endpoint,
    /// The address of the opener: the control client (passive) or server (active).
    pub opener_addr: IpAddr,
    /// Active mode pointing at a host other than the control client (FTP bounce).
    pub bounce: bool,
}

impl DataExpectation {
    /// Active or passive.
    pub const fn mode(&self) -> DataMode {
        self.cmd.mode()
    }
}

/// Commands that open a data transfer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum TransferCmd {
    /// Store a file (upload).
    Stor,
    /// Append to a file (upload).
    Appe,
    /// Store under a name the server picks (upload).
    Stou,
    /// Retrieve a file (download).
    Retr,
    /// Directory listing.
    List,
    /// Name list.
    Nlst,
    /// Machine-readable listing (RFC 3659).
    Mlsd,
}

impl TransferCmd {
    /// Recognises a transfer verb (already upper-case).
    pub fn from_verb(verb: &str) -> Option<TransferCmd> {
        Some(match verb {
            "STOR" => TransferCmd::Stor,
            "APPE" => TransferCmd::Appe,
            "STOU" => TransferCmd::Stou,
            "RETR" => TransferCmd::Retr,
            "LIST" => TransferCmd::List,
            "NLST" => TransferCmd::Nlst,
            "MLSD" => TransferCmd::Mlsd,
            _ => return None,
        })
    }

    /// The verb.
    pub const fn as_str(self) -> &'static str {
        match self {
            TransferCmd::Stor => "STOR",
            TransferCmd::Appe => "APPE",
            TransferCmd::Stou => "STOU",
            TransferCmd::Retr => "RETR",
            TransferCmd::List => "LIST",
            TransferCmd::Nlst => "NLST",
            TransferCmd::Mlsd => "MLSD",
        }
    }

    /// Which way the data moves.
    pub const fn direction(self) -> TransferDirection {
        match self {
            TransferCmd::Stor | TransferCmd::Appe | TransferCmd::Stou => TransferDirection::Upload,
            TransferCmd::Retr => TransferDirection::Download,
            TransferCmd::List | TransferCmd::Nlst | TransferCmd::Mlsd => TransferDirection::Listing,
        }
    }
}

/// Suricata's EVE `ftp` object: one command with the replies it drew.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct FtpTransaction {
    /// The command verb, upper-case.
    pub command: String,
    /// The argument (bounded; PASS redacted by default).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command_data: Option<String>,
    /// Reply texts, first line of each reply.
    pub reply: Vec<String>,
    /// Reply codes, one per entry of `reply`.
    pub completion_code: Vec<String>,
    /// Data port announced by this command or its reply.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dynamic_port: Option<u16>,
    /// `active` / `passive` when this command set up a data connection.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<&'static str>,
    /// `yes` when a final reply was seen, `no` otherwise.
    pub reply_received: &'static str,
    /// The command line was longer than the line limit and was cut.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub command_truncated: bool,
    /// A reply line was cut, or more replies came than are kept.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub reply_truncated: bool,
}

/// What the control channel said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FtpEvent {
    /// A client command (verb upper-case; argument bounded, PASS redacted).
    Command {
        /// Verb.
        verb: String,
        /// Argument, possibly empty.
        arg: String,
    },
    /// A complete server reply (first line text, bounded).
    Reply {
        /// Reply code (as written, also when invalid).
        code: u16,
        /// First line text after the code.
        text: String,
    },
    /// A data connection was announced.
    Expect(DataExpectation),
    /// A transfer command was sent; its data connection is the most recent expectation.
    Transfer {
        /// The command.
        cmd: TransferCmd,
        /// Its argument (none for STOU and bare LIST).
        name: Option<String>,
        /// Which way the bytes move.
        direction: TransferDirection,
        /// Mode of the most recent expectation of this session, if any.
        mode: Option<DataMode>,
        /// Port of the most recent expectation of this session, if any.
        data_port: Option<u16>,
    },
    /// The final reply to a transfer command.
    TransferEnd {
        /// The command it answers.
        cmd: TransferCmd,
        /// Reply code.
        code: u16,
        /// 2xx: the transfer completed.
        ok: bool,
    },
    /// A login attempt was answered.
    Login {
        /// The USER argument (bounded).
        user: String,
        /// 230/202: accepted.
        ok: bool,
    },
    /// An `AUTH` command was answered; on acceptance the channel is now TLS and no more
    /// lines are parsed until clear text reappears.
    AuthTls {
        /// 234 received.
        accepted: bool,
    },
    /// After TLS, a clear-text FTP line reappeared (CCC, or a server that dropped TLS).
    ClearTextAfterTls,
    /// Malformed or suspicious input.
    Anomaly(&'static str),
    /// A finished transaction (command plus replies, or flushed unanswered).
    Transaction(FtpTransaction),
}

/// Per-session counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct FtpCounters {
    /// Command lines parsed.
    pub commands: u64,
    /// Complete replies parsed.
    pub replies: u64,
    /// Lines cut at the line limit.
    pub long_lines: u64,
    /// Anomaly events raised.
    pub anomalies: u64,
    /// Commands flushed unanswered because too many were pending.
    pub pending_overflow: u64,
    /// Replies with no command to pair with (banner excluded).
    pub unpaired_replies: u64,
    /// Gaps in the byte stream (partial lines dropped).
    pub gaps: u64,
    /// Bytes not parsed because the channel was TLS.
    pub tls_bytes: u64,
}

/// Splits a byte stream into lines with a bounded buffer.
#[derive(Debug, Clone, Default)]
struct LineFramer {
    buf: Vec<u8>,
    /// Dropping bytes up to the next LF (after a cut line or a gap).
    skipping: bool,
}

impl LineFramer {
    fn reset(&mut self) {
        self.buf.clear();
        self.skipping = false;
    }

    /// Calls `on_line(line, truncated)` for every complete line in `data` (line end
    /// stripped). `on_line` returns false to stop framing; the rest of `data` is dropped.
    fn feed(&mut self, mut data: &[u8], max: usize, on_line: &mut impl FnMut(&[u8], bool) -> bool) {
        while !data.is_empty() {
            let nl = data.iter().position(|&b| b == b'\n');
            if self.skipping {
                match nl.and_then(|i| data.get(i + 1..)) {
                    Some(rest) => {
                        self.skipping = false;
                        data = rest;
                        continue;
                    }
                    None => return,
                }
            }
            let Some(i) = nl else {
                let room = max.saturating_sub(self.buf.len());
                if data.len() <= room {
                    self.buf.extend_from_slice(data);
                    return;
                }
                // The line outgrows the limit: parse what fits, drop the rest of the line.
                self.buf.extend_from_slice(data.get(..room).unwrap_or(data));
                self.skipping = true;
                let go = on_line(strip_cr(&self.buf), true);
                self.buf.clear();
                if !go {
                    return;
                }
                continue;
            };
            let (head, rest) = data.split_at(i);
            data = rest.get(1..).unwrap_or_default();
            let head = strip_cr(head);
            let go = if self.buf.is_empty() && head.len() <= max {
                on_line(head, false)
            } else {
                let room = max.saturating_sub(self.buf.len());
                let truncated = head.len() > room;
                self.buf.extend_from_slice(head.get(..room).unwrap_or(head));
                let go = on_line(strip_cr(&self.buf), truncated);
                self.buf.clear();
                go
            };
            if !go {
                return;
            }
        }
    }
}

fn strip_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// A command awaiting its final reply.
#[derive(Debug, Clone)]
struct Pending {
    verb: String,
    tx: FtpTransaction,
}

/// A multi-line reply being read (`123-` … `123 `).
#[derive(Debug, Clone)]
struct MultiLine {
    code: u16,
    first: String,
    truncated: bool,
}

/// Whether lines are parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Channel {
    Clear,
    Tls,
}

/// Everything except the line framers (so a framer can call into it while borrowed).
#[derive(Debug, Clone)]
struct Session {
    cfg: FtpConfig,
    client: IpAddr,
    server: IpAddr,
    multi: Option<MultiLine>,
    pending: VecDeque<Pending>,
    user: Option<String>,
    logged_in: bool,
    banner_seen: bool,
    channel: Channel,
    tls_accepted: bool,
    last_data: Option<(DataMode, u16)>,
    counters: FtpCounters,
}

/// State of one FTP control connection.
#[derive(Debug, Clone)]
pub struct FtpControl {
    ts: LineFramer,
    tc: LineFramer,
    s: Session,
}

impl FtpControl {
    /// A control connection from `client` to `server`.
    pub fn new(cfg: FtpConfig, client: IpAddr, server: IpAddr) -> FtpControl {
        FtpControl {
            ts: LineFramer::default(),
            tc: LineFramer::default(),
            s: Session {
                cfg,
                client,
                server,
                multi: None,
                pending: VecDeque::new(),
                user: None,
                logged_in: false,
                banner_seen: false,
                channel: Channel::Clear,
                tls_accepted: false,
                last_data: None,
                counters: FtpCounters::default(),
            },
        }
    }

    /// Feeds new in-order bytes of one direction (`ToServer` = client commands, `ToClient` =
    /// server replies). `gap` says bytes are missing before `data`.
    pub fn feed(&mut self, dir: Direction, data: &[u8], gap: bool, out: &mut Vec<FtpEvent>) {
        let s = &mut self.s;
        let framer = match dir {
            Direction::ToServer => &mut self.ts,
            Direction::ToClient => &mut self.tc,
        };
        if gap {
            s.counters.gaps += 1;
            framer.reset();
            framer.skipping = true;
            if dir == Direction::ToClient {
                s.multi = None;
            }
        }
        if s.channel == Channel::Tls {
            if !looks_like_clear_ftp(dir, data, s.cfg.max_line) {
                s.counters.tls_bytes += data.len() as u64;
                return;
            }
            s.channel = Channel::Clear;
            out.push(FtpEvent::ClearTextAfterTls);
            self.ts.reset();
            self.tc.reset();
        } else if framer.buf.is_empty() && !framer.skipping && is_tls_handshake(data) {
            // TLS without a visible 234 (the reply was lost, or arrives later in capture
            // order): stop parsing rather than read a handshake as lines.
            s.channel = Channel::Tls;
            s.counters.tls_bytes += data.len() as u64;
            s.anomaly("ftp.tls_without_auth_reply", out);
            self.ts.reset();
            self.tc.reset();
            return;
        }
        let framer = match dir {
            Direction::ToServer => &mut self.ts,
            Direction::ToClient => &mut self.tc,
        };
        let max = s.cfg.max_line;
        framer.feed(data, max, &mut |line, truncated| {
            if truncated {
                s.counters.long_lines += 1;
                s.anomaly("ftp.line_too_long", out);
            }
            match dir {
                Direction::ToServer => s.command(line, truncated, out),
                Direction::ToClient => s.reply_line(line, truncated, out),
            }
            s.channel == Channel::Clear
        });
        if s.channel == Channel::Tls {
            self.ts.reset();
            self.tc.reset();
        }
    }

    /// Flushes every pending command as unanswered (call when the connection ends).
    pub fn finish(&mut self, out: &mut Vec<FtpEvent>) {
        while let Some(p) = self.s.pending.pop_front() {
            out.push(FtpEvent::Transaction(p.tx));
        }
    }

    /// The last USER argument.
    pub fn user(&self) -> Option<&str> {
        self.s.user.as_deref()
    }

    /// A login was accepted.
    pub fn logged_in(&self) -> bool {
        self.s.logged_in
    }

    /// The control channel is (or was) protected by TLS after `AUTH`.
    pub fn tls(&self) -> bool {
        self.s.tls_accepted
    }

    /// Lines are not being parsed because the channel is TLS right now.
    pub fn in_tls(&self) -> bool {
        self.s.channel == Channel::Tls
    }

    /// Mode and port of the most recent data expectation.
    pub fn last_data(&self) -> Option<(DataMode, u16)> {
        self.s.last_data
    }

    /// Commands awaiting a final reply.
    pub fn pending(&self) -> usize {
        self.s.pending.len()
    }

    /// Counters so far.
    pub fn counters(&self) -> &FtpCounters {
        &self.s.counters
    }
}

impl Session {
    fn anomaly(&mut self, what: &'static str, out: &mut Vec<FtpEvent>) {
        self.counters.anomalies += 1;
        out.push(FtpEvent::Anomaly(what));
    }

    fn command(&mut self, line: &[u8], truncated: bool, out: &mut Vec<FtpEvent>) {
        // Telnet IP/DM sequences precede ABOR on some clients; they are not part of the verb.
        let start = line.iter().position(|b| b.is_ascii_graphic());
        let Some(line) = start.and_then(|i| line.get(i..)) else {
            return;
        };
        let (verb, arg) = match line.iter().position(|&b| b == b' ') {
            Some(i) => {
                let (v, a) = line.split_at(i);
                (v, a.get(1..).unwrap_or_default())
            }
            None => (line, &[][..]),
        };
        if verb.is_empty() || verb.len() > 16 || !verb.iter().all(u8::is_ascii_alphanumeric) {
            self.anomaly("ftp.invalid_command", out);
            return;
        }
        self.counters.commands += 1;
        let verb = String::from_utf8_lossy(verb).to_ascii_uppercase();
        let arg = trim_ascii_end(arg);
        let shown = if verb == "PASS" && self.cfg.redact_password && !arg.is_empty() {
            "***".to_owned()
        } else {
            text(arg, self.cfg.max_text)
        };
        out.push(FtpEvent::Command {
            verb: verb.clone(),
            arg: shown.clone(),
        });

        if self.pending.len() >= self.cfg.max_pending.max(1) {
            self.counters.pending_overflow += 1;
            if let Some(p) = self.pending.pop_front() {
                out.push(FtpEvent::Transaction(p.tx));
            }
        }
        let mut tx = FtpTransaction {
            command: verb.clone(),
            command_data: (!shown.is_empty()).then_some(shown),
            reply_received: "no",
            command_truncated: truncated,
            ..FtpTransaction::default()
        };

        match verb.as_str() {
            "USER" => {
                self.user = Some(text(arg, self.cfg.max_text));
            }
            "PORT" | "EPRT" | "LPRT" => {
                let cmd = match verb.as_str() {
                    "PORT" => DataCmd::Port,
                    "EPRT" => DataCmd::Eprt,
                    _ => DataCmd::Lprt,
                };
                let parsed = match cmd {
                    DataCmd::Port => parse_port(arg).ok_or("ftp.port_malformed"),
                    DataCmd::Eprt => parse_eprt(arg),
                    _ => parse_lprt(arg).ok_or("ftp.lprt_malformed"),
                };
                match parsed {
                    Ok((addr, port)) => {
                        tx.mode = Some(DataMode::Active.as_str());
                        tx.dynamic_port = Some(port);
                        self.active(cmd, addr, port, out);
                    }
                    Err(what) => self.anomaly(what, out),
                }
            }
            _ => {
                if let Some(cmd) = TransferCmd::from_verb(&verb) {
                    let name = (!arg.is_empty()).then(|| text(arg, self.cfg.max_text));
                    out.push(FtpEvent::Transfer {
                        cmd,
                        name,
                        direction: cmd.direction(),
                        mode: self.last_data.map(|d| d.0),
                        data_port: self.last_data.map(|d| d.1),
                    });
                }
            }
        }
        self.pending.push_back(Pending { verb, tx });
    }

    /// PORT/EPRT/LPRT: the client will listen on `addr:port`.
    fn active(&mut self, cmd: DataCmd, addr: IpAddr, port: u16, out: &mut Vec<FtpEvent>) {
        if addr.is_ipv4() != self.client.is_ipv4() {
            self.anomaly("ftp.address_family_mismatch", out);
            return;
        }
        if addr.is_unspecified() {
            self.anomaly("ftp.port_unspecified_address", out);
            return;
        }
        let bounce = addr != self.client;
        if bounce {
            self.anomaly("ftp.bounce", out);
        }
        self.last_data = Some((DataMode::Active, port));
        out.push(FtpEvent::Expect(DataExpectation {
            cmd,
            stated: Some(addr),
            listener: addr,
            port,
            opener: Endpoint::Server,
            opener_addr: self.server,
            bounce,
        }));
    }

    /// 227/229/228: the server will listen on `port`.
    fn passive(
        &mut self,
        cmd: DataCmd,
        stated: Option<IpAddr>,
        port: u16,
        out: &mut Vec<FtpEvent>,
    ) {
        let stated = stated.filter(|a| !a.is_unspecified());
        if stated.is_some_and(|a| a.is_ipv4() != self.server.is_ipv4()) {
            self.anomaly("ftp.address_family_mismatch", out);
            return;
        }
        self.last_data = Some((DataMode::Passive, port));
        out.push(FtpEvent::Expect(DataExpectation {
            cmd,
            stated,
            listener: self.server,
            port,
            opener: Endpoint::Client,
            opener_addr: self.client,
            bounce: false,
        }));
    }

    fn reply_line(&mut self, line: &[u8], truncated: bool, out: &mut Vec<FtpEvent>) {
        if let Some(m) = &mut self.multi {
            // Inside a multi-line reply only `<same code><space>` (or the bare code) ends it.
            let code = m.code;
            if let Some((c, sep, rest)) = split_code(line)
                && c == code
                && sep != Some(b'-')
            {
                let m = self.multi.take();
                let (first, cut) = m.map_or((String::new(), false), |m| (m.first, m.truncated));
                let last = text(rest, self.cfg.max_text);
                self.reply(code, true, first, Some(last), cut || truncated, out);
            } else if truncated {
                m.truncated = true;
            }
            return;
        }
        match split_code(line) {
            Some((code, Some(b'-'), rest)) if valid_code(code) => {
                self.multi = Some(MultiLine {
                    code,
                    first: text(rest, self.cfg.max_text),
                    truncated,
                });
            }
            Some((code, _, rest)) if valid_code(code) => {
                let t = text(rest, self.cfg.max_text);
                self.reply(code, true, t, None, truncated, out);
            }
            _ => match bad_code(line) {
                Some((code, rest)) => {
                    // A server's reply with a malformed code still answers the command;
                    // pairing it keeps later replies aligned.
                    self.anomaly("ftp.invalid_reply_code", out);
                    let t = text(rest, self.cfg.max_text);
                    self.reply(code, false, t, None, truncated, out);
                }
                None => self.anomaly("ftp.reply_malformed", out),
            },
        }
    }

    /// A complete reply. `last` is the closing line of a multi-line reply.
    fn reply(
        &mut self,
        code: u16,
        valid: bool,
        first: String,
        last: Option<String>,
        truncated: bool,
        out: &mut Vec<FtpEvent>,
    ) {
        self.counters.replies += 1;
        out.push(FtpEvent::Reply {
            code,
            text: first.clone(),
        });
        let preliminary = valid && code < 200;
        let verb = self.pending.front().map(|p| p.verb.clone());
        let verb = verb.as_deref();

        // Passive-mode replies describe themselves: parse them whatever they answer.
        let mut data_port = None;
        let passive = match code {
            227 => Some((DataCmd::Pasv, "ftp.pasv_malformed")),
            229 => Some((DataCmd::Epsv, "ftp.epsv_malformed")),
            228 => Some((DataCmd::Lpsv, "ftp.lpsv_malformed")),
            _ => None,
        };
        if let Some((cmd, what)) = passive {
            let parse = |t: &str| -> Option<(Option<IpAddr>, u16)> {
                match cmd {
                    DataCmd::Pasv => parse_pasv(t).map(|(a, p)| (Some(IpAddr::V4(a)), p)),
                    DataCmd::Epsv => parse_epsv(t).map(|p| (None, p)),
                    _ => parse_lpsv(t).map(|(a, p)| (Some(a), p)),
                }
            };
            match parse(&first).or_else(|| last.as_deref().and_then(parse)) {
                Some((addr, port)) => {
                    data_port = Some(port);
                    self.passive(cmd, addr, port, out);
                }
                None => self.anomaly(what, out),
            }
        }

        match verb {
            Some("USER") | Some("PASS") if valid && !preliminary => {
                let ok = matches!(code, 230 | 202);
                if ok || code >= 400 {
                    self.logged_in |= ok;
                    out.push(FtpEvent::Login {
                        user: self.user.clone().unwrap_or_default(),
                        ok,
                    });
                }
            }
            Some("AUTH") if valid && !preliminary => {
                let accepted = code == 234;
                out.push(FtpEvent::AuthTls { accepted });
                if accepted {
                    self.tls_accepted = true;
                    self.channel = Channel::Tls;
                }
            }
            None if code == 234 => {
                // 234 with nothing pending: the AUTH command was lost in a gap.
                out.push(FtpEvent::AuthTls { accepted: true });
                self.tls_accepted = true;
                self.channel = Channel::Tls;
            }
            Some(v) if !preliminary => {
                if let Some(cmd) = TransferCmd::from_verb(v) {
                    out.push(FtpEvent::TransferEnd {
                        cmd,
                        code,
                        ok: valid && (200..300).contains(&code),
                    });
                }
            }
            _ => {}
        }

        let Some(p) = self.pending.front_mut() else {
            if code == 220 && !self.banner_seen {
                self.banner_seen = true;
            } else {
                self.counters.unpaired_replies += 1;
            }
            return;
        };
        let tx = &mut p.tx;
        if tx.reply.len() < self.cfg.max_replies {
            tx.reply.push(first);
            tx.completion_code.push(if valid {
                format!("{code:03}")
            } else {
                code.to_string()
            });
        } else {
            tx.reply_truncated = true;
        }
        tx.reply_truncated |= truncated;
        if let Some(port) = data_port {
            tx.dynamic_port = Some(port);
            tx.mode = Some(DataMode::Passive.as_str());
        }
        if !preliminary {
            tx.reply_received = "yes";
            if let Some(p) = self.pending.pop_front() {
                out.push(FtpEvent::Transaction(p.tx));
            }
        }
    }
}

fn trim_ascii_end(b: &[u8]) -> &[u8] {
    let end = b
        .iter()
        .rposition(|c| !c.is_ascii_whitespace())
        .map_or(0, |i| i + 1);
    b.get(..end).unwrap_or_default()
}

/// `ddd` then space, dash or end: (code, separator, text after the separator).
fn split_code(line: &[u8]) -> Option<(u16, Option<u8>, &[u8])> {
    let digits = line.get(..3)?;
    if !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let code = digits
        .iter()
        .fold(0u16, |acc, d| acc * 10 + u16::from(d - b'0'));
    match line.get(3) {
        None => Some((code, None, &[])),
        Some(&sep @ (b' ' | b'-')) => Some((code, Some(sep), line.get(4..).unwrap_or_default())),
        Some(_) => None,
    }
}

/// RFC 959 reply codes: first digit 1–5, second 0–5.
fn valid_code(code: u16) -> bool {
    (100..600).contains(&code) && (code / 10) % 10 <= 5
}

/// One to three digits then a space or end: a reply with a malformed code (`99 …`).
fn bad_code(line: &[u8]) -> Option<(u16, &[u8])> {
    let n = line.iter().take_while(|b| b.is_ascii_digit()).count();
    if !(1..=3).contains(&n) {
        return None;
    }
    let (digits, rest) = line.split_at_checked(n)?;
    let rest = match rest.split_first() {
        None => rest,
        Some((b' ', r)) => r,
        Some(_) => return None,
    };
    let code = digits
        .iter()
        .fold(0u16, |acc, d| acc * 10 + u16::from(d - b'0'));
    Some((code, rest))
}

/// A TLS handshake record header (ClientHello / ServerHello start).
fn is_tls_handshake(data: &[u8]) -> bool {
    matches!(data, [0x16, 0x03, 0x00..=0x04, ..])
}

/// Verbs that may legitimately start a clear-text line after TLS (CCC, or TLS shut down).
const KNOWN_VERBS: &[&str] = &[
    "ABOR", "ACCT", "ALLO", "APPE", "AUTH", "CCC", "CDUP", "CWD", "DELE", "EPRT", "EPSV", "FEAT",
    "HELP", "HOST", "LIST", "LPRT", "LPSV", "MDTM", "MKD", "MLSD", "MLST", "MODE", "NLST", "NOOP",
    "OPTS", "PASS", "PASV", "PBSZ", "PORT", "PROT", "PWD", "QUIT", "REIN", "REST", "RETR", "RMD",
    "RNFR", "RNTO", "SITE", "SIZE", "SMNT", "STAT", "STOR", "STOU", "STRU", "SYST", "TYPE", "USER",
    "XCWD", "XMKD", "XPWD", "XRMD",
];

/// Whether a chunk seen while the channel is TLS is in fact a clear-text FTP line: all
/// printable, ends with LF, and starts with a known verb or a valid reply code. Encrypted
/// records essentially never pass all three tests.
fn looks_like_clear_ftp(dir: Direction, data: &[u8], max_line: usize) -> bool {
    if data.len() < 4 || data.len() > max_line.saturating_add(2) || !data.ends_with(b"\n") {
        return false;
    }
    if !data
        .iter()
        .all(|&b| b.is_ascii_graphic() || matches!(b, b' ' | b'\r' | b'\n' | b'\t'))
    {
        return false;
    }
    let line = strip_cr(data.strip_suffix(b"\n").unwrap_or(data));
    match dir {
        Direction::ToServer => {
            let verb = line.split(|&b| b == b' ').next().unwrap_or_default();
            KNOWN_VERBS
                .iter()
                .any(|v| v.as_bytes().eq_ignore_ascii_case(verb))
        }
        Direction::ToClient => {
            matches!(split_code(line), Some((c, Some(_), _)) if valid_code(c))
        }
    }
}

/// Parses up to `out.len()` comma-separated decimal numbers 0–255 (spaces around commas
/// allowed); returns how many, or `None` on anything else.
fn byte_list(s: &str, out: &mut [u8]) -> Option<usize> {
    let mut n = 0;
    for part in s.split(',') {
        let part = part.trim();
        if part.is_empty() || part.len() > 3 || !part.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let v: u16 = part.parse().ok()?;
        *out.get_mut(n)? = u8::try_from(v).ok()?;
        n += 1;
    }
    Some(n)
}

fn nonzero_port(hi: u8, lo: u8) -> Option<u16> {
    let p = u16::from_be_bytes([hi, lo]);
    (p != 0).then_some(p)
}

/// `PORT h1,h2,h3,h4,p1,p2` argument.
pub fn parse_port(arg: &[u8]) -> Option<(IpAddr, u16)> {
    let s = std::str::from_utf8(arg).ok()?;
    let mut v = [0u8; 6];
    if byte_list(s.trim(), &mut v)? != 6 {
        return None;
    }
    let [a, b, c, d, hi, lo] = v;
    Some((IpAddr::V4(Ipv4Addr::new(a, b, c, d)), nonzero_port(hi, lo)?))
}

/// `EPRT <d>af<d>addr<d>port<d>` argument; the error names the anomaly.
pub fn parse_eprt(arg: &[u8]) -> Result<(IpAddr, u16), &'static str> {
    const BAD: &str = "ftp.eprt_malformed";
    let s = std::str::from_utf8(arg).map_err(|_| BAD)?.trim();
    let mut chars = s.chars();
    let d = chars.next().ok_or(BAD)?;
    if !d.is_ascii_graphic() || d.is_ascii_digit() {
        return Err(BAD);
    }
    let mut f = chars.as_str().split(d);
    let (af, addr, port, tail) = (f.next(), f.next(), f.next(), f.next());
    let (Some(af), Some(addr), Some(port), Some("")) = (af, addr, port, tail) else {
        return Err(BAD);
    };
    if f.next().is_some() {
        return Err(BAD);
    }
    let addr = match af {
        "1" => IpAddr::V4(addr.parse::<Ipv4Addr>().map_err(|_| BAD)?),
        "2" => IpAddr::V6(addr.parse::<Ipv6Addr>().map_err(|_| BAD)?),
        _ => return Err("ftp.eprt_unsupported_family"),
    };
    Ok((addr, parse_port_number(port).ok_or(BAD)?))
}

/// A decimal TCP port 1–65535.
fn parse_port_number(s: &str) -> Option<u16> {
    if s.is_empty() || s.len() > 5 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse::<u16>().ok().filter(|p| *p != 0)
}

/// RFC 1639 long address: `af,hal,h…,pal,p…` with af 4/hal 4 or af 6/hal 16, pal 2.
fn long_address(s: &str) -> Option<(IpAddr, u16)> {
    let mut v = [0u8; 21];
    let n = byte_list(s.trim(), &mut v)?;
    match (v.as_slice().get(..n)?, n) {
        ([4, 4, a, b, c, d, 2, hi, lo], 9) => Some((
            IpAddr::V4(Ipv4Addr::new(*a, *b, *c, *d)),
            nonzero_port(*hi, *lo)?,
        )),
        ([6, 16, rest @ ..], 21) => {
            let (addr, port) = rest.split_at_checked(16)?;
            let addr: [u8; 16] = addr.try_into().ok()?;
            match port {
                [2, hi, lo] => Some((IpAddr::V6(Ipv6Addr::from(addr)), nonzero_port(*hi, *lo)?)),
                _ => None,
            }
        }
        _ => None,
    }
}

/// `LPRT af,hal,h…,pal,p…` argument.
pub fn parse_lprt(arg: &[u8]) -> Option<(IpAddr, u16)> {
    long_address(std::str::from_utf8(arg).ok()?)
}

/// Runs of digits and commas in `text`, each tried in turn.
fn number_runs(text: &str) -> impl Iterator<Item = &str> {
    text.split(|c: char| !(c.is_ascii_digit() || c == ',' || c == ' '))
        .map(|r| r.trim().trim_matches(','))
        .filter(|r| r.contains(','))
}

/// The address and port in a 227 reply text (`Entering Passive Mode (h1,h2,h3,h4,p1,p2)`;
/// parentheses optional).
pub fn parse_pasv(text: &str) -> Option<(Ipv4Addr, u16)> {
    number_runs(text).find_map(|run| {
        let mut v = [0u8; 6];
        if byte_list(run, &mut v)? != 6 {
            return None;
        }
        let [a, b, c, d, hi, lo] = v;
        Some((Ipv4Addr::new(a, b, c, d), nonzero_port(hi, lo)?))
    })
}

/// The port in a 229 reply text (`Entering Extended Passive Mode (|||6446|)`).
pub fn parse_epsv(text: &str) -> Option<u16> {
    let (_, inner) = text.split_once('(')?;
    let (inner, _) = inner.rsplit_once(')')?;
    let mut chars = inner.chars();
    let d = chars.next()?;
    if d.is_ascii_digit() || !d.is_ascii_graphic() {
        return None;
    }
    let fields: Vec<&str> = chars.as_str().split(d).collect();
    match fields.as_slice() {
        [_, _, port, ""] => parse_port_number(port),
        _ => None,
    }
}

/// The address and port in a 228 reply text (`Entering Long Passive Mode (4,4,…,2,p1,p2)`).
pub fn parse_lpsv(text: &str) -> Option<(IpAddr, u16)> {
    number_runs(text).find_map(long_address)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const C: Direction = Direction::ToServer;
    const S: Direction = Direction::ToClient;

    fn v4(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn ctl() -> FtpControl {
        FtpControl::new(FtpConfig::default(), v4("10.0.0.1"), v4("192.0.2.10"))
    }

    /// Feeds a scripted dialogue, one chunk per entry, and collects the events.
    fn run(ctl: &mut FtpControl, script: &[(Direction, &str)]) -> Vec<FtpEvent> {
        let mut out = Vec::new();
        for (dir, data) in script {
            ctl.feed(*dir, data.as_bytes(), false, &mut out);
        }
        out
    }

    fn expectations(ev: &[FtpEvent]) -> Vec<DataExpectation> {
        ev.iter()
            .filter_map(|e| match e {
                FtpEvent::Expect(x) => Some(x.clone()),
                _ => None,
            })
            .collect()
    }

    fn anomalies(ev: &[FtpEvent]) -> Vec<&'static str> {
        ev.iter()
            .filter_map(|e| match e {
                FtpEvent::Anomaly(a) => Some(*a),
                _ => None,
            })
            .collect()
    }

    fn transactions(ev: &[FtpEvent]) -> Vec<FtpTransaction> {
        ev.iter()
            .filter_map(|e| match e {
                FtpEvent::Transaction(t) => Some(t.clone()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn passive_upload_dialogue() {
        let mut c = ctl();
        let ev = run(
            &mut c,
            &[
                (S, "220 ready\r\n"),
                (C, "USER alice\r\n"),
                (S, "331 Password required\r\n"),
                (C, "PASS s3cret\r\n"),
                (S, "230 Logged in\r\n"),
                (C, "PASV\r\n"),
                (S, "227 Entering Passive Mode (192,0,2,10,82,9).\r\n"),
                (C, "STOR secrets.zip\r\n"),
                (S, "150 Ok to send data.\r\n"),
                (S, "226 Transfer complete.\r\n"),
                (C, "QUIT\r\n"),
                (S, "221 Goodbye.\r\n"),
            ],
        );
        assert!(anomalies(&ev).is_empty(), "{ev:?}");
        assert!(ev.contains(&FtpEvent::Login {
            user: "alice".into(),
            ok: true
        }));
        let x = expectations(&ev);
        assert_eq!(x.len(), 1);
        assert_eq!(x[0].cmd, DataCmd::Pasv);
        assert_eq!(x[0].mode(), DataMode::Passive);
        assert_eq!(x[0].listener, v4("192.0.2.10"));
        assert_eq!(x[0].port, 82 * 256 + 9);
        assert_eq!(x[0].opener, Endpoint::Client);
        assert_eq!(x[0].opener_addr, v4("10.0.0.1"));
        assert!(ev.contains(&FtpEvent::Transfer {
            cmd: TransferCmd::Stor,
            name: Some("secrets.zip".into()),
            direction: TransferDirection::Upload,
            mode: Some(DataMode::Passive),
            data_port: Some(21001),
        }));
        assert!(ev.contains(&FtpEvent::TransferEnd {
            cmd: TransferCmd::Stor,
            code: 226,
            ok: true
        }));
        let txs = transactions(&ev);
        assert_eq!(
            txs.iter().map(|t| t.command.as_str()).collect::<Vec<_>>(),
            ["USER", "PASS", "PASV", "STOR", "QUIT"]
        );
        assert_eq!(txs[1].command_data.as_deref(), Some("***"));
        assert_eq!(txs[2].dynamic_port, Some(21001));
        assert_eq!(txs[2].mode, Some("passive"));
        assert_eq!(txs[3].completion_code, ["150", "226"]);
        assert_eq!(txs[3].reply, ["Ok to send data.", "Transfer complete."]);
        assert!(txs.iter().all(|t| t.reply_received == "yes"));
        assert!(c.logged_in());
        assert_eq!(c.pending(), 0);
        assert_eq!(c.counters().unpaired_replies, 0);
        let json = serde_json::to_value(&txs[2]).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"command":"PASV","reply":["Entering Passive Mode (192,0,2,10,82,9)."],
                "completion_code":["227"],"dynamic_port":21001,"mode":"passive","reply_received":"yes"})
        );
    }

    #[test]
    fn active_download_and_failed_transfer() {
        let mut c = ctl();
        let ev = run(
            &mut c,
            &[
                (C, "PORT 10,0,0,1,4,1\r\n"),
                (S, "200 PORT command successful\r\n"),
                (C, "RETR /etc/passwd\r\n"),
                (S, "550 Permission denied\r\n"),
            ],
        );
        let x = expectations(&ev);
        assert_eq!(x.len(), 1);
        assert_eq!(x[0].mode(), DataMode::Active);
        assert_eq!(x[0].listener, v4("10.0.0.1"));
        assert_eq!(x[0].port, 1025);
        assert_eq!(x[0].opener, Endpoint::Server);
        assert_eq!(x[0].opener_addr, v4("192.0.2.10"));
        assert!(!x[0].bounce);
        assert!(ev.contains(&FtpEvent::TransferEnd {
            cmd: TransferCmd::Retr,
            code: 550,
            ok: false
        }));
        let txs = transactions(&ev);
        assert_eq!(txs[0].mode, Some("active"));
        assert_eq!(txs[0].dynamic_port, Some(1025));
    }

    #[test]
    fn epsv_uses_control_server_address() {
        let mut c = ctl();
        let ev = run(
            &mut c,
            &[
                (C, "EPSV\r\n"),
                (S, "229 Entering Extended Passive Mode (|||6446|)\r\n"),
                (C, "LIST\r\n"),
            ],
        );
        let x = expectations(&ev);
        assert_eq!(x.len(), 1);
        assert_eq!(
            (x[0].cmd, x[0].stated, x[0].listener, x[0].port),
            (DataCmd::Epsv, None, v4("192.0.2.10"), 6446)
        );
        assert!(ev.contains(&FtpEvent::Transfer {
            cmd: TransferCmd::List,
            name: None,
            direction: TransferDirection::Listing,
            mode: Some(DataMode::Passive),
            data_port: Some(6446),
        }));
    }

    #[test]
    fn eprt_ipv6_and_lprt() {
        let client: IpAddr = "2001:db8::1".parse().unwrap();
        let server: IpAddr = "2001:db8::21".parse().unwrap();
        let mut c = FtpControl::new(FtpConfig::default(), client, server);
        let ev = run(
            &mut c,
            &[
                (C, "EPRT |2|2001:db8::1|5282|\r\n"),
                (S, "200 EPRT command successful\r\n"),
                (C, "LPRT 6,16,32,1,13,184,0,0,0,0,0,0,0,0,0,0,0,1,2,4,1\r\n"),
                (S, "200 ok\r\n"),
                (C, "LPSV\r\n"),
                (
                    S,
                    "228 Entering Long Passive Mode (6,16,32,1,13,184,0,0,0,0,0,0,0,0,0,0,0,33,2,19,137)\r\n",
                ),
            ],
        );
        assert!(anomalies(&ev).is_empty(), "{ev:?}");
        let x = expectations(&ev);
        assert_eq!(x.len(), 3);
        assert_eq!(
            (x[0].cmd, x[0].listener, x[0].port),
            (DataCmd::Eprt, client, 5282)
        );
        assert_eq!(
            (x[1].cmd, x[1].listener, x[1].port),
            (DataCmd::Lprt, client, 1025)
        );
        assert_eq!(
            (x[2].cmd, x[2].listener, x[2].port),
            (DataCmd::Lpsv, server, 19 * 256 + 137)
        );
        assert_eq!(x[2].stated, Some(server));
    }

    #[test]
    fn stou_without_name() {
        let mut c = ctl();
        let ev = run(
            &mut c,
            &[
                (C, "PORT 10,0,0,1,200,1\r\n"),
                (S, "200 ok\r\n"),
                (C, "STOU\r\n"),
                (S, "150 FILE: stou.0001\r\n226 done\r\n"),
            ],
        );
        assert!(ev.contains(&FtpEvent::Transfer {
            cmd: TransferCmd::Stou,
            name: None,
            direction: TransferDirection::Upload,
            mode: Some(DataMode::Active),
            data_port: Some(200 * 256 + 1),
        }));
        assert!(ev.contains(&FtpEvent::TransferEnd {
            cmd: TransferCmd::Stou,
            code: 226,
            ok: true
        }));
    }

    #[test]
    fn lines_split_across_chunks() {
        let mut c = ctl();
        let ev = run(
            &mut c,
            &[
                (C, "PA"),
                (C, "SV"),
                (C, "\r"),
                (C, "\n"),
                (S, "227 Entering Passive Mode (192,0,2"),
                (S, ",10,4,"),
                (S, "2)\r\n200 "),
            ],
        );
        assert_eq!(expectations(&ev).len(), 1);
        assert_eq!(expectations(&ev)[0].port, 1026);
        assert!(anomalies(&ev).is_empty());
    }

    #[test]
    fn multi_line_replies() {
        let mut c = ctl();
        let ev = run(
            &mut c,
            &[
                (S, "220-Welcome\r\n220-to the\r\n220 server\r\n"),
                (C, "FEAT\r\n"),
                (
                    S,
                    "211-Features:\r\n EPRT\r\n211-not the end\r\n MLST size*;\r\n211 End\r\n",
                ),
                (C, "NOOP\r\n"),
                (S, "200 ok\r\n"),
            ],
        );
        let replies: Vec<_> = ev
            .iter()
            .filter_map(|e| match e {
                FtpEvent::Reply { code, text } => Some((*code, text.as_str())),
                _ => None,
            })
            .collect();
        assert_eq!(replies, [(220, "Welcome"), (211, "Features:"), (200, "ok")]);
        let txs = transactions(&ev);
        assert_eq!(txs.len(), 2);
        assert_eq!(txs[0].completion_code, ["211"]);
        assert_eq!(txs[1].command, "NOOP");
        assert_eq!(c.counters().unpaired_replies, 0);
    }

    #[test]
    fn over_long_line_is_cut_and_pairing_survives() {
        // The corpus case: a ~4 KB RETR argument split over two segments.
        let mut c = ctl();
        let long = format!("RETR {}", "A".repeat(4092));
        let mut out = Vec::new();
        c.feed(C, long.as_bytes(), false, &mut out);
        c.feed(C, b"Z\r\n", false, &mut out);
        c.feed(S, b"550 Failed to open file.\r\n", false, &mut out);
        c.feed(C, b"RETR index.html\r\n", false, &mut out);
        c.feed(S, b"550 Failed to open file.\r\n", false, &mut out);
        assert_eq!(anomalies(&out), ["ftp.line_too_long"]);
        assert_eq!(c.counters().long_lines, 1);
        let txs = transactions(&out);
        assert_eq!(txs.len(), 2);
        assert!(txs[0].command_truncated);
        assert_eq!(txs[0].command, "RETR");
        assert!(txs[0].command_data.as_ref().unwrap().len() <= 1024);
        assert_eq!(txs[1].command_data.as_deref(), Some("index.html"));
        assert_eq!(txs[1].completion_code, ["550"]);
    }

    #[test]
    fn long_line_with_newline_in_same_chunk() {
        let cfg = FtpConfig {
            max_line: 16,
            ..FtpConfig::default()
        };
        let mut c = FtpControl::new(cfg, v4("10.0.0.1"), v4("192.0.2.10"));
        let mut out = Vec::new();
        c.feed(
            C,
            b"STOR aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\nNOOP\r\n",
            false,
            &mut out,
        );
        assert_eq!(anomalies(&out), ["ftp.line_too_long"]);
        let cmds: Vec<_> = out
            .iter()
            .filter_map(|e| match e {
                FtpEvent::Command { verb, arg } => Some((verb.as_str(), arg.len())),
                _ => None,
            })
            .collect();
        assert_eq!(cmds, [("STOR", 11), ("NOOP", 0)]);
    }

    #[test]
    fn malformed_port_values_make_no_expectation() {
        let mut c = ctl();
        let ev = run(
            &mut c,
            &[
                (C, "PORT 1234\r\n"),
                (S, "501 Illegal PORT command\r\n"),
                (
                    C,
                    "PORT 1234123412341234123412341234123412341234123412341234123412341234\r\n",
                ),
                (S, "501 Illegal PORT command\r\n"),
                (C, "PORT 10,0,0,1,300,1\r\n"),
                (C, "PORT 10,0,0,1,0,0\r\n"),
                (C, "EPRT |1|10.0.0.1|99999|\r\n"),
                (C, "EPRT |3|10.0.0.1|999|\r\n"),
                (C, "EPRT 1|10.0.0.1|999\r\n"),
                (C, "LPRT 4,4,10,0,0,1,3,1,2,3\r\n"),
                (C, "PASV\r\n"),
                (S, "227 Entering Passive Mode (192,0,2,10,1)\r\n"),
                (C, "EPSV\r\n"),
                (S, "229 Entering Extended Passive Mode (|||0|)\r\n"),
            ],
        );
        assert!(expectations(&ev).is_empty(), "{ev:?}");
        assert_eq!(
            anomalies(&ev),
            [
                "ftp.port_malformed",
                "ftp.port_malformed",
                "ftp.port_malformed",
                "ftp.port_malformed",
                "ftp.eprt_malformed",
                "ftp.eprt_unsupported_family",
                "ftp.eprt_malformed",
                "ftp.lprt_malformed",
                "ftp.pasv_malformed",
                "ftp.epsv_malformed",
            ]
        );
    }

    #[test]
    fn eprt_ipv6_in_ipv4_session_is_rejected() {
        let mut c = ctl();
        let ev = run(
            &mut c,
            &[(
                C,
                "EPRT |2|2601:191:8500:2e00:7c0f:78e0:dc5b:f7c1|34325|\r\n",
            )],
        );
        assert!(expectations(&ev).is_empty());
        assert_eq!(anomalies(&ev), ["ftp.address_family_mismatch"]);
    }

    #[test]
    fn invalid_reply_code_keeps_pairing() {
        let mut c = ctl();
        let ev = run(
            &mut c,
            &[
                (C, "PASV\r\n"),
                (S, "99 PASV invalid\r\n"),
                (C, "QUIT\r\n"),
                (S, "221 Bye\r\n"),
            ],
        );
        assert_eq!(anomalies(&ev), ["ftp.invalid_reply_code"]);
        assert!(expectations(&ev).is_empty());
        let txs = transactions(&ev);
        assert_eq!(txs[0].completion_code, ["99"]);
        assert_eq!(txs[1].command, "QUIT");
        assert_eq!(txs[1].completion_code, ["221"]);
    }

    #[test]
    fn bounce_is_flagged_but_reported() {
        let mut c = ctl();
        let ev = run(&mut c, &[(C, "PORT 2,2,2,3,0,80\r\n")]);
        assert_eq!(anomalies(&ev), ["ftp.bounce"]);
        let x = expectations(&ev);
        assert_eq!(x.len(), 1);
        assert!(x[0].bounce);
        assert_eq!((x[0].listener, x[0].port), (v4("2.2.2.3"), 80));
    }

    #[test]
    fn pasv_stated_address_differs_from_control() {
        let mut c = ctl();
        let ev = run(
            &mut c,
            &[
                (C, "PASV\r\n"),
                (S, "227 Entering Passive Mode (172,16,0,5,10,0)\r\n"),
            ],
        );
        let x = expectations(&ev);
        assert_eq!(x[0].stated, Some(v4("172.16.0.5")));
        assert_eq!(x[0].listener, v4("192.0.2.10"));
        // A 0.0.0.0 reply names no address.
        let ev = run(
            &mut c,
            &[
                (C, "PASV\r\n"),
                (S, "227 Entering Passive Mode 0,0,0,0,10,1\r\n"),
            ],
        );
        assert_eq!(expectations(&ev)[0].stated, None);
    }

    #[test]
    fn auth_tls_stops_parsing_until_clear_text() {
        let mut c = ctl();
        let mut ev = run(
            &mut c,
            &[
                (S, "220 ready\r\n"),
                (C, "AUTH TLS\r\n"),
                (S, "234 Proceed with negotiation.\r\nTRAILING"),
            ],
        );
        assert!(ev.contains(&FtpEvent::AuthTls { accepted: true }));
        assert!(c.tls() && c.in_tls());
        let hello = [0x16, 0x03, 0x01, 0x00, 0x05, b'P', b'O', b'R', b'T', b'\n'];
        c.feed(C, &hello, false, &mut ev);
        c.feed(S, &[0x17, 0x03, 0x03, 0x00, 0x01, 0x00], false, &mut ev);
        c.feed(C, b"PORT 10,0,0,1,4,1\r\n\x00", false, &mut ev);
        assert!(expectations(&ev).is_empty());
        assert!(c.in_tls());
        assert_eq!(c.counters().tls_bytes, 10 + 6 + 20);
        // A clean clear-text command after TLS resumes parsing (the corpus CCC-like case).
        c.feed(C, b"PASV\r\n", false, &mut ev);
        c.feed(
            S,
            b"227 Entering Passive Mode (192,0,2,10,4,1)\r\n",
            false,
            &mut ev,
        );
        assert!(ev.contains(&FtpEvent::ClearTextAfterTls));
        assert_eq!(expectations(&ev).len(), 1);
        assert!(!c.in_tls());
    }

    #[test]
    fn auth_refused_stays_clear() {
        let mut c = ctl();
        let ev = run(
            &mut c,
            &[(C, "AUTH TLS\r\n"), (S, "502 no\r\n"), (C, "PASV\r\n")],
        );
        assert!(ev.contains(&FtpEvent::AuthTls { accepted: false }));
        assert!(!c.tls());
    }

    #[test]
    fn client_hello_without_234_switches_to_tls() {
        let mut c = ctl();
        let mut out = Vec::new();
        c.feed(C, &[0x16, 0x03, 0x01, 0x02, 0x00, 0x01], false, &mut out);
        assert_eq!(anomalies(&out), ["ftp.tls_without_auth_reply"]);
        assert!(c.in_tls());
    }

    #[test]
    fn gap_resynchronises_at_next_line() {
        let mut c = ctl();
        let mut out = Vec::new();
        c.feed(C, b"STOR half", false, &mut out);
        c.feed(C, b"rest of line\r\nPASV\r\n", true, &mut out);
        let verbs: Vec<_> = out
            .iter()
            .filter_map(|e| match e {
                FtpEvent::Command { verb, .. } => Some(verb.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(verbs, ["PASV"]);
        assert_eq!(c.counters().gaps, 1);
    }

    #[test]
    fn failed_login_and_unanswered_commands() {
        let mut c = ctl();
        let mut ev = run(
            &mut c,
            &[
                (C, "USER bro\r\n"),
                (S, "331 Password required for bro.\r\n"),
                (C, "PASS guess\r\n"),
                (S, "530 Login incorrect.\r\n"),
                (C, "QUIT\r\n"),
            ],
        );
        c.finish(&mut ev);
        assert!(ev.contains(&FtpEvent::Login {
            user: "bro".into(),
            ok: false
        }));
        let txs = transactions(&ev);
        assert_eq!(txs.last().unwrap().command, "QUIT");
        assert_eq!(txs.last().unwrap().reply_received, "no");
    }

    #[test]
    fn pending_commands_are_capped() {
        let cfg = FtpConfig {
            max_pending: 4,
            ..FtpConfig::default()
        };
        let mut c = FtpControl::new(cfg, v4("10.0.0.1"), v4("192.0.2.10"));
        let mut out = Vec::new();
        for _ in 0..10 {
            c.feed(C, b"NOOP\r\n", false, &mut out);
        }
        assert_eq!(c.pending(), 4);
        assert_eq!(c.counters().pending_overflow, 6);
        assert_eq!(transactions(&out).len(), 6);
    }

    #[test]
    fn reply_parsers() {
        assert_eq!(
            parse_pasv("Entering Passive Mode (2,2,2,2,185,13)."),
            Some((Ipv4Addr::new(2, 2, 2, 2), 185 * 256 + 13))
        );
        assert_eq!(
            parse_pasv("=127,0,0,1,4,1"),
            Some((Ipv4Addr::new(127, 0, 0, 1), 1025))
        );
        assert_eq!(parse_pasv("Entering Passive Mode (2,2,2,2,185)"), None);
        assert_eq!(parse_pasv("(1,2,3,4,5,6,7)"), None);
        assert_eq!(
            parse_epsv("Entering Extended Passive Mode (!!!6446!)"),
            Some(6446)
        );
        assert_eq!(parse_epsv("(|||65536|)"), None);
        assert_eq!(parse_epsv("(|||6446)"), None);
        assert_eq!(parse_epsv("no parens"), None);
        assert_eq!(
            parse_eprt(b"|1|132.235.1.2|6275|"),
            Ok((v4("132.235.1.2"), 6275))
        );
        assert_eq!(
            parse_eprt(b"|1|132.235.1.2|6275|x|"),
            Err("ftp.eprt_malformed")
        );
        assert_eq!(parse_port(b" 10,0,0,1,0,20 "), Some((v4("10.0.0.1"), 20)));
        assert_eq!(parse_port(b"10,0,0,1,0,1000"), None);
        assert_eq!(
            parse_lprt(b"4,4,10,0,0,1,2,0,21"),
            Some((v4("10.0.0.1"), 21))
        );
        assert_eq!(parse_lpsv("(6,4,1,2,3,4,2,0,21)"), None);
    }

    proptest! {
        #[test]
        fn never_panics(chunks in proptest::collection::vec(
            (any::<bool>(), any::<bool>(), proptest::collection::vec(any::<u8>(), 0..300)), 0..20)) {
            let cfg = FtpConfig { max_line: 64, max_pending: 3, ..FtpConfig::default() };
            let mut c = FtpControl::new(cfg, v4("10.0.0.1"), v4("192.0.2.10"));
            let mut out = Vec::new();
            for (to_server, gap, data) in &chunks {
                let dir = if *to_server { C } else { S };
                c.feed(dir, data, *gap, &mut out);
                prop_assert!(c.pending() <= 3);
            }
            c.finish(&mut out);
        }

        #[test]
        fn chunking_does_not_change_events(split in 1usize..60) {
            let script = b"USER a\r\nPASV\r\nSTOR x.zip\r\nQUIT\r\n";
            let replies = b"331 pw\r\n230 ok\r\n227 (10,0,0,2,4,1)\r\n150 go\r\n226 ok\r\n221 bye\r\n";
            let whole = {
                let mut c = ctl();
                let mut out = Vec::new();
                c.feed(C, script, false, &mut out);
                c.feed(S, replies, false, &mut out);
                out
            };
            let mut c = ctl();
            let mut out = Vec::new();
            for part in script.chunks(split) {
                c.feed(C, part, false, &mut out);
            }
            for part in replies.chunks(split) {
                c.feed(S, part, false, &mut out);
            }
            prop_assert_eq!(whole, out);
        }

        #[test]
        fn port_parser_round_trips(a: u8, b: u8, cc: u8, d: u8, port in 1u16..=u16::MAX) {
            let arg = format!("{a},{b},{cc},{d},{},{}", port >> 8, port & 0xff);
            prop_assert_eq!(parse_port(arg.as_bytes()), Some((IpAddr::V4(Ipv4Addr::new(a, b, cc, d)), port)));
        }
    }
}
