//! The protocols that fill the background and the mismatch cases: HTTP/1.1, SSH-2,
//! DNS over UDP and SMTP.

use std::net::IpAddr;

use super::be16;
use crate::rng::Rng;

/// An HTTP/1.1 GET request.
pub fn http_get(host: &str, path: &str) -> Vec<u8> {
    format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0\r\nAccept: */*\r\nAccept-Encoding: gzip, deflate\r\nConnection: keep-alive\r\n\r\n"
    )
    .into_bytes()
}

/// HTTP/1.1 POST request headers for a `len`-byte body that follows.
pub fn http_post_head(host: &str, path: &str, content_type: &str, len: u64) -> Vec<u8> {
    format!(
        "POST {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: python-requests/2.32.3\r\nAccept: */*\r\nContent-Type: {content_type}\r\nContent-Length: {len}\r\nConnection: keep-alive\r\n\r\n"
    )
    .into_bytes()
}

/// HTTP/1.1 response headers for a `len`-byte body that follows.
pub fn http_response_head(status: &str, content_type: &str, len: u64) -> Vec<u8> {
    format!(
        "HTTP/1.1 {status}\r\nServer: nginx/1.26.2\r\nDate: Mon, 02 Nov 2026 09:00:00 GMT\r\nContent-Type: {content_type}\r\nContent-Length: {len}\r\nConnection: keep-alive\r\n\r\n"
    )
    .into_bytes()
}

/// An SSH identification string (RFC 4253 §4.2).
pub fn ssh_banner(software: &str) -> Vec<u8> {
    format!("SSH-2.0-{software}\r\n").into_bytes()
}

/// Wraps `payload` in an SSH binary packet with random padding to a multiple of 8.
fn ssh_packet(rng: &mut Rng, payload: &[u8]) -> Vec<u8> {
    let mut pad = 8 - (5 + payload.len()) % 8;
    if pad < 4 {
        pad += 8;
    }
    let mut out = Vec::new();
    out.extend_from_slice(&((1 + payload.len() + pad) as u32).to_be_bytes());
    out.push(pad as u8);
    out.extend_from_slice(payload);
    out.extend_from_slice(&rng.bytes(pad));
    out
}

/// SSH_MSG_KEXINIT (cleartext, before keys are agreed).
pub fn ssh_kexinit(rng: &mut Rng) -> Vec<u8> {
    let lists = [
        "curve25519-sha256,curve25519-sha256@libssh.org,ecdh-sha2-nistp256,ext-info-c",
        "ssh-ed25519,ecdsa-sha2-nistp256,rsa-sha2-512,rsa-sha2-256",
        "chacha20-poly1305@openssh.com,aes128-gcm@openssh.com,aes256-gcm@openssh.com",
        "chacha20-poly1305@openssh.com,aes128-gcm@openssh.com,aes256-gcm@openssh.com",
        "umac-128-etm@openssh.com,hmac-sha2-256-etm@openssh.com",
        "umac-128-etm@openssh.com,hmac-sha2-256-etm@openssh.com",
        "none,zlib@openssh.com",
        "none,zlib@openssh.com",
        "",
        "",
    ];
    let mut p = vec![20];
    p.extend_from_slice(&rng.bytes(16));
    for l in lists {
        p.extend_from_slice(&(l.len() as u32).to_be_bytes());
        p.extend_from_slice(l.as_bytes());
    }
    p.push(0);
    p.extend_from_slice(&[0; 4]);
    ssh_packet(rng, &p)
}

/// Appends an SSH `string`: 4-byte length, bytes.
fn ssh_string(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
    out.extend_from_slice(bytes);
}

/// SSH_MSG_KEX_ECDH_INIT (RFC 5656 §4) with a curve25519 public key.
pub fn ssh_ecdh_init(rng: &mut Rng) -> Vec<u8> {
    let mut p = vec![30];
    ssh_string(&mut p, &rng.bytes(32));
    ssh_packet(rng, &p)
}

/// SSH_MSG_KEX_ECDH_REPLY (Ed25519 host key, server key, signature) followed by the
/// server's SSH_MSG_NEWKEYS.
pub fn ssh_ecdh_reply(rng: &mut Rng) -> Vec<u8> {
    let mut host_key = Vec::new();
    ssh_string(&mut host_key, b"ssh-ed25519");
    ssh_string(&mut host_key, &rng.bytes(32));
    let mut sig = Vec::new();
    ssh_string(&mut sig, b"ssh-ed25519");
    ssh_string(&mut sig, &rng.bytes(64));
    let mut p = vec![31];
    ssh_string(&mut p, &host_key);
    ssh_string(&mut p, &rng.bytes(32));
    ssh_string(&mut p, &sig);
    let mut out = ssh_packet(rng, &p);
    out.extend_from_slice(&ssh_newkeys(rng));
    out
}

