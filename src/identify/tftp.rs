//! TFTP requests (RFC 1350, options RFC 2347–2349, 7440) in one UDP datagram.
//!
//! A request is opcode 1 (RRQ) or 2 (WRQ), a NUL-terminated file name of printable ASCII, a
//! mode from the RFC 1350 whitelist (netascii, octet, mail; any case), then option/value
//! pairs, each NUL-terminated, and nothing after the last NUL. An empty file name is
//! accepted (the corpus holds such probes) under its own signature name, because the opcode,
//! the whitelisted mode and the exact NUL layout already make it unmistakable. An OACK
//! (opcode 6) with at least one valid option pair is the server's first packet of a transfer
//! flow, so it is labelled `tftp-data` (a transfer flow), never a request on a wrong port.
//! DATA, ACK and ERROR alone prove nothing (DATA is arbitrary bytes after four).

use super::cursor::Cursor;
use super::{Miss, ProbeResult, Role, Signature, conclude, sig};
use crate::app_proto::AppProto;

/// Read request.
pub const SIG_RRQ: &str = "tftp-rrq";
/// Write request.
pub const SIG_WRQ: &str = "tftp-wrq";
/// Read request with an empty file name.
pub const SIG_RRQ_EMPTY: &str = "tftp-rrq-empty-name";
/// Write request with an empty file name.
pub const SIG_WRQ_EMPTY: &str = "tftp-wrq-empty-name";
/// Option acknowledgement.
pub const SIG_OACK: &str = "tftp-oack";

const RRQ: u16 = 1;
const WRQ: u16 = 2;
const OACK: u16 = 6;

/// Longest file name or option string accepted (a datagram is at most 512 bytes by RFC 1350
/// for requests in practice; the bound keeps the scan short).
const MAX_FIELD: usize = 512;
/// Most option pairs accepted.
const MAX_OPTIONS: usize = 16;

/// Probes one UDP datagram for a TFTP request or OACK. A datagram is complete, so this never
/// answers need-more.
pub fn probe(data: &[u8]) -> ProbeResult {
    conclude(scan(data), true)
}

/// A parsed request, for sessions and logging.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Request<'a> {
    /// True for WRQ (upload), false for RRQ (download).
    pub write: bool,
    /// File name as sent.
    pub filename: &'a [u8],
    /// Transfer mode as sent.
    pub mode: &'a [u8],
    /// The option/value pairs, NUL-separated, as sent (see [`options`]).
    pub options: &'a [u8],
}

/// Parses an RRQ/WRQ datagram; `None` unless it is a valid request.
pub fn parse_request(data: &[u8]) -> Option<Request<'_>> {
    let mut c = Cursor::new(data);
    let op = c.u16_be().ok()?;
    if op != RRQ && op != WRQ {
        return None;
    }
    let filename = field(&mut c).ok()?;
    let mode = field(&mut c).ok()?;
    if ![&b"netascii"[..], b"octet", b"mail"]
        .iter()
        .any(|m| mode.eq_ignore_ascii_case(m))
    {
        return None;
    }
    let options = c.rest();
    option_pairs(&mut c, 0).ok()?;
    Some(Request {
        write: op == WRQ,
        filename,
        mode,
        options,
    })
}

/// Iterates option/value pairs of a request or OACK tail (as returned in
/// [`Request::options`]); stops at the first malformed pair.
pub fn options(tail: &[u8]) -> impl Iterator<Item = (&[u8], &[u8])> {
    let mut c = Cursor::new(tail);
    std::iter::from_fn(move || {
        let name = field(&mut c).ok()?;
        let value = field(&mut c).ok()?;
        Some((name, value))
    })
    .take(MAX_OPTIONS)
}

fn scan(data: &[u8]) -> Result<Signature, Miss> {
    let mut c = Cursor::new(data);
    match c.u16_be()? {
        OACK => {
            option_pairs(&mut c, 1)?;
            Ok(sig(AppProto::TftpData, SIG_OACK, 0, Role::Server, false))
        }
        op @ (RRQ | WRQ) => {
            let req = parse_request(data).ok_or(Miss::NoMatch)?;
            let name = match (op == WRQ, req.filename.is_empty()) {
                (false, false) => SIG_RRQ,
                (true, false) => SIG_WRQ,
                (false, true) => SIG_RRQ_EMPTY,
                (true, true) => SIG_WRQ_EMPTY,
            };
            Ok(sig(AppProto::Tftp, name, 0, Role::Client, false))
        }
        _ => Err(Miss::NoMatch),
    }
}

