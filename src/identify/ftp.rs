//! FTP control channel (RFC 959, 2228, 2389, 2428, 4217): the server's `220` banner, client
//! command lines and 3-digit replies.
//!
//! A `220` greeting alone is shared with SMTP/LMTP, so the banner text decides:
//! * SMTP markers (the words `ESMTP`, `SMTP`, `LMTP`, `Postfix`, `Sendmail`, `Exim`, `qmail`)
//!   → not FTP (the SMTP probe claims it);
//! * otherwise FTP markers (`ftp` anywhere, `FileZilla`, `Serv-U`) → [`SIG_BANNER`];
//! * otherwise [`SIG_BANNER_GENERIC`]: FTP when the client answers with FTP commands, SMTP
//!   when it says EHLO/HELO, tentative FTP when it stays silent or unidentified.
//!
//! Client commands prove nothing alone (a data channel can carry `STOR …` text, POP3 shares
//! USER/PASS/RETR/LIST), so they need a 3-digit reply from the peer. Verbs that SMTP or NNTP
//! also use (QUIT, HELP, NOOP, STAT, LIST, MODE, AUTH other than TLS/SSL) only ever give a
//! tentative label. A flow with only a client `QUIT` and a silent server is tentative FTP:
//! labelled `ftp` but never the basis of a mismatch verdict.

use super::cursor::{Cursor, contains_ignore_case, starts_with_ignore_case};
use super::{Miss, ProbeResult, Role, Signature, conclude, sig};
use crate::app_proto::AppProto;

/// `220` banner with FTP product markers.
pub const SIG_BANNER: &str = "ftp-banner-220";
/// `220` banner with neither FTP nor SMTP markers.
pub const SIG_BANNER_GENERIC: &str = "ftp-banner-220-generic";
/// Client command line with at least one FTP-only verb.
pub const SIG_COMMAND: &str = "ftp-command";
/// Client command lines whose verbs are all shared with SMTP/NNTP.
pub const SIG_COMMAND_SHARED: &str = "ftp-command-shared";
/// A 3-digit reply line other than a 220 greeting (midstream server side).
pub const SIG_REPLY: &str = "ftp-reply";

/// Longest line considered (RFC 959 has no limit; real commands and banners are far shorter).
const MAX_LINE: usize = 2048;
/// Most banner / command lines examined.
const MAX_LINES: usize = 32;

/// Every FTP command verb from RFC 959 and its extensions (upper case).
const VERBS: &[&[u8]] = &[
    b"ABOR", b"ACCT", b"ADAT", b"ALLO", b"APPE", b"AUTH", b"AVBL", b"CCC", b"CDUP", b"CLNT",
    b"CONF", b"CSID", b"CWD", b"DELE", b"DSIZ", b"ENC", b"EPRT", b"EPSV", b"FEAT", b"HELP",
    b"HOST", b"LANG", b"LIST", b"LPRT", b"LPSV", b"MDTM", b"MFCT", b"MFF", b"MFMT", b"MIC", b"MKD",
    b"MLSD", b"MLST", b"MODE", b"NLST", b"NOOP", b"OPTS", b"PASS", b"PASV", b"PBSZ", b"PORT",
    b"PROT", b"PWD", b"QUIT", b"REIN", b"REST", b"RETR", b"RMD", b"RMDA", b"RNFR", b"RNTO",
    b"SITE", b"SIZE", b"SMNT", b"SPSV", b"STAT", b"STOR", b"STOU", b"STRU", b"SYST", b"THMB",
    b"TYPE", b"USER", b"XCUP", b"XCWD", b"XMKD", b"XPWD", b"XRMD",
];

/// Verbs SMTP or NNTP (which also answer with 3-digit codes) use too.
const SHARED_VERBS: &[&[u8]] = &[
    b"QUIT", b"HELP", b"NOOP", b"STAT", b"LIST", b"MODE", b"AUTH",
];

/// `AUTH` mechanisms that only FTP (RFC 2228/4217) asks for.
const AUTH_TLS_ARGS: &[&[u8]] = &[b"TLS", b"SSL", b"TLS-C", b"TLS-P"];

