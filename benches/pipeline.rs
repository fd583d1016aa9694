//! Criterion benchmark of the per-packet path: decode → flow table update, on frames built
//! in memory (no I/O), so regressions in the hot path show without a capture file.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use etherparse::PacketBuilder;
use xferwatch::decode::{Decoder, linktype};
use xferwatch::flow::{FlowLimits, FlowTable};
use xferwatch::time::Ts;

fn frames() -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for conn in 0..64u16 {
        for seg in 0..64u32 {
            let b = PacketBuilder::ethernet2([1; 6], [2; 6])
                .ipv4([10, 0, (conn >> 8) as u8, conn as u8], [203, 0, 113, 5], 64)
                .tcp(40000 + conn, 443, 1000 + seg * 1400, 65535)
                .ack(1);
            let mut f = Vec::new();
            b.write(&mut f, &[0x17; 1400]).unwrap_or_default();
            out.push(f);
        }
    }
    out
}

fn bench(c: &mut Criterion) {
    let frames = frames();
    let mut g = c.benchmark_group("hot_path");
    g.throughput(Throughput::Elements(frames.len() as u64));
    g.bench_function("decode+flow", |b| {
        b.iter(|| {
            let mut dec = Decoder::new(1024);
            let mut table = FlowTable::<()>::new(FlowLimits::default());
            let mut ended = Vec::new();
            for (i, f) in frames.iter().enumerate() {
                let ts = Ts(i as u64 * 1000);
                if let Some(p) = dec.decode(linktype::ETHERNET, f, f.len() as u32, ts) {
                    let hit = table.lookup(&p, ts, i as u64, &mut ended);
                    if let Some((flow, pool)) = table.flow_and_pool(hit.slot) {
                        std::hint::black_box(flow.update(hit.dir, &p, ts, i as u64, pool));
                        flow.return_buffers(pool, false);
                    }
                }
            }
            table.len()
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
