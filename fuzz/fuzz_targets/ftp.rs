//! Fuzz target: arbitrary bytes, cut into chunks and directions by the input itself, through
//! the FTP control parser (commands one way, replies the other). Nothing may panic; pending
//! commands stay under their cap. The whole input also goes through each argument parser
//! (PORT, EPRT, LPRT and the PASV, EPSV, LPSV replies) on the first line.
#![no_main]

use libfuzzer_sys::fuzz_target;
use xferwatch::direction::Direction;
use xferwatch::proto::ftp::{
    FtpConfig, FtpControl, parse_eprt, parse_epsv, parse_lprt, parse_lpsv, parse_pasv, parse_port,
};

fuzz_target!(|data: &[u8]| {
    // Argument and reply texts are single short lines, so the argument parsers get the
    // input's first line, at most 96 bytes (they are linear, but costly per character
    // under coverage instrumentation).
    let line = data.split(|&b| b == b'\n').next().unwrap_or(data);
    let line = line.get(..96).unwrap_or(line);
    let _ = (parse_port(line), parse_eprt(line), parse_lprt(line));
    let text = String::from_utf8_lossy(line);
    let _ = (parse_pasv(&text), parse_epsv(&text), parse_lpsv(&text));
    let cfg = FtpConfig {
        max_line: 128,
        max_pending: 4,
        ..FtpConfig::default()
    };
    let mut ctl = FtpControl::new(cfg, [10, 0, 0, 1].into(), [192, 0, 2, 10].into());
    let mut out = Vec::new();
    // Each chunk is prefixed by one control byte: bit 0 direction, bit 1 gap, bits 2..
    // the chunk length.
    let mut rest = data;
    while let Some((&ctl_byte, tail)) = rest.split_first() {
        let len = usize::from(ctl_byte >> 2).min(tail.len());
        let (chunk, next) = tail.split_at(len);
        let dir = if ctl_byte & 1 == 0 {
            Direction::ToServer
        } else {
            Direction::ToClient
        };
        ctl.feed(dir, chunk, ctl_byte & 2 != 0, &mut out);
        assert!(ctl.pending() <= 4);
        out.clear();
        rest = next;
    }
    ctl.finish(&mut out);
});
