//! Fuzz target: arbitrary bytes, cut into chunks, directions, gaps and sized holes by the
//! input itself, through the SMB connection parser (NBSS framing, SMB1/SMB2 headers,
//! NEGOTIATE, TREE_CONNECT, CREATE, READ/WRITE …). Nothing may panic; tables stay under
//! their caps.
//!
//! Each chunk starts with two bytes: bit 0 of the first is the direction, bit 1 a gap
//! before the chunk, bit 2 a hole (a `skip` of that many bytes instead of data); its upper
//! five bits and the second byte are the length (up to 8191).
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
    while let Some((&[a, b], tail)) = rest.split_first_chunk::<2>() {
        let claimed = usize::from(a >> 3) << 8 | usize::from(b);
        let dir = if a & 1 == 0 {
            Direction::ToServer
        } else {
            Direction::ToClient
        };
        if a & 4 != 0 {
            // A hole of known size instead of bytes; scaled so it can span many records.
            conn.skip(dir, claimed as u64 * 131, &mut out);
            rest = tail;
        } else {
            let (chunk, next) = tail.split_at(claimed.min(tail.len()));
            conn.feed(dir, chunk, a & 2 != 0, &mut out);
            rest = next;
        }
        out.clear();
    }
    conn.finish(&mut out);
    assert!(conn.files().len() <= 8 && conn.trees().len() <= 4);
    let _ = (
        conn.summary(),
        conn.counters(),
        conn.dialect(),
        conn.encrypted(),
    );
});