/// SSH_MSG_NEWKEYS: the last cleartext packet in each direction.
pub fn ssh_newkeys(rng: &mut Rng) -> Vec<u8> {
    ssh_packet(rng, &[21])
}

/// An encrypted SSH packet: 4-byte length, `len` encrypted bytes, 16-byte MAC/tag.
pub fn ssh_encrypted(rng: &mut Rng, len: usize) -> Vec<u8> {
    let len = len.div_ceil(8) * 8;
    let mut out = (len as u32).to_be_bytes().to_vec();
    out.extend_from_slice(&rng.bytes(len + 16));
    out
}

/// DNS record type A.
pub const A: u16 = 1;
/// DNS record type AAAA.
pub const AAAA: u16 = 28;

/// Appends `name` as DNS labels.
fn qname(out: &mut Vec<u8>, name: &str) {
    for label in name.split('.').filter(|l| !l.is_empty()) {
        out.push(label.len() as u8);
        out.extend_from_slice(label.as_bytes());
    }
    out.push(0);
}

/// A recursive query for `name`/`qtype`, class IN.
pub fn dns_query(id: u16, name: &str, qtype: u16) -> Vec<u8> {
    let mut out = Vec::new();
    be16(&mut out, id);
    be16(&mut out, 0x0100); // RD
    for n in [1, 0, 0, 0] {
        be16(&mut out, n);
    }
    qname(&mut out, name);
    be16(&mut out, qtype);
    be16(&mut out, 1);
    out
}

/// The answer to [`dns_query`] with one address record pointing back at the question.
pub fn dns_response(id: u16, name: &str, addr: IpAddr) -> Vec<u8> {
    let (qtype, rdata) = match addr {
        IpAddr::V4(a) => (A, a.octets().to_vec()),
        IpAddr::V6(a) => (AAAA, a.octets().to_vec()),
    };
    let mut out = Vec::new();
    be16(&mut out, id);
    be16(&mut out, 0x8180); // QR, RD, RA
    for n in [1, 1, 0, 0] {
        be16(&mut out, n);
    }
    qname(&mut out, name);
    be16(&mut out, qtype);
    be16(&mut out, 1);
    be16(&mut out, 0xC00C); // name: pointer to the question
    be16(&mut out, qtype);
    be16(&mut out, 1);
    out.extend_from_slice(&300u32.to_be_bytes());
    be16(&mut out, rdata.len() as u16);
    out.extend_from_slice(&rdata);
    out
}

/// One SMTP exchange step: (client line or empty, server reply).
pub fn smtp_dialogue(host: &str, from: &str, to: &str) -> Vec<(Vec<u8>, Vec<u8>)> {
    let s = |t: &str| t.as_bytes().to_vec();
    vec![
        (Vec::new(), s(&format!("220 {host} ESMTP Postfix\r\n"))),
        (
            s("EHLO ws-0042.corp.example\r\n"),
            s(&format!(
                "250-{host}\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n"
            )),
        ),
        (s(&format!("MAIL FROM:<{from}>\r\n")), s("250 2.1.0 Ok\r\n")),
        (s(&format!("RCPT TO:<{to}>\r\n")), s("250 2.1.5 Ok\r\n")),
        (s("DATA\r\n"), s("354 End data with <CR><LF>.<CR><LF>\r\n")),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::v4;

    #[test]
    fn dns_and_ssh_framing() {
        let q = dns_query(0x1234, "files.example.net", A);
        assert_eq!(&q[..4], &[0x12, 0x34, 0x01, 0x00]);
        assert_eq!(q.len(), 12 + 19 + 4);
        let r = dns_response(0x1234, "files.example.net", v4(203, 0, 113, 50));
        assert_eq!(&r[r.len() - 4..], &[203, 0, 113, 50]);
        let mut rng = Rng::new(1);
        let k = ssh_kexinit(&mut rng);
        let len = u32::from_be_bytes([k[0], k[1], k[2], k[3]]) as usize;
        assert_eq!(len + 4, k.len());
        assert_eq!(k.len() % 8, 0);
        assert_eq!(k[5], 20);
    }
}