/// Probes one direction's first bytes for FTP control traffic.
pub fn probe(data: &[u8]) -> ProbeResult {
    conclude(scan(data, false), false)
}

/// Like [`probe`], treating `data` as all there is.
pub fn probe_final(data: &[u8]) -> ProbeResult {
    conclude(scan(data, true), true)
}

fn scan(data: &[u8], at_end: bool) -> Result<Signature, Miss> {
    match data.first() {
        None => Err(Miss::NeedMore),
        Some(b) if b.is_ascii_digit() => scan_reply(data, at_end),
        Some(b) if b.is_ascii_alphabetic() => scan_commands(data, at_end),
        Some(_) => Err(Miss::NoMatch),
    }
}

/// What a 220 greeting says about the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Banner {
    Ftp,
    Smtp,
    Generic,
}

/// Reads a `220` greeting (single or multi-line) and classifies it by its markers.
pub(crate) fn banner(data: &[u8], at_end: bool) -> Result<Banner, Miss> {
    let code = reply_prefix(data)?;
    if code != 220 {
        return Err(Miss::NoMatch);
    }
    let mut c = Cursor::new(data);
    let (mut ftp, mut smtp) = (false, false);
    let mut multi = false;
    for n in 0..MAX_LINES {
        let line = match c.line() {
            Ok(l) => l,
            Err(_) => {
                let partial = c.rest();
                if partial.len() > MAX_LINE || !printable(partial) {
                    return Err(Miss::NoMatch);
                }
                if !at_end {
                    return Err(Miss::NeedMore);
                }
                // Budget spent mid-line: judge by the text there is.
                mark(partial, &mut ftp, &mut smtp);
                break;
            }
        };
        if line.len() > MAX_LINE || !printable(line) {
            return Err(Miss::NoMatch);
        }
        mark(line, &mut ftp, &mut smtp);
        if n == 0 {
            multi = line.get(3) == Some(&b'-');
        }
        // RFC 959 §4.2: a multi-line reply ends with a line of the same code and a space.
        if !multi || line.starts_with(b"220 ") || line == b"220" {
            break;
        }
    }
    Ok(if smtp {
        Banner::Smtp
    } else if ftp {
        Banner::Ftp
    } else {
        Banner::Generic
    })
}

fn mark(line: &[u8], ftp: &mut bool, smtp: &mut bool) {
    const SMTP_WORDS: &[&[u8]] = &[
        b"esmtp",
        b"smtp",
        b"lmtp",
        b"postfix",
        b"sendmail",
        b"exim",
        b"qmail",
    ];
    if line
        .split(|b| !b.is_ascii_alphanumeric())
        .any(|w| SMTP_WORDS.iter().any(|m| w.eq_ignore_ascii_case(m)))
    {
        *smtp = true;
    }
    if [&b"ftp"[..], b"filezilla", b"serv-u"]
        .iter()
        .any(|m| contains_ignore_case(line, m))
    {
        *ftp = true;
    }
}

/// Parses `NNN` followed by space, hyphen or line end; returns the code.
fn reply_prefix(data: &[u8]) -> Result<u16, Miss> {
    let mut c = Cursor::new(data);
    let mut code = 0u16;
    for i in 0..3 {
        let b = c.u8()?;
        // RFC 959 §4.2: first digit 1-5, second 0-5.
        let ok = match i {
            0 => (b'1'..=b'5').contains(&b),
            1 => (b'0'..=b'5').contains(&b),
            _ => b.is_ascii_digit(),
        };
        if !ok {
            return Err(Miss::NoMatch);
        }
        code = code * 10 + u16::from(b - b'0');
    }
    match c.u8()? {
        b' ' | b'-' | b'\r' | b'\n' => Ok(code),
        _ => Err(Miss::NoMatch),
    }
}

