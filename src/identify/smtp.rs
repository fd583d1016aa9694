//! SMTP and LMTP (RFC 5321, 2033): named so that FTP is never claimed for a mail server.
//!
//! Server side: a `220` greeting carrying SMTP markers (see [`super::ftp`] for the shared
//! banner rule). Client side: an `EHLO`/`HELO`/`LHLO` line, or `MAIL FROM:`.
//! LMTP is labelled `smtp` (no separate EVE label exists). POP3 (`+OK`) and IMAP (`* OK`)
//! need no recogniser here: no FTP evidence accepts them, so they end as `unknown`.

use super::cursor::{Cursor, prefix_state};
use super::ftp::{Banner, banner};
use super::{Miss, ProbeResult, Role, Signature, conclude, sig};
use crate::app_proto::AppProto;

/// Greeting with SMTP/LMTP markers.
pub const SIG_BANNER: &str = "smtp-banner-220";
/// Client greeting command.
pub const SIG_HELO: &str = "smtp-helo";
/// Client `MAIL FROM:` (a session picked up after the greeting).
pub const SIG_MAIL_FROM: &str = "smtp-mail-from";

const MAX_LINE: usize = 1024;

/// Probes one direction's first bytes for SMTP.
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
        Some(b'2') => match banner(data, at_end)? {
            Banner::Smtp => Ok(sig(AppProto::Smtp, SIG_BANNER, 0, Role::Server, false)),
            Banner::Ftp | Banner::Generic => Err(Miss::NoMatch),
        },
        Some(_) => client(data, at_end),
    }
}

fn client(data: &[u8], at_end: bool) -> Result<Signature, Miss> {
    let mut pending = false;
    for (prefix, name) in [
        (&b"EHLO"[..], SIG_HELO),
        (b"HELO", SIG_HELO),
        (b"LHLO", SIG_HELO),
        (b"MAIL FROM:", SIG_MAIL_FROM),
    ] {
        match prefix_state(data, prefix) {
            Ok(true) => return client_line(data, name, at_end),
            Ok(false) => {}
            Err(_) => pending = true,
        }
    }
    if pending {
        Err(Miss::NeedMore)
    } else {
        Err(Miss::NoMatch)
    }
}

fn client_line(data: &[u8], name: &'static str, at_end: bool) -> Result<Signature, Miss> {
    let mut c = Cursor::new(data);
    let line = match c.line() {
        Ok(l) => l,
        Err(_) if at_end => c.rest(),
        Err(_) if c.remaining() <= MAX_LINE && visible_text(c.rest()) => {
            return Err(Miss::NeedMore);
        }
        Err(_) => return Err(Miss::NoMatch),
    };
    // The greeting verb must end the word; RFC 5321 wants a domain after it, but lax
    // clients send a bare "EHLO", which is no less SMTP.
    let after_verb = line.get(4).copied();
    let word_ends = name == SIG_MAIL_FROM || matches!(after_verb, None | Some(b' '));
    if !word_ends
        || line.len() > MAX_LINE
        || !visible_text(line)
        || super::http::ends_like_request_line(line)
    {
        return Err(Miss::NoMatch);
    }
    Ok(sig(AppProto::Smtp, name, 0, Role::Client, false))
}

fn visible_text(s: &[u8]) -> bool {
    s.iter().all(|&b| b == b'\t' || (0x20..0x7f).contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_banner_and_client() {
        let ProbeResult::Match(s) = probe(b"220 mx.example.com ESMTP Postfix\r\n") else {
            panic!("banner")
        };
        assert_eq!(
            (s.proto, s.name, s.role),
            (AppProto::Smtp, SIG_BANNER, Role::Server)
        );
        let ProbeResult::Match(s) = probe(b"EHLO client.example.org\r\n") else {
            panic!("ehlo")
        };
        assert_eq!((s.name, s.role), (SIG_HELO, Role::Client));
        assert!(matches!(
            probe(b"MAIL FROM:<a@example.org>\r\n"),
            ProbeResult::Match(_)
        ));
        assert!(matches!(
            probe(b"LHLO lmtp.example\r\n"),
            ProbeResult::Match(_)
        ));
    }

    #[test]
    fn truncated() {
        assert_eq!(probe(b"EH"), ProbeResult::NeedMore);
        assert_eq!(probe(b"EHLO client.exa"), ProbeResult::NeedMore);
        assert_eq!(probe(b"220 mx.example.com ES"), ProbeResult::NeedMore);
    }

    #[test]
    fn near_misses() {
        // An FTP banner, an FTP command, a bare EHLO.
        assert_eq!(probe(b"220 (vsFTPd 3.0.3)\r\n"), ProbeResult::NoMatch);
        assert_eq!(probe(b"220 Welcome\r\n"), ProbeResult::NoMatch);
        assert_eq!(probe(b"USER bob\r\n"), ProbeResult::NoMatch);
        assert_eq!(probe(b"EHLOX a\r\n"), ProbeResult::NoMatch);
        assert_eq!(probe(b"HELOS\r\n"), ProbeResult::NoMatch);
    }

    #[test]
    fn garbage() {
        assert_eq!(probe(b"\xff\xfe\x00\x01"), ProbeResult::NoMatch);
        assert_eq!(probe(b"+OK ready\r\n"), ProbeResult::NoMatch);
        assert_eq!(probe_final(b"EH"), ProbeResult::NoMatch);
    }
}
