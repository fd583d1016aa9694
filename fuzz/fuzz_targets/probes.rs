//! Feeds arbitrary bytes to every identification probe and to the per-flow classifier.
//!
//! The first byte picks the transport, a budget and the server port; the rest is cut into
//! chunks whose lengths and directions come from the input too, so the fuzzer explores
//! split headers, budget edges and both directions.
#![no_main]

use libfuzzer_sys::fuzz_target;
use xferwatch::direction::Direction;
use xferwatch::identify::verdict::{PortPolicy, judge_all};
use xferwatch::identify::{Budget, Classifier, L4, PROBES, ProbeResult};

fuzz_target!(|data: &[u8]| {
    for p in &PROBES {
        let _ = (p.probe)(data);
        assert!((p.finish)(data) != ProbeResult::NeedMore);
    }

    let Some((&head, rest)) = data.split_first() else {
        return;
    };
    let l4 = match head % 3 {
        0 => L4::Tcp,
        1 => L4::Udp,
        _ => L4::Other,
    };
    let ports = [21u16, 69, 139, 445, 990, 80, 443, 40000];
    let server_port = ports[usize::from(head >> 2) % ports.len()];
    let budget = Budget {
        max_bytes: usize::from(head) * 16,
        max_packets: u32::from(head % 11),
    };
    let mut c = Classifier::new(l4, 50000, server_port);
    let mut rest = rest;
    let mut n = 0u64;
    let (mut ts, mut tc) = (0u64, 0u64);
    while let Some((&ctl, tail)) = rest.split_first() {
        let len = usize::from(ctl & 0x7f).min(tail.len());
        let (chunk, next) = tail.split_at(len);
        let dir = if ctl & 0x80 == 0 {
            Direction::ToServer
        } else {
            Direction::ToClient
        };
        match dir {
            Direction::ToServer => ts += chunk.len() as u64,
            Direction::ToClient => tc += chunk.len() as u64,
        }
        c.feed(dir, chunk, n, &budget);
        let _ = (c.wants_more(), c.labels(), c.smb_info(), c.sides_swapped());
        n += 1;
        rest = next;
    }
    c.finish();
    let labels = c.labels();
    let policy = PortPolicy::default_policy();
    let _ = judge_all(
        &labels,
        false,
        [192, 0, 2, 1].into(),
        server_port,
        ts,
        tc,
        &policy,
    );
});