fn scan_reply(data: &[u8], at_end: bool) -> Result<Signature, Miss> {
    let code = reply_prefix(data)?;
    if code == 220 {
        return match banner(data, at_end)? {
            Banner::Ftp => Ok(sig(AppProto::Ftp, SIG_BANNER, 0, Role::Server, false)),
            Banner::Generic => Ok(sig(
                AppProto::Ftp,
                SIG_BANNER_GENERIC,
                0,
                Role::Server,
                true,
            )),
            Banner::Smtp => Err(Miss::NoMatch),
        };
    }
    let mut c = Cursor::new(data);
    match c.line() {
        Ok(line) if line.len() <= MAX_LINE && printable(line) => {
            Ok(sig(AppProto::Ftp, SIG_REPLY, 0, Role::Server, true))
        }
        Ok(_) => Err(Miss::NoMatch),
        Err(_) if c.remaining() > MAX_LINE || !printable(c.rest()) => Err(Miss::NoMatch),
        Err(_) if at_end => Ok(sig(AppProto::Ftp, SIG_REPLY, 0, Role::Server, true)),
        Err(_) => Err(Miss::NeedMore),
    }
}

/// How one client line reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cmd {
    Distinct,
    Shared,
}

/// Classifies one complete command line; `Err(NoMatch)` if it is not an FTP command.
fn command_line(line: &[u8]) -> Result<Cmd, Miss> {
    if line.len() > MAX_LINE || !printable(line) {
        return Err(Miss::NoMatch);
    }
    let verb_len = line.iter().position(|&b| b == b' ').unwrap_or(line.len());
    let (verb, rest) = line.split_at_checked(verb_len).ok_or(Miss::NoMatch)?;
    if !VERBS.iter().any(|v| verb.eq_ignore_ascii_case(v)) {
        return Err(Miss::NoMatch);
    }
    let arg = rest.strip_prefix(b" ").unwrap_or(rest);
    // `USER / HTTP/1.1` is an HTTP request with an odd method, not FTP.
    if super::http::ends_like_request_line(line) {
        return Err(Miss::NoMatch);
    }
    let shared = SHARED_VERBS.iter().any(|v| verb.eq_ignore_ascii_case(v));
    if verb.eq_ignore_ascii_case(b"AUTH") {
        return Ok(
            if AUTH_TLS_ARGS
                .iter()
                .any(|a| arg.trim_ascii().eq_ignore_ascii_case(a))
            {
                Cmd::Distinct
            } else {
                Cmd::Shared
            },
        );
    }
    Ok(if shared { Cmd::Shared } else { Cmd::Distinct })
}

fn scan_commands(data: &[u8], at_end: bool) -> Result<Signature, Miss> {
    // Fail fast on the verb, before the line is complete.
    let verb_len = data
        .iter()
        .take(5)
        .take_while(|b| b.is_ascii_alphabetic())
        .count();
    let verb = data.get(..verb_len).unwrap_or_default();
    match data.get(verb_len) {
        None if verb_len < 5 => {
            if !VERBS.iter().any(|v| starts_with_ignore_case(v, verb)) {
                return Err(Miss::NoMatch);
            }
        }
        Some(b' ' | b'\r' | b'\n') if VERBS.iter().any(|v| verb.eq_ignore_ascii_case(v)) => {}
        _ => return Err(Miss::NoMatch),
    }
    // Every complete line must be a command and the tail must be text: a data channel that
    // happens to start with "STOR …" then carries file bytes is not a control channel.
    let mut c = Cursor::new(data);
    let (mut distinct, mut shared) = (false, false);
    for _ in 0..MAX_LINES {
        let line = match c.line() {
            Ok(l) => l,
            Err(_) => break,
        };
        match command_line(line)? {
            Cmd::Distinct => distinct = true,
            Cmd::Shared => shared = true,
        }
    }
    let partial = c.rest();
    if partial.len() > MAX_LINE || !printable(partial) {
        return Err(Miss::NoMatch);
    }
    if !distinct && !shared && at_end && !partial.is_empty() {
        // A lone unterminated line still counts at the end if it is a command.
        match command_line(partial)? {
            Cmd::Distinct => distinct = true,
            Cmd::Shared => shared = true,
        }
    }
    if distinct {
        Ok(command_sig(SIG_COMMAND))
    } else if shared && (at_end || c.pos() >= MAX_LINE) {
        Ok(command_sig(SIG_COMMAND_SHARED))
    } else if at_end {
        Err(Miss::NoMatch)
    } else {
        // Only shared verbs (or no whole line) so far: an FTP-only verb would be firmer.
        Err(Miss::NeedMore)
    }
}

