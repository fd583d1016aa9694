//! TLS handshakes (RFC 8446, 5246): a handshake record (type 22, version 3.0–3.4) carrying
//! a ClientHello or ServerHello with a sane legacy version.
//!
//! The hello is parsed, bounded by the record and the handshake length, far enough to read
//! SNI and ALPN. A ClientHello offering ALPN `ftp` (or a ServerHello selecting it) is
//! implicit FTPS and labelled `ftps`; TLS elsewhere stays `tls` except on the implicit-FTPS
//! ports, which the classifier applies (see [`super::IMPLICIT_FTPS_PORTS`]). The probe waits
//! for the whole first record (need-more); when the budget ends first it decides on the
//! validated header and reads whatever extensions arrived.

use super::cursor::{Cursor, Short};
use super::{Miss, ProbeResult, Role, Signature, conclude, sig};
use crate::app_proto::AppProto;

/// ClientHello.
pub const SIG_CLIENT_HELLO: &str = "tls-client-hello";
/// ServerHello.
pub const SIG_SERVER_HELLO: &str = "tls-server-hello";
/// ClientHello offering ALPN `ftp`.
pub const SIG_CLIENT_HELLO_FTP: &str = "tls-client-hello-alpn-ftp";
/// ServerHello selecting ALPN `ftp`.
pub const SIG_SERVER_HELLO_FTP: &str = "tls-server-hello-alpn-ftp";

const HANDSHAKE: u8 = 22;
const CLIENT_HELLO: u8 = 1;
const SERVER_HELLO: u8 = 2;
/// Largest TLSPlaintext fragment (2^14) plus slack for broken stacks.
const MAX_RECORD: u16 = 16384 + 2048;
const EXT_SNI: u16 = 0;
const EXT_ALPN: u16 = 16;
/// Extensions looked at before giving up on finding SNI/ALPN.
const MAX_EXTENSIONS: usize = 64;

/// What a hello says, borrowed from the record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hello<'a> {
    /// ClientHello (true) or ServerHello (false).
    pub client: bool,
    /// The legacy version field (0x0303 for TLS 1.2 and 1.3).
    pub version: u16,
    /// The first host name of the server_name extension.
    pub sni: Option<&'a [u8]>,
    /// The ALPN protocol_name_list as sent (see [`Hello::alpn`]).
    pub alpn_list: Option<&'a [u8]>,
    /// False when the hello was cut short (budget or fragmentation) before its end.
    pub complete: bool,
}

impl<'a> Hello<'a> {
    /// The ALPN protocol names offered (client) or selected (server).
    pub fn alpn(&self) -> impl Iterator<Item = &'a [u8]> {
        let mut c = Cursor::new(self.alpn_list.unwrap_or_default());
        std::iter::from_fn(move || {
            let n = c.u8().ok()?;
            c.take(usize::from(n)).ok()
        })
        .take(MAX_EXTENSIONS)
    }

    /// True when ALPN names FTP (RFC 4217 implicit FTPS registration "ftp").
    pub fn alpn_ftp(&self) -> bool {
        self.alpn().any(|p| p == b"ftp")
    }
}

/// Probes one direction's first bytes for a TLS hello.
pub fn probe(data: &[u8]) -> ProbeResult {
    conclude(scan(data, false), false)
}

/// Like [`probe`], treating `data` as all there is.
pub fn probe_final(data: &[u8]) -> ProbeResult {
    conclude(scan(data, true), true)
}

/// True if a chunk starts like a TLS handshake record (used after `AUTH TLS` → `234`).
pub fn is_handshake_record_start(chunk: &[u8]) -> bool {
    let mut c = Cursor::new(chunk);
    record_header(&mut c).is_ok()
}

fn scan(data: &[u8], at_end: bool) -> Result<Signature, Miss> {
    let hello = parse_hello_inner(data, at_end)?;
    let name = match (hello.client, hello.alpn_ftp()) {
        (true, false) => SIG_CLIENT_HELLO,
        (true, true) => SIG_CLIENT_HELLO_FTP,
        (false, false) => SIG_SERVER_HELLO,
        (false, true) => SIG_SERVER_HELLO_FTP,
    };
    let proto = if hello.alpn_ftp() {
        AppProto::Ftps
    } else {
        AppProto::Tls
    };
    let role = if hello.client {
        Role::Client
    } else {
        Role::Server
    };
    Ok(sig(proto, name, 0, role, false))
}

/// Parses the hello at the start of a direction's stream, reading what has arrived.
pub fn parse_hello(data: &[u8]) -> Option<Hello<'_>> {
    parse_hello_inner(data, true).ok()
}

