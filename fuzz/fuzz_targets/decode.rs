//! Fuzz target: raw frames of every link type the decoder reads, through one `Decoder`.
//!
//! Input layout: byte 0 picks the link type (low nibble, [`LINKTYPES`]) and the framing
//! (bit 7). With bit 7 clear the rest is one frame; with it set the rest is a sequence of
//! frames, each preceded by a big-endian u16 length, so fragment trains and the capped
//! fragment table see several packets. Bit 6 claims a wire length larger than the capture
//! (a snap-length cut). Checks: no panic, a returned payload lies inside its frame, the
//! fragment table stays under its cap, and a frame that yields no packet bumps exactly one
//! drop counter (the contract in `src/decode.rs`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use xferwatch::decode::{DecodeStats, Decoder, linktype};
use xferwatch::time::Ts;

/// Sixteen slots: every supported link type, plus two the decoder must count and skip.
const LINKTYPES: [u32; 16] = [
    linktype::ETHERNET,
    linktype::RAW,
    linktype::IPV4,
    linktype::IPV6,
    linktype::NULL,
    linktype::LOOP,
    linktype::LINUX_SLL,
    linktype::LINUX_SLL2,
    linktype::PPP,
    linktype::PPP_HDLC,
    linktype::NFLOG,
    linktype::RAW_OPENBSD,
    linktype::RAW_BSDOS,
    linktype::ETHERNET,
    147,
    0xffff,
];

const MAX_FRAGS: usize = 8;

/// Counters that say why a frame yielded no packet.
fn drops(s: &DecodeStats) -> u64 {
    s.non_ip
        + s.unsupported_linktype
        + s.truncated_link
        + s.invalid_ip
        + s.invalid_tcp
        + s.invalid_udp
        + s.invalid_icmp
        + s.frag_orphan
        + s.tunnel_too_deep
}

fn one(dec: &mut Decoder, lt: u32, frame: &[u8], long: bool, n: u64) {
    let wire = u32::try_from(frame.len()).unwrap_or(u32::MAX);
    let wire = if long {
        wire.saturating_add(1500)
    } else {
        wire
    };
    let before = drops(&dec.stats);
    // Packet time steps by 7 s so the fragment table's expiry also runs.
    let ts = Ts(n * 7_000_000_000);
    match dec.decode(lt, frame, wire, ts) {
        Some(p) => {
            let lo = frame.as_ptr() as usize;
            let hi = lo + frame.len();
            let at = p.payload.as_ptr() as usize;
            assert!(p.payload.is_empty() || (at >= lo && at + p.payload.len() <= hi));
            assert_eq!(
                drops(&dec.stats),
                before,
                "a packet was returned and a drop counted"
            );
        }
        None => assert_eq!(
            drops(&dec.stats),
            before + 1,
            "a dropped frame must count once"
        ),
    }
    assert!(dec.fragment_trains() <= MAX_FRAGS);
}

fuzz_target!(|data: &[u8]| {
    let Some((&head, rest)) = data.split_first() else {
        return;
    };
    let lt = LINKTYPES[usize::from(head & 0x0f)];
    let long = head & 0x40 != 0;
    let mut dec = Decoder::new(MAX_FRAGS);
    if head & 0x80 == 0 {
        one(&mut dec, lt, rest, long, 0);
        return;
    }
    let mut rest = rest;
    let mut n = 0;
    while let Some((len, tail)) = rest.split_first_chunk::<2>() {
        let len = usize::from(u16::from_be_bytes(*len)).min(tail.len());
        let (frame, next) = tail.split_at(len);
        one(&mut dec, lt, frame, long, n);
        n += 1;
        rest = next;
    }
});
