//! The scenarios: named recipes that fill a context with flows.

pub mod bench;
pub mod demo;
pub mod detection;
pub mod family;
pub mod flood;
pub mod mismatch;

use std::io::Write;

use anyhow::{Result, bail};

use crate::ctx::Ctx;

/// Named hosts of the address plan (see `pcaps/README.md`).
pub mod hosts {
    use std::net::IpAddr;

    use crate::net::{v4, v6};

    /// Workstation of the demo's user.
    pub const WS: IpAddr = v4(10, 1, 2, 10);
    /// A second workstation.
    pub const WS2: IpAddr = v4(10, 1, 2, 11);
    /// A third workstation (legacy SMB1 client).
    pub const WS3: IpAddr = v4(10, 1, 2, 12);
    /// The workstation's IPv6 address.
    pub const WS6: IpAddr = v6([0xfd00, 0x10, 1, 2, 0, 0, 0, 0x10]);
    /// A lab machine that network-boots.
    pub const LAB: IpAddr = v4(192, 168, 10, 25);
    /// Internal file server `fs01`.
    pub const FS01: IpAddr = v4(10, 1, 5, 20);
    /// Internal TFTP server.
    pub const TFTP_INT: IpAddr = v4(10, 1, 5, 30);
    /// Internal DNS resolver.
    pub const RESOLVER: IpAddr = v4(10, 1, 5, 53);
    /// External FTP server `files.example.net`.
    pub const FTP_EXT: IpAddr = v4(203, 0, 113, 50);
    /// External FTP server over IPv6.
    pub const FTP_EXT6: IpAddr = v6([0x2001, 0xdb8, 0x50, 0, 0, 0, 0, 0x21]);
    /// External TFTP server.
    pub const TFTP_EXT: IpAddr = v4(203, 0, 113, 69);
    /// External SMB server.
    pub const SMB_EXT: IpAddr = v4(198, 51, 100, 45);
    /// External web server `www.example.com`.
    pub const WEB: IpAddr = v4(198, 51, 100, 20);
    /// External web server `news.example.org`.
    pub const WEB2: IpAddr = v4(198, 51, 100, 30);
    /// External SSH server.
    pub const SSH_EXT: IpAddr = v4(203, 0, 113, 22);
    /// A second external FTP server `drop.example.org`.
    pub const FTP_EXT2: IpAddr = v4(192, 0, 2, 21);
    /// A public DNS resolver.
    pub const RESOLVER_EXT: IpAddr = v4(192, 0, 2, 53);
    /// External host speaking SMB2 on 443.
    pub const ODD: IpAddr = v4(198, 51, 100, 77);
}

/// Every scenario: name and one-line description.
pub const SCENARIOS: [(&str, &str); 30] = [
    (
        "demo",
        "README story: FTP upload of q3-finance.zip to an external server, plus background and one SMB-on-443",
    ),
    (
        "ftp-passive-upload",
        "PASV + STOR (with one retransmitted segment) and PASV + LIST",
    ),
    ("ftp-passive-download", "PASV + LIST, PASV + RETR"),
    (
        "ftp-active-upload",
        "PORT + STOR, server connects from port 20, 802.1Q VLAN 20",
    ),
    ("ftp-active-download", "PORT + RETR and EPRT |1| + LIST"),
    ("ftp-epsv-upload", "EPSV + STOR, EPSV + APPE, EPSV + STOU"),
    ("ftp-eprt-ipv6", "IPv6: EPRT |2| + STOR, EPSV + LIST"),
    (
        "ftps-explicit",
        "AUTH TLS then encrypted control, TLS data channel to a dynamic port",
    ),
    (
        "ftps-implicit",
        "TLS on 990 (ALPN ftp), passive data to a dynamic port and active data from 989",
    ),
    (
        "tftp-get",
        "RRQ octet, 512-byte lock-step blocks from the server's new TID",
    ),
    (
        "tftp-put",
        "WRQ netascii of a router config to an external server",
    ),
    (
        "tftp-blksize",
        "RRQ with blksize 1428, tsize and windowsize 8 acknowledged by OACK",
    ),
    ("tftp-error", "RRQ answered by ERROR 1 File not found"),
    (
        "smb2-put",
        "SMB 3.0.2 to an external server: IPC$ + srvsvc, WRITE of an archive",
    ),
    (
        "smb2-get",
        "SMB 2.1 on VLAN 30: CREATE + READ of a file from the internal file server",
    ),
    (
        "smb3-encrypted",
        "SMB 3.1.1 with negotiate contexts; everything after SESSION_SETUP in TRANSFORM headers",
    ),
    (
        "smb1-negotiate",
        "SMB1 NEGOTIATE on 445, and on 139 after an NBSS session request",
    ),
    (
        "mismatch",
        "one flow per mismatch verdict, an attempt, and matching negatives",
    ),
    (
        "ftp-internal-big-upload",
        "110 MB passive FTP upload between two internal hosts (--size)",
    ),
    (
        "ftp-big-upload-external",
        "120 MB passive FTP upload to an external server (--size)",
    ),
    (
        "ftp-download-external",
        "LIST and a 4 MB RETR from an external FTP server (--size)",
    ),
    (
        "http-upload-external",
        "HTTP GET then a 6 MB POST to an external web server (--size)",
    ),
    (
        "ssh-dns-external",
        "DNS via an external resolver, SSH session and a 5 MB scp upload (--size)",
    ),
    (
        "ftp-repeated",
        "5 short FTP sessions uploading status.txt to one external server, 1 min apart (--count)",
    ),
    (
        "ftp-suspicious-names",
        "uploads of a hex-named .bin and of invoice.pdf.exe to two external servers",
    ),
    (
        "flood-syn",
        "1 M unanswered SYNs with random 5-tuples around an FTP upload to an external server (--count)",
    ),
    (
        "flood-fragments",
        "100 k overlapping IPv4 fragments that never complete, around an FTP upload (--count)",
    ),
    (
        "flood-pasv",
        "one FTP control channel with 100 k PASV replies and no data channel, around an FTP upload (--count)",
    ),
    (
        "flood-tftp",
        "100 k unanswered TFTP read requests, around an FTP upload (--count)",
    ),
    (
        "bench",
        "large mixed capture for throughput tests (--target-bytes, --seed)",
    ),
];

/// Options the scenarios read.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Approximate capture size for `bench`.
    pub target_bytes: u64,
    /// Transfer size of the detection scenarios that move one big body.
    pub size: Option<u64>,
    /// Sessions of `ftp-repeated`, or the size of a flood.
    pub count: Option<u32>,
}

/// Runs scenario `name` into `ctx`.
pub fn build<W: Write>(name: &str, ctx: &mut Ctx<W>, opts: &Options) -> Result<()> {
    if opts.size.is_some() && !detection::SIZED.iter().any(|(n, _)| *n == name) {
        bail!("--size does not apply to scenario {name:?}");
    }
    if opts.count.is_some() && name != "ftp-repeated" && !flood::is_flood(name) {
        bail!("--count applies to ftp-repeated and the flood scenarios only");
    }
    if detection::build(name, ctx, opts)? || flood::build(name, ctx, opts)? {
        return Ok(());
    }
    match name {
        "demo" => demo::build(ctx),
        "mismatch" => mismatch::build(ctx),
        "bench" => bench::build(ctx, opts.target_bytes),
        other if SCENARIOS.iter().any(|(n, _)| *n == other) => family::build(other, ctx),
        other => bail!("unknown scenario {other:?}; run `pcapgen list`"),
    }
}