/// One NUL-terminated printable field.
fn field<'a>(c: &mut Cursor<'a>) -> Result<&'a [u8], Miss> {
    let f = c.until(0).map_err(|_| Miss::NoMatch)?;
    if f.len() > MAX_FIELD || !f.iter().all(|b| (0x20..0x7f).contains(b)) {
        return Err(Miss::NoMatch);
    }
    Ok(f)
}

/// Option/value pairs to the end of the datagram: names non-empty, at least `min` pairs.
fn option_pairs(c: &mut Cursor<'_>, min: usize) -> Result<(), Miss> {
    let mut n = 0;
    while c.any_left() {
        if n == MAX_OPTIONS {
            return Err(Miss::NoMatch);
        }
        let name = field(c)?;
        field(c)?;
        if name.is_empty() {
            return Err(Miss::NoMatch);
        }
        n += 1;
    }
    if n >= min { Ok(()) } else { Err(Miss::NoMatch) }
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
    fn requests_match() {
        assert_eq!(
            name(probe(b"\x00\x01rfc1350.txt\x00octet\x00")),
            Some(SIG_RRQ)
        );
        assert_eq!(
            name(probe(b"\x00\x02zz.bin\x00NetASCII\x00")),
            Some(SIG_WRQ)
        );
        let with_opts = b"\x00\x01hello.txt\x00octet\x00blksize\x00256\x00tsize\x000\x00";
        assert_eq!(name(probe(with_opts)), Some(SIG_RRQ));
        let req = parse_request(with_opts).unwrap();
        let opts: Vec<_> = options(req.options).collect();
        assert_eq!(
            opts,
            vec![(&b"blksize"[..], &b"256"[..]), (&b"tsize"[..], &b"0"[..])]
        );
        assert_eq!(name(probe(b"\x00\x01\x00octet\x00")), Some(SIG_RRQ_EMPTY));
    }

    #[test]
    fn oack_is_a_transfer_flow() {
        let ProbeResult::Match(s) = probe(b"\x00\x06blksize\x00256\x00") else {
            panic!()
        };
        assert_eq!(
            (s.proto, s.name, s.role),
            (AppProto::TftpData, SIG_OACK, Role::Server)
        );
        assert_eq!(probe(b"\x00\x06"), ProbeResult::NoMatch);
    }

    #[test]
    fn truncated_request_is_no_match() {
        // A datagram is complete: a missing NUL is malformed, not "more to come".
        assert_eq!(probe(b"\x00\x01rfc1350.txt\x00oct"), ProbeResult::NoMatch);
        assert_eq!(probe(b"\x00"), ProbeResult::NoMatch);
        assert_eq!(probe(b"\x00\x0100"), ProbeResult::NoMatch);
    }

    #[test]
    fn near_misses() {
        // Bad mode, empty mode (NUL padding), odd option count, trailing junk, bad name.
        assert_eq!(probe(b"\x00\x01file\x00binary\x00"), ProbeResult::NoMatch);
        assert_eq!(
            probe(b"\x00\x01\x00\x00\x00\x00octet\x00"),
            ProbeResult::NoMatch
        );
        assert_eq!(
            probe(b"\x00\x01f\x00octet\x00blksize\x00"),
            ProbeResult::NoMatch
        );
        assert_eq!(probe(b"\x00\x01f\x00octet\x00junk"), ProbeResult::NoMatch);
        assert_eq!(probe(b"\x00\x01f\x01le\x00octet\x00"), ProbeResult::NoMatch);
    }

    #[test]
    fn data_ack_error_alone_are_not_tftp() {
        assert_eq!(probe(b"\x00\x03\x00\x01hello"), ProbeResult::NoMatch);
        assert_eq!(probe(b"\x00\x04\x00\x01"), ProbeResult::NoMatch);
        assert_eq!(
            probe(b"\x00\x05\x00\x01File not found\x00"),
            ProbeResult::NoMatch
        );
    }

    #[test]
    fn garbage() {
        assert_eq!(probe(b"\xde\xad\xbe\xef"), ProbeResult::NoMatch);
        assert_eq!(probe(b""), ProbeResult::NoMatch);
    }
}