const fn command_sig(name: &'static str) -> Signature {
    sig(AppProto::Ftp, name, 0, Role::Client, true)
}

/// Text a control line may hold: printable ASCII, tab, and bytes ≥ 0x80 (UTF-8 paths).
fn printable(s: &[u8]) -> bool {
    s.iter()
        .all(|&b| b == b'\t' || (0x20..0x7f).contains(&b) || b >= 0x80)
}

/// The reply code at the start of a control chunk (`234` accepts `AUTH TLS`).
pub fn reply_code(chunk: &[u8]) -> Option<u16> {
    reply_prefix(chunk).ok()
}

/// True if a control chunk holds an `AUTH TLS|SSL|TLS-C|TLS-P` command line.
pub fn has_auth_tls_line(chunk: &[u8]) -> bool {
    chunk.split(|&b| b == b'\n').take(MAX_LINES).any(|line| {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        starts_with_ignore_case(line, b"AUTH ")
            && line.get(5..).is_some_and(|a| {
                AUTH_TLS_ARGS
                    .iter()
                    .any(|m| a.trim_ascii().eq_ignore_ascii_case(m))
            })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(r: ProbeResult) -> Option<&'static str> {
        match r {
            ProbeResult::Match(s) => Some(s.name),
            _ => None,
        }
    }

    #[test]
    fn banners_with_ftp_markers_match() {
        for b in [
            &b"220 (vsFTPd 3.0.3)\r\n"[..],
            b"220 ProFTPD 1.3.0a Server (ProFTPD Anonymous Server) [192.0.2.1]\r\n",
            b"220 ftp.example.org FTP server (NetBSD-ftpd 20100320) ready.\r\n",
            b"220-FileZilla Server 1.8.0\r\n220 Please visit https://filezilla-project.org/\r\n",
            b"220---------- Welcome to Pure-FTPd [privsep] [TLS] ----------\r\n220-You are user 1\r\n220 Bye\r\n",
        ] {
            let r = probe(b);
            assert_eq!(name(r), Some(SIG_BANNER), "{}", String::from_utf8_lossy(b));
            let ProbeResult::Match(s) = r else { unreachable!() };
            assert_eq!((s.proto, s.role, s.offset, s.needs_peer), (AppProto::Ftp, Role::Server, 0, false));
        }
    }

    #[test]
    fn generic_banner_needs_the_client() {
        let r = probe(b"220 Welcome to mirrors.example.edu.\r\n");
        assert_eq!(name(r), Some(SIG_BANNER_GENERIC));
        let ProbeResult::Match(s) = r else {
            unreachable!()
        };
        assert!(s.needs_peer);
    }

    #[test]
    fn smtp_banner_is_not_ftp() {
        assert_eq!(
            probe(b"220 mx.example.com ESMTP Postfix (Debian/GNU)\r\n"),
            ProbeResult::NoMatch
        );
        assert_eq!(
            probe(b"220-mail.example.com ESMTP\r\n220 ready\r\n"),
            ProbeResult::NoMatch
        );
        assert_eq!(
            probe(b"220 lmtp.example.com LMTP ready\r\n"),
            ProbeResult::NoMatch
        );
    }

    #[test]
    fn pop3_and_imap_greetings_are_not_ftp() {
        assert_eq!(probe(b"+OK POP3 server ready\r\n"), ProbeResult::NoMatch);
        assert_eq!(probe(b"* OK IMAP4rev1 ready\r\n"), ProbeResult::NoMatch);
    }

    #[test]
    fn truncated_banner_needs_more_and_final_decides() {
        assert_eq!(probe(b"22"), ProbeResult::NeedMore);
        assert_eq!(probe(b"220 (vsFT"), ProbeResult::NeedMore);
        assert_eq!(name(probe_final(b"220 (vsFTPd 3")), Some(SIG_BANNER));
        assert_eq!(name(probe_final(b"220 (vsF")), Some(SIG_BANNER_GENERIC));
        // A multi-line banner waits for its last line.
        assert_eq!(probe(b"220-Welcome\r\n220-more\r\n"), ProbeResult::NeedMore);
        assert_eq!(
            name(probe(b"220-Welcome\r\n220-more\r\n220 FTP ready\r\n")),
            Some(SIG_BANNER)
        );
    }

    #[test]
    fn commands_need_a_peer() {
        let r = probe(b"USER anonymous\r\n");
        assert_eq!(name(r), Some(SIG_COMMAND));
        let ProbeResult::Match(s) = r else {
            unreachable!()
        };
        assert_eq!((s.role, s.needs_peer), (Role::Client, true));
        assert_eq!(name(probe(b"AUTH TLS\r\n")), Some(SIG_COMMAND));
        assert_eq!(name(probe(b"feat\r\n")), Some(SIG_COMMAND));
        assert_eq!(name(probe(b"QUIT\r\nUSER bob\r\n")), Some(SIG_COMMAND));
    }

    #[test]
    fn shared_verbs_wait_then_stay_shared() {
        assert_eq!(probe(b"QUIT\r\n"), ProbeResult::NeedMore);
        assert_eq!(name(probe_final(b"QUIT\r\n")), Some(SIG_COMMAND_SHARED));
        assert_eq!(
            name(probe_final(b"AUTH LOGIN\r\n")),
            Some(SIG_COMMAND_SHARED)
        );
    }

    #[test]
    fn truncated_command_needs_more() {
        assert_eq!(probe(b"US"), ProbeResult::NeedMore);
        assert_eq!(probe(b"USER anon"), ProbeResult::NeedMore);
        assert_eq!(name(probe_final(b"USER anon")), Some(SIG_COMMAND));
    }

    #[test]
    fn near_misses() {
        // SMTP client verbs, HTTP with an FTP-looking method, unknown verbs, data text.
        assert_eq!(probe(b"EHLO client.example\r\n"), ProbeResult::NoMatch);
        assert_eq!(
            probe(b"USER / HTTP/1.1\r\nHost: x\r\n\r\n"),
            ProbeResult::NoMatch
        );
        assert_eq!(probe(b"USERS bob\r\n"), ProbeResult::NoMatch);
        assert_eq!(probe(b"GET / HTTP/1.1\r\n"), ProbeResult::NoMatch);
        assert_eq!(
            probe(b"STOR payload for FTP data-command sequence.\nuid=0(root)\0\x01"),
            ProbeResult::NoMatch
        );
        assert_eq!(probe(b"699 odd\r\n"), ProbeResult::NoMatch);
        assert_eq!(probe(b"2200 x\r\n"), ProbeResult::NoMatch);
    }

    #[test]
    fn replies() {
        assert_eq!(name(probe(b"226 Transfer complete.\r\n")), Some(SIG_REPLY));
        assert_eq!(probe(b"226 Transfer"), ProbeResult::NeedMore);
        assert_eq!(reply_code(b"234 AUTH TLS OK.\r\n"), Some(234));
        assert_eq!(reply_code(b"SSH-2.0-x"), None);
    }

    #[test]
    fn auth_tls_lines() {
        assert!(has_auth_tls_line(b"AUTH TLS\r\n"));
        assert!(has_auth_tls_line(b"FEAT\r\nauth ssl\r\n"));
        assert!(!has_auth_tls_line(b"AUTH LOGIN\r\n"));
        assert!(!has_auth_tls_line(b"USER AUTH TLS\r\n"));
    }

    #[test]
    fn garbage() {
        assert_eq!(probe(b"\x16\x03\x01\x02\x00\x01"), ProbeResult::NoMatch);
        assert_eq!(probe(b"\x00\x00\x00\x2f\xfeSMB"), ProbeResult::NoMatch);
        assert_eq!(probe(b"220 \x00\x01binary\r\n"), ProbeResult::NoMatch);
        assert_eq!(probe_final(b""), ProbeResult::NoMatch);
    }
}
