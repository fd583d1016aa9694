//! Fuzz target: the TFTP packet parser on arbitrary bytes, and a transfer fed packets
//! split from the input. Nothing may panic; counted bytes never exceed the bytes fed.
#![no_main]

use libfuzzer_sys::fuzz_target;
use xferwatch::proto::Endpoint;
use xferwatch::proto::tftp::{TftpTransfer, parse};

fuzz_target!(|data: &[u8]| {
    let _ = parse(data);
    let request = b"\x00\x01file\x00octet\x00blksize\x0064\x00windowsize\x004\x00";
    let Some(mut t) = TftpTransfer::new(request) else {
        return;
    };
    let mut fed = 0u64;
    let mut rest = data;
    while let Some((&ctl, tail)) = rest.split_first() {
        let len = usize::from(ctl >> 1).min(tail.len());
        let (pkt, next) = tail.split_at(len);
        let from = if ctl & 1 == 0 {
            Endpoint::Client
        } else {
            Endpoint::Server
        };
        let _ = t.feed(from, pkt);
        fed += pkt.len() as u64;
        rest = next;
    }
    assert!(t.bytes() <= fed);
    let _ = t.record();
});
