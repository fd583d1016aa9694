//! Fuzz target: the TFTP packet parser (requests, options, DATA/ACK/ERROR/OACK) on
//! arbitrary bytes, and a transfer fed packets split from the input. Nothing may panic;
//! counted bytes never exceed the bytes fed.
//!
//! Byte 0 is the length of the request that opens the transfer (0: a fixed RRQ with
//! blksize and windowsize options); the packets follow, each behind a big-endian u16 whose
//! top bit is the sender and whose other 15 bits are the length.
#![no_main]

use libfuzzer_sys::fuzz_target;
use xferwatch::proto::Endpoint;
use xferwatch::proto::tftp::{MAX_BLKSIZE, TftpPacket, TftpTransfer, parse};

const FIXED: &[u8] = b"\x00\x01file\x00octet\x00blksize\x0064\x00windowsize\x004\x00";

fn walk_options(b: &[u8]) {
    if let Some(TftpPacket::Request { options, .. } | TftpPacket::Oack { options }) = parse(b) {
        let mut pairs = 0;
        for (name, value) in options.iter() {
            assert!(!name.is_empty() && !name.contains(&0) && !value.contains(&0));
            pairs += 1;
        }
        assert_eq!(pairs, options.count);
        if let Some(b) = options.known.blksize {
            assert!((8..=MAX_BLKSIZE).contains(&b));
        }
    }
}

fuzz_target!(|data: &[u8]| {
    walk_options(data);
    let Some((&req_len, rest)) = data.split_first() else {
        return;
    };
    let (request, mut rest) = if req_len == 0 {
        (FIXED, rest)
    } else {
        rest.split_at(usize::from(req_len).min(rest.len()))
    };
    walk_options(request);
    let Some(mut t) = TftpTransfer::new(request) else {
        return;
    };
    let mut fed = 0u64;
    while let Some((&hdr, tail)) = rest.split_first_chunk::<2>() {
        let hdr = u16::from_be_bytes(hdr);
        let len = usize::from(hdr & 0x7fff).min(tail.len());
        let (pkt, next) = tail.split_at(len);
        let from = if hdr & 0x8000 == 0 {
            Endpoint::Client
        } else {
            Endpoint::Server
        };
        walk_options(pkt);
        let _ = t.feed(from, pkt);
        fed += pkt.len() as u64;
        rest = next;
    }
    assert!(t.bytes() <= fed);
    let _ = (t.kind(), t.file(), t.blocks(), t.completed(), t.error());
    let _ = t.record();
});
