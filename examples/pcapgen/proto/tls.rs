//! TLS 1.3 handshake flights (RFC 8446) with SNI and ALPN, and opaque application records.
//!
//! Only the ClientHello and ServerHello are cleartext in TLS 1.3; everything after the
//! ServerHello is an application-data record whose contents are random here.

use super::{be16, patch_be16, patch_be24};
use crate::payload::TLS_MAX_BODY;
use crate::rng::Rng;

/// Appends a TLS extension: type, 2-byte length, data.
fn extension(out: &mut Vec<u8>, kind: u16, data: &[u8]) {
    be16(out, kind);
    be16(out, data.len() as u16);
    out.extend_from_slice(data);
}

/// Wraps a handshake message body in handshake and record headers.
fn handshake_record(legacy_record_version: u16, msg_type: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![0x16];
    be16(&mut out, legacy_record_version);
    be16(&mut out, 0);
    out.push(msg_type);
    out.extend_from_slice(&[0, 0, 0]);
    out.extend_from_slice(body);
    let total = out.len();
    patch_be16(&mut out, 3, (total - 5) as u16);
    patch_be24(&mut out, 6, (total - 9) as u32);
    out
}

/// A ClientHello offering TLS 1.3 and 1.2, with SNI `sni` and the given ALPN names.
pub fn client_hello(rng: &mut Rng, sni: &str, alpn: &[&str]) -> Vec<u8> {
    let mut body = vec![0x03, 0x03];
    body.extend_from_slice(&rng.bytes(32));
    body.push(32);
    body.extend_from_slice(&rng.bytes(32));
    let suites: [u16; 9] = [
        0x1301, 0x1302, 0x1303, 0xc02b, 0xc02f, 0xc02c, 0xc030, 0xcca9, 0xcca8,
    ];
    be16(&mut body, (suites.len() * 2) as u16);
    for s in suites {
        be16(&mut body, s);
    }
    body.extend_from_slice(&[1, 0]);
    let mut ext = Vec::new();
    let mut sn = Vec::new();
    be16(&mut sn, (sni.len() + 3) as u16);
    sn.push(0); // host_name
    be16(&mut sn, sni.len() as u16);
    sn.extend_from_slice(sni.as_bytes());
    extension(&mut ext, 0x0000, &sn);
    extension(&mut ext, 0x000a, &[0, 6, 0, 0x1d, 0, 0x17, 0, 0x18]);
    extension(&mut ext, 0x000b, &[1, 0]);
    extension(
        &mut ext,
        0x000d,
        &[0, 12, 4, 3, 8, 4, 4, 1, 5, 3, 8, 5, 5, 1],
    );
    if !alpn.is_empty() {
        let mut list = Vec::new();
        for name in alpn {
            list.push(name.len() as u8);
            list.extend_from_slice(name.as_bytes());
        }
        let mut a = Vec::new();
        be16(&mut a, list.len() as u16);
        a.extend_from_slice(&list);
        extension(&mut ext, 0x0010, &a);
    }
    extension(&mut ext, 0x002b, &[4, 3, 4, 3, 3]);
    extension(&mut ext, 0x002d, &[1, 1]);
    let mut ks = vec![0, 36, 0, 0x1d, 0, 32];
    ks.extend_from_slice(&rng.bytes(32));
    extension(&mut ext, 0x0033, &ks);
    be16(&mut body, ext.len() as u16);
    body.extend_from_slice(&ext);
    handshake_record(0x0301, 1, &body)
}

/// The server's first flight: ServerHello (TLS 1.3, x25519), a compatibility
/// ChangeCipherSpec, and one application-data record of `encrypted_len` bytes standing for
/// EncryptedExtensions, Certificate, CertificateVerify and Finished.
pub fn server_flight(rng: &mut Rng, encrypted_len: usize) -> Vec<u8> {
    let mut body = vec![0x03, 0x03];
    body.extend_from_slice(&rng.bytes(32));
    body.push(32);
    body.extend_from_slice(&rng.bytes(32));
    be16(&mut body, 0x1301);
    body.push(0);
    let mut ext = Vec::new();
    extension(&mut ext, 0x002b, &[3, 4]);
    let mut ks = vec![0, 0x1d, 0, 32];
    ks.extend_from_slice(&rng.bytes(32));
    extension(&mut ext, 0x0033, &ks);
    be16(&mut body, ext.len() as u16);
    body.extend_from_slice(&ext);
    let mut out = handshake_record(0x0303, 2, &body);
    out.extend_from_slice(&change_cipher_spec());
    out.extend_from_slice(&app_records(rng, encrypted_len));
    out
}

/// The client's second flight: ChangeCipherSpec plus its encrypted Finished (53 bytes:
/// 4-byte header, 32-byte verify data, content type, 16-byte tag).
pub fn client_finished(rng: &mut Rng) -> Vec<u8> {
    let mut out = change_cipher_spec().to_vec();
    out.extend_from_slice(&app_records(rng, 53 - 17));
    out
}

/// The middlebox-compatibility ChangeCipherSpec record.
fn change_cipher_spec() -> [u8; 6] {
    [0x14, 0x03, 0x03, 0x00, 0x01, 0x01]
}

/// Application-data records carrying `plain` bytes (plus 17 bytes of AEAD overhead per
/// record), contents random: what an encrypted command or reply looks like.
pub fn app_records(rng: &mut Rng, plain: usize) -> Vec<u8> {
    let mut out = Vec::new();
    let mut left = plain;
    loop {
        let take = left.min(16_384);
        let body = take + 17;
        debug_assert!(body as u64 <= TLS_MAX_BODY);
        out.extend_from_slice(&[0x17, 0x03, 0x03]);
        be16(&mut out, body as u16);
        out.extend_from_slice(&rng.bytes(body));
        left -= take;
        if left == 0 {
            break;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_hello_lengths_and_sni() {
        let mut rng = Rng::new(1);
        let ch = client_hello(&mut rng, "ftp.example.net", &["ftp"]);
        assert_eq!(&ch[..3], &[0x16, 0x03, 0x01]);
        assert_eq!(u16::from_be_bytes([ch[3], ch[4]]) as usize, ch.len() - 5);
        assert_eq!(ch[5], 1);
        let hs_len = u32::from_be_bytes([0, ch[6], ch[7], ch[8]]) as usize;
        assert_eq!(hs_len, ch.len() - 9);
        let find = |needle: &[u8]| ch.windows(needle.len()).any(|w| w == needle);
        assert!(find(b"\x00\x0fftp.example.net"));
        assert!(find(b"\x00\x10\x00\x06\x00\x04\x03ftp"));
    }

    #[test]
    fn records_split_at_16k() {
        let mut rng = Rng::new(2);
        let r = app_records(&mut rng, 20_000);
        assert_eq!(r.len(), 20_000 + 2 * (5 + 17));
        assert_eq!(u16::from_be_bytes([r[3], r[4]]), 16_384 + 17);
    }
}
