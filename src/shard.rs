//! Shard: picks the worker that owns a frame when several workers run.
//!
//! The key is the frame's *internal host* when exactly one end is internal, and the
//! unordered host pair otherwise. Everything that must meet on one worker shares that key:
//!
//! * both directions of a flow (the key is symmetric);
//! * an FTP control connection and its data channels, a TFTP request and its transfer, an
//!   FTPS control session and the data channels linked to it by host pair: they all join
//!   the same two hosts;
//! * every flow of one internal host, so the per-host windows of `outbound-volume` and
//!   `repeated-connections` see all of that host's traffic, exactly as a single worker would.
//!
//! What this does not keep together (documented in the README): an FTP data channel to an
//! address other than the control connection's when neither end of the control connection
//! is the single internal host (an external client of an internal server that announces a
//! second internal address in PASV, or FXP between two external servers).
//!
//! Frames are decoded (tunnels included) by a private [`Decoder`] whose counters are thrown
//! away: the worker decodes again and counts. Frames without IP addresses (ARP, orphan
//! fragments, malformed) go to worker 0, which counts them. The zones are the start-up
//! ones: a reloaded `[networks]` section changes identification and detection at once, but
//! not which worker owns a host, so flows never move between workers mid-life.

use std::net::IpAddr;

use crate::decode::Decoder;
use crate::time::Ts;
use crate::zones::{Zone, Zones};

/// Assigns frames to one of `workers` workers.
pub struct Sharder {
    workers: u64,
    zones: Zones,
    decoder: Decoder,
}

impl Sharder {
    /// A sharder over `workers` (at least 1) workers, classifying hosts with `zones` and
    /// tracking at most `max_fragments` fragment trains (so later fragments follow their
    /// first one).
    pub fn new(workers: usize, zones: Zones, max_fragments: usize) -> Sharder {
        Sharder {
            workers: u64::try_from(workers.max(1)).unwrap_or(1),
            zones,
            decoder: Decoder::new(max_fragments),
        }
    }

    /// The worker for one frame.
    pub fn worker(&mut self, linktype: u32, frame: &[u8], wire_len: u32, ts: Ts) -> usize {
        if self.workers == 1 {
            return 0;
        }
        let Some(pkt) = self.decoder.decode(linktype, frame, wire_len, ts) else {
            return 0;
        };
        let key = shard_key(&self.zones, pkt.src, pkt.dst);
        usize::try_from(key % self.workers).unwrap_or(0)
    }
}

/// The shard key of a packet between `a` and `b`: the internal host's address when exactly
/// one end is internal, else the unordered pair. Symmetric in `a` and `b`.
pub fn shard_key(zones: &Zones, a: IpAddr, b: IpAddr) -> u64 {
    let a_in = zones.zone(a) == Zone::Internal;
    let b_in = zones.zone(b) == Zone::Internal;
    match (a_in, b_in) {
        (true, false) => mix(addr_bits(a)),
        (false, true) => mix(addr_bits(b)),
        _ => {
            let (x, y) = (addr_bits(a), addr_bits(b));
            let (lo, hi) = if x <= y { (x, y) } else { (y, x) };
            mix(lo ^ u128::from(mix(hi).rotate_left(17)))
        }
    }
}

