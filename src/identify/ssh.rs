//! SSH identification string (RFC 4253 §4.2): `SSH-protoversion-softwareversion`.
//!
//! Both sides send it, so the role is [`Role::Either`]. Protocol versions 2.0, 1.99 and 1.x
//! are all SSH. RFC 4253 lets a server send text lines before its identification; they are
//! rare and would make this probe overlap other text protocols (an FTP banner followed by
//! `SSH-2.0-…` would match both), so the identification must start the stream.

use super::cursor::Cursor;
use super::{Miss, ProbeResult, Role, Signature, conclude, sig};
use crate::app_proto::AppProto;

/// Identification string.
pub const SIG_IDENT: &str = "ssh-ident";

/// Probes one direction's first bytes for SSH.
pub fn probe(data: &[u8]) -> ProbeResult {
    conclude(scan(data), false)
}

/// Like [`probe`], treating `data` as all there is.
pub fn probe_final(data: &[u8]) -> ProbeResult {
    conclude(scan(data), true)
}

/// `SSH-` + version (`2.0`, `1.99`, `1.5`…) + `-` + a software-version byte.
fn scan(data: &[u8]) -> Result<Signature, Miss> {
    // Case matters: RFC 4253 spells the prefix in capitals.
    let n = data.len().min(4);
    if data.get(..n) != b"SSH-".get(..n) {
        return Err(Miss::NoMatch);
    }
    let mut c = Cursor::new(data);
    c.skip(4)?;
    let major = c.u8()?;
    if major != b'1' && major != b'2' {
        return Err(Miss::NoMatch);
    }
    if c.u8()? != b'.' {
        return Err(Miss::NoMatch);
    }
    let mut digits = 0;
    loop {
        match c.u8()? {
            b if b.is_ascii_digit() && digits < 2 => digits += 1,
            b'-' if digits > 0 => break,
            _ => return Err(Miss::NoMatch),
        }
    }
    // softwareversion: printable US-ASCII without whitespace or '-'.
    let first = c.u8()?;
    if (0x21..0x7f).contains(&first) && first != b'-' {
        Ok(sig(AppProto::Ssh, SIG_IDENT, 0, Role::Either, false))
    } else {
        Err(Miss::NoMatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_versions() {
        for id in [
            &b"SSH-2.0-OpenSSH_9.6p1 Ubuntu\r\n"[..],
            b"SSH-1.99-Cisco-1.25\r\n",
            b"SSH-2.0-x",
        ] {
            let ProbeResult::Match(s) = probe(id) else {
                panic!("{id:?}")
            };
            assert_eq!(
                (s.proto, s.offset, s.role),
                (AppProto::Ssh, 0, Role::Either)
            );
        }
    }

    #[test]
    fn truncated() {
        assert_eq!(probe(b"SS"), ProbeResult::NeedMore);
        assert_eq!(probe(b"SSH-2.0-"), ProbeResult::NeedMore);
        assert_eq!(probe_final(b"SSH-2.0-"), ProbeResult::NoMatch);
    }

    #[test]
    fn near_misses() {
        assert_eq!(probe(b"SSH-3.0-x\r\n"), ProbeResult::NoMatch);
        assert_eq!(probe(b"SSH-2.0 x\r\n"), ProbeResult::NoMatch);
        assert_eq!(probe(b"SSH-2.0--\r\n"), ProbeResult::NoMatch);
        assert_eq!(probe(b"ssh-2.0-x\r\n"), ProbeResult::NoMatch);
        assert_eq!(probe(b"Welcome\r\nSSH-2.0-x\r\n"), ProbeResult::NoMatch);
    }

    #[test]
    fn garbage() {
        assert_eq!(probe(b"\x00\x01\x02\x03"), ProbeResult::NoMatch);
        assert_eq!(probe(b"\x16\x03\x01\x00"), ProbeResult::NoMatch);
    }
}
