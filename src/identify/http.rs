//! HTTP/1.x (RFC 9112) and the cleartext HTTP/2 prior-knowledge preface (RFC 9113 §3.4).
//!
//! A request is `token SP target SP HTTP/d.d` ending in CRLF (or LF): any well-formed method
//! token counts, not only the registered ones, so that an odd method is still named HTTP
//! rather than `unknown`. A response starts `HTTP/d.d NNN`. The request line must be whole;
//! a line longer than [`MAX_REQUEST_LINE`] is not taken as HTTP.

use super::cursor::{Cursor, Short, prefix_state};
use super::{Miss, ProbeResult, Role, Signature, conclude, sig};
use crate::app_proto::AppProto;

/// HTTP/1.x request line.
pub const SIG_REQUEST: &str = "http-request";
/// HTTP/1.x status line.
pub const SIG_RESPONSE: &str = "http-response";
/// HTTP/2 connection preface.
pub const SIG_H2_PREFACE: &str = "http2-preface";

/// Longest request line looked at.
pub const MAX_REQUEST_LINE: usize = 4096;
const MAX_METHOD: usize = 32;
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Probes one direction's first bytes for HTTP.
pub fn probe(data: &[u8]) -> ProbeResult {
    conclude(scan(data), false)
}

/// Like [`probe`], treating `data` as all there is.
pub fn probe_final(data: &[u8]) -> ProbeResult {
    conclude(scan(data), true)
}

fn scan(data: &[u8]) -> Result<Signature, Miss> {
    match prefix_state(data, H2_PREFACE) {
        Ok(true) => return Ok(sig(AppProto::Http, SIG_H2_PREFACE, 0, Role::Client, false)),
        // "PRI * HTTP/2.0" is also a valid-looking request line: wait for the whole preface.
        Err(Short) if data.len() >= 3 => return Err(Miss::NeedMore),
        _ => {}
    }
    if data.starts_with(b"HTTP/") || b"HTTP/".starts_with(data) {
        return response(data);
    }
    request(data)
}

/// True if a text line ends like an HTTP/1.x request line (` HTTP/1.d`). Other text
/// probes reject such lines so that every probe stays exclusive of HTTP.
pub(crate) fn ends_like_request_line(line: &[u8]) -> bool {
    line.len()
        .checked_sub(9)
        .and_then(|at| line.get(at..))
        .is_some_and(|t| {
            t.get(..8)
                .is_some_and(|p| p.eq_ignore_ascii_case(b" HTTP/1."))
        })
}

fn version(c: &mut Cursor<'_>) -> Result<(), Miss> {
    if c.take(5)? != b"HTTP/" {
        return Err(Miss::NoMatch);
    }
    // HTTP/1.x only: HTTP/2 has no text request line beyond the preface.
    let [major, dot, minor] = c.array::<3>()?;
    if major == b'1' && dot == b'.' && minor.is_ascii_digit() {
        Ok(())
    } else {
        Err(Miss::NoMatch)
    }
}

fn response(data: &[u8]) -> Result<Signature, Miss> {
    let mut c = Cursor::new(data);
    version(&mut c)?;
    if c.u8()? != b' ' {
        return Err(Miss::NoMatch);
    }
    let code = c.array::<3>()?;
    if !code.iter().all(u8::is_ascii_digit) || !(b'1'..=b'5').contains(&code[0]) {
        return Err(Miss::NoMatch);
    }
    match c.u8()? {
        b' ' | b'\r' | b'\n' => Ok(sig(AppProto::Http, SIG_RESPONSE, 0, Role::Server, false)),
        _ => Err(Miss::NoMatch),
    }
}

