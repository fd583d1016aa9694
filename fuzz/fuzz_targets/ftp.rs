//! Fuzz target: arbitrary bytes, cut into chunks and directions by the input itself, through
//! the FTP control parser. Nothing may panic; pending commands stay under their cap.
#![no_main]

use libfuzzer_sys::fuzz_target;
use xferwatch::direction::Direction;
use xferwatch::proto::ftp::{FtpConfig, FtpControl};

fuzz_target!(|data: &[u8]| {
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
