//! DNS messages (RFC 1035 §4.1) over UDP and over TCP (2-byte length prefix, RFC 7766).
//!
//! The check is the header plus every question: a known opcode, the reserved Z bit clear,
//! 1 to [`MAX_QUESTIONS`] questions, modest record counts, question names made of labels of
//! at most 63 bytes (or a compression pointer backwards) within 255 bytes, and a known class.
//! The QR bit gives the role. NetBIOS name service (same format, names of 32 letters
//! `A`–`P`) is not DNS.

use super::cursor::Cursor;
use super::{Miss, ProbeResult, Role, Signature, conclude, sig};
use crate::app_proto::AppProto;

/// Query (QR = 0).
pub const SIG_QUERY: &str = "dns-query";
/// Response (QR = 1).
pub const SIG_RESPONSE: &str = "dns-response";
/// Query over TCP.
pub const SIG_TCP_QUERY: &str = "dns-tcp-query";
/// Response over TCP.
pub const SIG_TCP_RESPONSE: &str = "dns-tcp-response";

/// Questions accepted in one message (mDNS may batch a few).
pub const MAX_QUESTIONS: u16 = 8;
const MAX_RECORDS: u16 = 512;
const HEADER_LEN: usize = 12;

/// Probes one UDP datagram for DNS. A datagram is complete, so this never needs more.
pub fn probe(data: &[u8]) -> ProbeResult {
    let r = message(data).map(|qr| {
        let (name, role) = if qr {
            (SIG_RESPONSE, Role::Server)
        } else {
            (SIG_QUERY, Role::Client)
        };
        sig(AppProto::Dns, name, 0, role, false)
    });
    conclude(r, true)
}

/// Probes one TCP direction's first bytes for a length-prefixed DNS message.
pub fn probe_tcp(data: &[u8]) -> ProbeResult {
    conclude(scan_tcp(data), false)
}

/// Like [`probe_tcp`], treating `data` as all there is.
pub fn probe_tcp_final(data: &[u8]) -> ProbeResult {
    conclude(scan_tcp(data), true)
}

fn scan_tcp(data: &[u8]) -> Result<Signature, Miss> {
    let mut c = Cursor::new(data);
    let len = usize::from(c.u16_be()?);
    if len < HEADER_LEN {
        return Err(Miss::NoMatch);
    }
    // Parse what has arrived of the message; the question section comes first, so a cut
    // after it is enough.
    let msg = c.take_up_to(len);
    let qr = message(msg)?;
    let (name, role) = if qr {
        (SIG_TCP_RESPONSE, Role::Server)
    } else {
        (SIG_TCP_QUERY, Role::Client)
    };
    Ok(sig(AppProto::Dns, name, 2, role, false))
}

/// Header and question section; returns the QR bit.
fn message(msg: &[u8]) -> Result<bool, Miss> {
    let mut c = Cursor::new(msg);
    let _id = c.u16_be()?;
    let flags = c.u16_be()?;
    let qr = flags & 0x8000 != 0;
    let opcode = (flags >> 11) & 0xf;
    // QUERY, IQUERY, STATUS, NOTIFY, UPDATE, DSO.
    if !matches!(opcode, 0 | 1 | 2 | 4 | 5 | 6) || flags & 0x0040 != 0 {
        return Err(Miss::NoMatch);
    }
    // A query's RCODE is 0.
    if !qr && flags & 0x000f != 0 {
        return Err(Miss::NoMatch);
    }
    // Checked one by one so that a wrong count fails before the next field is needed.
    let qd = c.u16_be()?;
    if qd == 0 || qd > MAX_QUESTIONS {
        return Err(Miss::NoMatch);
    }
    for _ in 0..3 {
        if c.u16_be()? > MAX_RECORDS {
            return Err(Miss::NoMatch);
        }
    }
    // NetBIOS name service shares DNS's format but names are 32 letters A–P (RFC 1002
    // §4.1): that is NBNS, not DNS.
    if let Some(first) = c.rest().get(..33)
        && first.first() == Some(&32)
        && first.iter().skip(1).all(|b| (b'A'..=b'P').contains(b))
    {
        return Err(Miss::NoMatch);
    }
    for _ in 0..qd {
        name(&mut c)?;
        let qtype = c.u16_be()?;
        // Class IN, CH, HS, NONE, ANY; the top bit is mDNS's unicast-response flag.
        let class = c.u16_be()? & 0x7fff;
        if qtype == 0 || !matches!(class, 1 | 3 | 4 | 254 | 255) {
            return Err(Miss::NoMatch);
        }
    }
    Ok(qr)
}

