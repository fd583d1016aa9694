//! Baseline for the replay benchmark: a libpcap-only read loop over a capture file.
//!
//! It touches every packet's bytes (a running checksum) so the loop cannot be optimised
//! away, and does nothing else. `benches/replay.sh` times it against the sensor on the
//! same file in the same run.

use std::process::ExitCode;

fn main() -> ExitCode {
    let Some(path) = std::env::args().nth(1) else {
        eprintln!("usage: pcap_loop FILE");
        return ExitCode::from(1);
    };
    let mut cap = match pcap::Capture::from_file(&path) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("pcap_loop: {path}: {e}");
            return ExitCode::from(2);
        }
    };
    let (mut packets, mut bytes, mut sum) = (0u64, 0u64, 0u64);
    loop {
        match cap.next_packet() {
            Ok(p) => {
                packets += 1;
                bytes += u64::from(p.header.len);
                sum = sum.wrapping_add(
                    p.data
                        .iter()
                        .step_by(64)
                        .map(|b| u64::from(*b))
                        .sum::<u64>(),
                );
            }
            Err(pcap::Error::NoMorePackets) => break,
            Err(e) => {
                eprintln!("pcap_loop: {path}: {e}");
                return ExitCode::from(2);
            }
        }
    }
    println!("packets={packets} bytes={bytes} checksum={sum}");
    ExitCode::SUCCESS
}