/// Record header: returns the record length.
fn record_header(c: &mut Cursor<'_>) -> Result<u16, Miss> {
    if c.u8()? != HANDSHAKE || c.u8()? != 3 || c.u8()? > 4 {
        return Err(Miss::NoMatch);
    }
    let len = c.u16_be()?;
    if !(4..=MAX_RECORD).contains(&len) {
        return Err(Miss::NoMatch);
    }
    Ok(len)
}

fn parse_hello_inner(data: &[u8], at_end: bool) -> Result<Hello<'_>, Miss> {
    let mut c = Cursor::new(data);
    let rec_len = usize::from(record_header(&mut c)?);
    let hs_type = c.u8()?;
    if hs_type != CLIENT_HELLO && hs_type != SERVER_HELLO {
        return Err(Miss::NoMatch);
    }
    let hs_len = usize::try_from(c.u24_be()?).map_err(|_| Miss::NoMatch)?;
    // Legacy version (2) + random (32) + session id length (1) + suite and compression.
    if hs_len < 38 {
        return Err(Miss::NoMatch);
    }
    let major = c.u8()?;
    let minor = c.u8()?;
    if major != 3 || minor > 4 {
        return Err(Miss::NoMatch);
    }
    // The hello body from the version on, limited to this record.
    let body_len = hs_len.min(rec_len - 4);
    let complete = hs_len <= rec_len - 4;
    let body_start = c.pos() - 2;
    let avail = data.get(body_start..).unwrap_or_default();
    let body = match avail.get(..body_len) {
        Some(b) => b,
        None if at_end => avail,
        None => return Err(Miss::NeedMore),
    };
    let mut hello = Hello {
        client: hs_type == CLIENT_HELLO,
        version: u16::from_be_bytes([major, minor]),
        sni: None,
        alpn_list: None,
        complete: complete && body.len() == body_len,
    };
    // Malformed inner fields after a valid header are still TLS; a cut is just incomplete.
    match hello_fields(body, &mut hello) {
        Ok(()) => Ok(hello),
        Err(Short) => {
            hello.complete = false;
            Ok(hello)
        }
    }
}