/// RFC 9110 `tchar`.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn request(data: &[u8]) -> Result<Signature, Miss> {
    let mut c = Cursor::new(data);
    let method_len = data
        .iter()
        .take(MAX_METHOD + 1)
        .take_while(|&&b| is_tchar(b))
        .count();
    if method_len == 0 || method_len > MAX_METHOD {
        return Err(Miss::NoMatch);
    }
    c.skip(method_len)?;
    if c.u8()? != b' ' {
        return Err(Miss::NoMatch);
    }
    let rest = c.rest();
    let target_len = rest
        .iter()
        .take_while(|&&b| (0x21..0x7f).contains(&b))
        .count();
    if target_len == rest.len() {
        // The target may still be arriving.
        return if c.pos() + target_len > MAX_REQUEST_LINE {
            Err(Miss::NoMatch)
        } else {
            Err(Miss::NeedMore)
        };
    }
    if target_len == 0 {
        return Err(Miss::NoMatch);
    }
    c.skip(target_len)?;
    if c.u8()? != b' ' {
        return Err(Miss::NoMatch);
    }
    // Whatever has arrived of the version must read "HTTP/1." so far.
    let seen = c.rest().len().min(7);
    if c.rest().get(..seen) != b"HTTP/1.".get(..seen) {
        return Err(Miss::NoMatch);
    }
    version(&mut c)?;
    match c.u8()? {
        b'\n' => {}
        b'\r' => {
            if c.u8()? != b'\n' {
                return Err(Miss::NoMatch);
            }
        }
        _ => return Err(Miss::NoMatch),
    }
    Ok(sig(AppProto::Http, SIG_REQUEST, 0, Role::Client, false))
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
    fn requests_and_responses() {
        assert_eq!(
            name(probe(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")),
            Some(SIG_REQUEST)
        );
        assert_eq!(name(probe(b"M-SEARCH * HTTP/1.1\r\n")), Some(SIG_REQUEST));
        assert_eq!(name(probe(b"BREW /pot HTTP/1.0\n")), Some(SIG_REQUEST));
        let ProbeResult::Match(s) = probe(b"HTTP/1.1 200 OK\r\n") else {
            panic!()
        };
        assert_eq!((s.name, s.role), (SIG_RESPONSE, Role::Server));
        assert_eq!(name(probe(b"HTTP/1.0 404\r\n")), Some(SIG_RESPONSE));
        assert_eq!(name(probe(H2_PREFACE)), Some(SIG_H2_PREFACE));
    }

    #[test]
    fn truncated() {
        assert_eq!(probe(b"GE"), ProbeResult::NeedMore);
        assert_eq!(probe(b"GET /index.ht"), ProbeResult::NeedMore);
        assert_eq!(probe(b"GET / HTTP/1."), ProbeResult::NeedMore);
        assert_eq!(probe(b"HTT"), ProbeResult::NeedMore);
        assert_eq!(probe(b"PRI * HTTP/2.0\r\n"), ProbeResult::NeedMore);
        assert_eq!(probe_final(b"GET / HTTP/1."), ProbeResult::NoMatch);
    }

    #[test]
    fn near_misses() {
        // Bad version, FTP/SMTP lines, SSH banner, status out of range.
        assert_eq!(probe(b"GET / HTTP/x.1\r\n"), ProbeResult::NoMatch);
        assert_eq!(probe(b"GET / FTP/1.1\r\n"), ProbeResult::NoMatch);
        assert_eq!(probe(b"GET / HTTP/2.0\r\n"), ProbeResult::NoMatch);
        assert!(ends_like_request_line(b"USER / HTTP/1.1"));
        assert!(!ends_like_request_line(b"USER bob"));
        assert_eq!(probe(b"USER anonymous\r\n"), ProbeResult::NoMatch);
        assert_eq!(probe(b"EHLO a b\r\n"), ProbeResult::NoMatch);
        assert_eq!(
            probe(b"220 ProFTPD 1.3.0a Server\r\n"),
            ProbeResult::NoMatch
        );
        assert_eq!(probe(b"SSH-2.0-OpenSSH_9.6\r\n"), ProbeResult::NoMatch);
        assert_eq!(probe(b"HTTP/1.1 999 Nope\r\n"), ProbeResult::NoMatch);
        assert_eq!(
            probe(b"PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n"),
            ProbeResult::NoMatch
        );
    }

    #[test]
    fn garbage() {
        assert_eq!(probe(b"\x16\x03\x01\x00\x05"), ProbeResult::NoMatch);
        assert_eq!(probe(b" GET / HTTP/1.1\r\n"), ProbeResult::NoMatch);
        let long = [b'a'; MAX_REQUEST_LINE + 10];
        let mut line = b"GET /".to_vec();
        line.extend_from_slice(&long);
        assert_eq!(probe(&line), ProbeResult::NoMatch);
    }
}