/// A domain name: labels to the root, or ending in a pointer to an earlier offset.
fn name(c: &mut Cursor<'_>) -> Result<(), Miss> {
    let start = c.pos();
    let mut total = 0usize;
    loop {
        let len = c.u8()?;
        match len {
            0 => return Ok(()),
            1..=63 => {
                c.skip(usize::from(len))?;
                total += usize::from(len) + 1;
                if total > 255 {
                    return Err(Miss::NoMatch);
                }
            }
            0xc0..=0xff => {
                let lo = c.u8()?;
                let target = usize::from(u16::from_be_bytes([len & 0x3f, lo]));
                // Only backwards, past the header, and before this name.
                return if (HEADER_LEN..start).contains(&target) {
                    Ok(())
                } else {
                    Err(Miss::NoMatch)
                };
            }
            _ => return Err(Miss::NoMatch),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(qname: &[&str], qtype: u16, class: u16) -> Vec<u8> {
        let mut m = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
        for l in qname {
            m.push(l.len() as u8);
            m.extend_from_slice(l.as_bytes());
        }
        m.push(0);
        m.extend_from_slice(&qtype.to_be_bytes());
        m.extend_from_slice(&class.to_be_bytes());
        m
    }

    #[test]
    fn udp_query_and_response() {
        let q = query(&["connectivity-check", "ubuntu", "com"], 1, 1);
        let ProbeResult::Match(s) = probe(&q) else {
            panic!()
        };
        assert_eq!((s.name, s.role), (SIG_QUERY, Role::Client));
        let mut r = q.clone();
        r[2] = 0x81;
        r[3] = 0x80;
        let ProbeResult::Match(s) = probe(&r) else {
            panic!()
        };
        assert_eq!((s.name, s.role), (SIG_RESPONSE, Role::Server));
    }

    #[test]
    fn tcp_length_prefix() {
        let q = query(&["example", "org"], 28, 1);
        let mut t = (q.len() as u16).to_be_bytes().to_vec();
        t.extend(&q);
        let ProbeResult::Match(s) = probe_tcp(&t) else {
            panic!()
        };
        assert_eq!((s.name, s.offset), (SIG_TCP_QUERY, 2));
        assert_eq!(probe_tcp(&t[..9]), ProbeResult::NeedMore);
        assert_eq!(probe_tcp(&t[..1]), ProbeResult::NeedMore);
        assert_eq!(probe_tcp_final(&t[..9]), ProbeResult::NoMatch);
    }

    #[test]
    fn truncated_datagram_is_no_match() {
        let q = query(&["example", "org"], 1, 1);
        assert_eq!(probe(&q[..q.len() - 1]), ProbeResult::NoMatch);
    }

    #[test]
    fn near_misses() {
        // Bad class, label too long, no question, opcode 3, forward pointer.
        assert_eq!(probe(&query(&["example"], 1, 7)), ProbeResult::NoMatch);
        let long = "a".repeat(64);
        assert_eq!(probe(&query(&[&long], 1, 1)), ProbeResult::NoMatch);
        let mut q = query(&["example"], 1, 1);
        q[5] = 0;
        assert_eq!(probe(&q), ProbeResult::NoMatch);
        let mut q = query(&["example"], 1, 1);
        q[2] = 0x18;
        assert_eq!(probe(&q), ProbeResult::NoMatch);
        let mut q = vec![0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 0x20, 0, 1, 0, 1];
        assert_eq!(probe(&q), ProbeResult::NoMatch);
        q[13] = 12;
        assert_eq!(probe(&q), ProbeResult::NoMatch, "pointer to itself");
        // NetBIOS name service query for an encoded name.
        let nbns = query(&["EOGFHEECEODKCACACACACACACACACACA"], 0x20, 1);
        assert_eq!(probe(&nbns), ProbeResult::NoMatch);
    }

    #[test]
    fn garbage() {
        assert_eq!(
            probe(b"\x00\x01rfc1350.txt\x00octet\x00"),
            ProbeResult::NoMatch
        );
        assert_eq!(
            probe_tcp(b"\x00\x00\x00\x66\xfeSMB@\x00"),
            ProbeResult::NoMatch
        );
        assert_eq!(
            probe_tcp(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"),
            ProbeResult::NoMatch
        );
    }
}
