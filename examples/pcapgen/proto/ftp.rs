//! FTP control-channel lines (RFC 959) and the RFC 2428 extensions EPRT/EPSV.

use std::net::{IpAddr, Ipv4Addr};

/// A command line: `VERB` or `VERB arg`, CRLF-terminated.
pub fn cmd(verb: &str, arg: &str) -> Vec<u8> {
    if arg.is_empty() {
        format!("{verb}\r\n")
    } else {
        format!("{verb} {arg}\r\n")
    }
    .into_bytes()
}

/// A single-line reply `code text`.
pub fn reply(code: u16, text: &str) -> Vec<u8> {
    format!("{code} {text}\r\n").into_bytes()
}

/// A multi-line reply: `code-first`, indented middle lines, `code last`.
pub fn multiline(code: u16, first: &str, middle: &[&str], last: &str) -> Vec<u8> {
    let mut s = format!("{code}-{first}\r\n");
    for line in middle {
        s.push_str(&format!(" {line}\r\n"));
    }
    s.push_str(&format!("{code} {last}\r\n"));
    s.into_bytes()
}

/// `h1,h2,h3,h4,p1,p2` as PORT takes it and 227 returns it.
pub fn host_port(ip: Ipv4Addr, port: u16) -> String {
    let [a, b, c, d] = ip.octets();
    format!("{a},{b},{c},{d},{},{}", port >> 8, port & 0xff)
}

/// The 227 reply to PASV.
pub fn pasv_reply(ip: Ipv4Addr, port: u16) -> Vec<u8> {
    reply(
        227,
        &format!("Entering Passive Mode ({}).", host_port(ip, port)),
    )
}

/// The 229 reply to EPSV (RFC 2428 §3: only the port, between `|||` and `|`).
pub fn epsv_reply(port: u16) -> Vec<u8> {
    reply(229, &format!("Entering Extended Passive Mode (|||{port}|)"))
}

/// The EPRT argument `|af|addr|port|` (af 1 = IPv4, 2 = IPv6).
pub fn eprt_arg(ip: IpAddr, port: u16) -> String {
    match ip {
        IpAddr::V4(a) => format!("|1|{a}|{port}|"),
        IpAddr::V6(a) => format!("|2|{a}|{port}|"),
    }
}

/// A Unix `ls -l` style listing as vsftpd sends on LIST, one line per (name, size).
pub fn listing(entries: &[(&str, u64)]) -> Vec<u8> {
    let mut s = String::new();
    for (name, size) in entries {
        s.push_str(&format!(
            "-rw-r--r--    1 1001     1001     {size:>10} Nov 02 08:41 {name}\r\n"
        ));
    }
    s.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::v6;

    #[test]
    fn rfc_formats() {
        let ip = Ipv4Addr::new(203, 0, 113, 50);
        assert_eq!(
            pasv_reply(ip, 50_069),
            b"227 Entering Passive Mode (203,0,113,50,195,149).\r\n"
        );
        assert_eq!(195 * 256 + 149, 50_069);
        assert_eq!(
            epsv_reply(6446),
            b"229 Entering Extended Passive Mode (|||6446|)\r\n"
        );
        assert_eq!(eprt_arg(IpAddr::V4(ip), 6275), "|1|203.0.113.50|6275|");
        assert_eq!(
            eprt_arg(v6([0xfd00, 0x10, 1, 2, 0, 0, 0, 0x10]), 50_123),
            "|2|fd00:10:1:2::10|50123|"
        );
        assert_eq!(cmd("QUIT", ""), b"QUIT\r\n");
        assert_eq!(
            multiline(211, "Features:", &["EPSV"], "End"),
            b"211-Features:\r\n EPSV\r\n211 End\r\n"
        );
    }
}
