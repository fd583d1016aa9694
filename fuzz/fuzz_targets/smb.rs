//! Fuzz target: arbitrary bytes, cut into chunks, directions, gaps and sized holes by the
//! input itself, through the SMB connection parser. Nothing may panic; tables stay under
//! their caps.
#![no_main]

use libfuzzer_sys::fuzz_target;
use xferwatch::direction::Direction;
use xferwatch::proto::smb::{SmbConfig, SmbConnection};

fuzz_target!(|data: &[u8]| {
    let cfg = SmbConfig {
        header_keep: 256,
        max_files: 8,
        max_open: 8,
        max_trees: 4,
        max_pending: 8,
        max_name: 64,
    };
    let mut conn = SmbConnection::new(cfg);
    let mut out = Vec::new();
    let mut rest = data;
    while let Some((&ctl, tail)) = rest.split_first() {
        let len = (usize::from(ctl >> 2) * 8).min(tail.len());
        let (chunk, next) = tail.split_at(len);
        let dir = if ctl & 1 == 0 {
            Direction::ToServer
        } else {
            Direction::ToClient
        };
        if ctl & 2 != 0 && len % 16 == 8 {
            // A hole of known size instead of bytes.
            conn.skip(dir, u64::from(ctl) * 131, &mut out);
        } else {
            conn.feed(dir, chunk, ctl & 2 != 0, &mut out);
        }
        out.clear();
        rest = next;
    }
    conn.finish(&mut out);
    assert!(conn.files().len() <= 8 && conn.trees().len() <= 4);
    let _ = conn.summary();
});