/// Walks the hello body (from the legacy version) to the extensions.
fn hello_fields<'a>(body: &'a [u8], hello: &mut Hello<'a>) -> Result<(), Short> {
    let mut c = Cursor::new(body);
    c.skip(2 + 32)?;
    let sid = c.u8()?;
    c.skip(usize::from(sid))?;
    if hello.client {
        let suites = c.u16_be()?;
        c.skip(usize::from(suites))?;
        let comp = c.u8()?;
        c.skip(usize::from(comp))?;
    } else {
        c.skip(2 + 1)?;
    }
    if !c.any_left() {
        return Ok(());
    }
    let ext_len = c.u16_be()?;
    let mut exts = Cursor::new(c.take_up_to(usize::from(ext_len)));
    for _ in 0..MAX_EXTENSIONS {
        if !exts.any_left() {
            break;
        }
        let kind = exts.u16_be()?;
        let len = exts.u16_be()?;
        let mut e = exts.sub(usize::from(len))?;
        match kind {
            EXT_SNI => {
                // server_name_list length, then name_type 0 (host_name) and the name.
                e.skip(2)?;
                if e.u8()? == 0 {
                    let n = e.u16_be()?;
                    hello.sni = Some(e.take(usize::from(n))?);
                }
            }
            EXT_ALPN => {
                let n = e.u16_be()?;
                hello.alpn_list = Some(e.take(usize::from(n))?);
            }
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Builds a ClientHello record with the given SNI and ALPN names.
    pub(crate) fn client_hello(sni: Option<&str>, alpn: &[&str]) -> Vec<u8> {
        let mut exts = Vec::new();
        if let Some(host) = sni {
            let mut e = Vec::new();
            e.extend_from_slice(&((host.len() + 3) as u16).to_be_bytes());
            e.push(0);
            e.extend_from_slice(&(host.len() as u16).to_be_bytes());
            e.extend_from_slice(host.as_bytes());
            exts.extend_from_slice(&EXT_SNI.to_be_bytes());
            exts.extend_from_slice(&(e.len() as u16).to_be_bytes());
            exts.extend(e);
        }
        if !alpn.is_empty() {
            let mut list = Vec::new();
            for p in alpn {
                list.push(p.len() as u8);
                list.extend_from_slice(p.as_bytes());
            }
            exts.extend_from_slice(&EXT_ALPN.to_be_bytes());
            exts.extend_from_slice(&((list.len() + 2) as u16).to_be_bytes());
            exts.extend_from_slice(&(list.len() as u16).to_be_bytes());
            exts.extend(list);
        }
        let mut body = vec![3, 3];
        body.extend_from_slice(&[0x11; 32]); // random
        body.push(0); // session id
        body.extend_from_slice(&[0, 4, 0x13, 0x01, 0xc0, 0x2f]); // two suites
        body.extend_from_slice(&[1, 0]); // null compression
        body.extend_from_slice(&(exts.len() as u16).to_be_bytes());
        body.extend(exts);
        let mut hs = vec![CLIENT_HELLO];
        hs.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
        hs.extend(body);
        let mut rec = vec![HANDSHAKE, 3, 1];
        rec.extend_from_slice(&(hs.len() as u16).to_be_bytes());
        rec.extend(hs);
        rec
    }

    fn server_hello() -> Vec<u8> {
        let mut body = vec![3, 3];
        body.extend_from_slice(&[0x22; 32]);
        body.push(0);
        body.extend_from_slice(&[0xc0, 0x2f, 0]);
        let mut hs = vec![SERVER_HELLO, 0, 0, body.len() as u8];
        hs.extend(body);
        let mut rec = vec![HANDSHAKE, 3, 3, 0, hs.len() as u8];
        rec.extend(hs);
        rec
    }

    #[test]
    fn client_hello_with_sni_and_alpn() {
        let rec = client_hello(Some("files.example.org"), &["h2", "http/1.1"]);
        let ProbeResult::Match(s) = probe(&rec) else {
            panic!()
        };
        assert_eq!(
            (s.proto, s.name, s.role),
            (AppProto::Tls, SIG_CLIENT_HELLO, Role::Client)
        );
        let h = parse_hello(&rec).unwrap();
        assert_eq!(h.sni, Some(&b"files.example.org"[..]));
        assert_eq!(h.alpn().collect::<Vec<_>>(), vec![&b"h2"[..], b"http/1.1"]);
        assert!(h.complete);
    }

    #[test]
    fn alpn_ftp_is_ftps() {
        let ProbeResult::Match(s) = probe(&client_hello(None, &["ftp"])) else {
            panic!()
        };
        assert_eq!((s.proto, s.name), (AppProto::Ftps, SIG_CLIENT_HELLO_FTP));
    }

    #[test]
    fn server_hello_matches() {
        let ProbeResult::Match(s) = probe(&server_hello()) else {
            panic!()
        };
        assert_eq!((s.name, s.role), (SIG_SERVER_HELLO, Role::Server));
    }

    #[test]
    fn truncated_waits_then_decides_on_the_header() {
        let rec = client_hello(Some("a.example"), &["ftp"]);
        for cut in [1, 5, 11, 40, rec.len() - 1] {
            assert_eq!(probe(&rec[..cut]), ProbeResult::NeedMore, "cut {cut}");
        }
        // At the end, a validated header is enough; the cut extensions are simply not read.
        let ProbeResult::Match(s) = probe_final(&rec[..60]) else {
            panic!()
        };
        assert_eq!(s.proto, AppProto::Tls);
        assert!(!parse_hello(&rec[..60]).unwrap().complete);
        assert_eq!(probe_final(&rec[..8]), ProbeResult::NoMatch);
    }

    #[test]
    fn near_misses() {
        // Alert record, bad record version, bad hello version, tiny hello, oversize record.
        assert_eq!(probe(b"\x15\x03\x03\x00\x02\x02\x28"), ProbeResult::NoMatch);
        let mut r = client_hello(None, &[]);
        r[1] = 2;
        assert_eq!(probe(&r), ProbeResult::NoMatch);
        let mut r = client_hello(None, &[]);
        r[9] = 9;
        assert_eq!(probe(&r), ProbeResult::NoMatch);
        assert_eq!(
            probe(b"\x16\x03\x01\x00\x08\x01\x00\x00\x04\x03\x03\x00\x00"),
            ProbeResult::NoMatch
        );
        assert_eq!(probe(b"\x16\x03\x01\xff\xff\x01"), ProbeResult::NoMatch);
        assert!(is_handshake_record_start(&client_hello(None, &[])));
        assert!(!is_handshake_record_start(b"USER x\r\n"));
    }

    #[test]
    fn garbage() {
        assert_eq!(probe(b"GET / HTTP/1.1\r\n"), ProbeResult::NoMatch);
        assert_eq!(probe(b"\x00\x00\x00\x00"), ProbeResult::NoMatch);
    }
}