/// An address as 128 bits, IPv4 in the IPv4-mapped range so the two families never collide.
fn addr_bits(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => u128::from(v4.to_ipv6_mapped()),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

/// Folds 128 bits into 64 with the splitmix64 finaliser, so consecutive addresses spread
/// evenly over the workers.
fn mix(x: u128) -> u64 {
    let folded = (x as u64) ^ ((x >> 64) as u64).rotate_left(29);
    crate::flow::key::mix64(folded.wrapping_add(0x9e37_79b9_7f4a_7c15))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ipnet::IpNet;
    use proptest::prelude::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    fn zones() -> Zones {
        let home: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        Zones::new(&home, &[], &["198.51.100.0/24".parse().unwrap()])
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn v4(bits: u32) -> IpAddr {
        IpAddr::V4(Ipv4Addr::from(bits))
    }

    proptest! {
        #[test]
        fn key_is_symmetric(a in any::<u32>(), b in any::<u32>(), c in any::<u128>()) {
            let z = zones();
            prop_assert_eq!(shard_key(&z, v4(a), v4(b)), shard_key(&z, v4(b), v4(a)));
            let v6 = IpAddr::V6(Ipv6Addr::from(c));
            prop_assert_eq!(shard_key(&z, v4(a), v6), shard_key(&z, v6, v4(a)));
        }

        #[test]
        fn an_internal_host_keeps_one_key_for_every_external_peer(
            host in any::<u32>(), p in any::<u32>(), q in any::<u32>()
        ) {
            let z = zones();
            let internal = v4(0x0a00_0000 | (host & 0x00ff_ffff));
            // 203.0.113.0/24 and 8.0.0.0/8-ish space: external under these zones.
            let peer1 = v4(0x0800_0000 | (p & 0x00ff_ffff));
            let peer2 = IpAddr::V6(Ipv6Addr::from(0x2a00_u128 << 112 | u128::from(q)));
            prop_assert_eq!(shard_key(&z, internal, peer1), shard_key(&z, peer2, internal));
        }
    }

    #[test]
    fn hosts_spread_over_workers() {
        let z = zones();
        let mut per = [0u32; 4];
        for i in 0..4096u32 {
            let key = shard_key(&z, v4(0x0a00_0000 | i), ip("198.51.100.7"));
            if let Some(c) = per.get_mut(usize::try_from(key % 4).unwrap()) {
                *c += 1;
            }
        }
        // 4096 hosts over 4 workers: each gets a fair share (1024 expected).
        assert!(per.iter().all(|&c| (900..1150).contains(&c)), "{per:?}");
    }

    #[test]
    fn pairs_of_externals_and_of_internals_use_both_addresses() {
        let z = zones();
        let a = shard_key(&z, ip("198.51.100.1"), ip("198.51.100.2"));
        let b = shard_key(&z, ip("198.51.100.1"), ip("198.51.100.3"));
        assert_ne!(a, b);
        let c = shard_key(&z, ip("10.0.0.1"), ip("10.0.0.2"));
        let d = shard_key(&z, ip("10.0.0.1"), ip("10.0.0.3"));
        assert_ne!(c, d);
        // v4 0.0.0.1 and v6 ::1 are different hosts.
        assert_ne!(
            shard_key(&z, ip("0.0.0.1"), ip("198.51.100.1")),
            shard_key(&z, ip("::1"), ip("198.51.100.1"))
        );
    }

    #[test]
    fn a_frame_is_decoded_through_its_tunnel_and_non_ip_goes_to_worker_0() {
        let mut s = Sharder::new(3, zones(), 16);
        // ARP over Ethernet: no addresses.
        let mut arp = vec![0u8; 42];
        arp[12] = 0x08;
        arp[13] = 0x06;
        assert_eq!(s.worker(1, &arp, 42, Ts(0)), 0);
        // Raw IPv4 (link type 101) UDP 10.0.0.5 -> 198.51.100.9 and back land together.
        let fwd = udp_v4([10, 0, 0, 5], [198, 51, 100, 9]);
        let back = udp_v4([198, 51, 100, 9], [10, 0, 0, 5]);
        let w = s.worker(101, &fwd, 32, Ts(0));
        assert_eq!(s.worker(101, &back, 32, Ts(0)), w);
        let expect = usize::try_from(shard_key(&zones(), ip("10.0.0.5"), ip("8.8.8.8")) % 3);
        assert_eq!(Some(w), expect.ok());
    }

    fn udp_v4(src: [u8; 4], dst: [u8; 4]) -> Vec<u8> {
        let mut p = vec![
            0x45, 0, 0, 32, 0, 1, 0, 0, 64, 17, 0, 0, //
        ];
        p.extend_from_slice(&src);
        p.extend_from_slice(&dst);
        p.extend_from_slice(&[0x30, 0x39, 0x00, 0x45, 0, 12, 0, 0, 1, 2, 3, 4]);
        p
    }
}
