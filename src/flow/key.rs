//! Canonical bidirectional flow key: both directions of a conversation map to one key.

use std::net::IpAddr;

use crate::decode::Packet;

/// A 5-tuple plus VLAN ids with the endpoints in a canonical order (lower `(ip, port)`
/// first), so a packet and its reply produce equal keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FlowKey {
    /// Endpoint addresses, canonical order.
    pub ip: [IpAddr; 2],
    /// Endpoint ports (0 for ICMP and port-less protocols), canonical order.
    pub port: [u16; 2],
    /// IP protocol number.
    pub proto: u8,
    /// Outer and inner VLAN id.
    pub vlan: [u16; 2],
}

impl FlowKey {
    /// The key of `pkt` and the index (0 or 1) of the packet's source endpoint in it.
    pub fn of(pkt: &Packet<'_>) -> (FlowKey, usize) {
        // ICMP type/code are not ports: an echo request and its reply share one flow.
        let (sport, dport) = if matches!(pkt.proto, 1 | 58) {
            (0, 0)
        } else {
            (pkt.sport, pkt.dport)
        };
        let src_first = (pkt.src, sport) <= (pkt.dst, dport);
        let key = if src_first {
            FlowKey {
                ip: [pkt.src, pkt.dst],
                port: [sport, dport],
                proto: pkt.proto,
                vlan: pkt.vlan,
            }
        } else {
            FlowKey {
                ip: [pkt.dst, pkt.src],
                port: [dport, sport],
                proto: pkt.proto,
                vlan: pkt.vlan,
            }
        };
        (key, if src_first { 0 } else { 1 })
    }

    /// Endpoint `i` (0 or 1) as `(ip, port)`; out-of-range indices clamp to 1.
    pub fn endpoint(&self, i: usize) -> (IpAddr, u16) {
        if i == 0 {
            (self.ip[0], self.port[0])
        } else {
            (self.ip[1], self.port[1])
        }
    }

    /// A 64-bit hash that is equal for both directions and stable across runs and
    /// machines (used for flow ids and worker sharding).
    pub fn stable_hash(&self) -> u64 {
        let mut h = Fnv::default();
        for ip in &self.ip {
            match ip {
                IpAddr::V4(v4) => h.write(&v4.octets()),
                IpAddr::V6(v6) => h.write(&v6.octets()),
            }
        }
        for p in self.port {
            h.write(&p.to_be_bytes());
        }
        h.write(&[self.proto]);
        for v in self.vlan {
            h.write(&v.to_be_bytes());
        }
        mix64(h.0)
    }
}

/// FNV-1a, chosen for being tiny and stable (std's hasher is randomly seeded).
#[derive(Clone, Copy)]
pub(crate) struct Fnv(pub(crate) u64);

impl Default for Fnv {
    fn default() -> Fnv {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}

impl Fnv {
    pub(crate) fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
}

/// A finaliser (splitmix64) so low bits of the FNV state are well mixed.
pub(crate) fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::Fragment;
    use proptest::prelude::*;

    fn pkt(src: IpAddr, dst: IpAddr, sport: u16, dport: u16, proto: u8) -> Packet<'static> {
        Packet {
            src,
            dst,
            sport,
            dport,
            proto,
            vlan: [0, 0],
            tcp: None,
            payload: &[],
            payload_len: 0,
            wire_len: 60,
            fragment: Fragment::None,
            tunnel: None,
        }
    }

    fn any_ip() -> impl Strategy<Value = IpAddr> {
        prop_oneof![
            any::<[u8; 4]>().prop_map(IpAddr::from),
            any::<[u8; 16]>().prop_map(IpAddr::from),
        ]
    }

    proptest! {
        #[test]
        fn key_is_symmetric(a in any_ip(), b in any_ip(), sp in any::<u16>(), dp in any::<u16>(), proto in any::<u8>()) {
            let (k1, i1) = FlowKey::of(&pkt(a, b, sp, dp, proto));
            let (k2, i2) = FlowKey::of(&pkt(b, a, dp, sp, proto));
            prop_assert_eq!(k1, k2);
            prop_assert_eq!(k1.stable_hash(), k2.stable_hash());
            // Unless both endpoints are identical, the two directions get different sides.
            if (a, sp) != (b, dp) && !matches!(proto, 1 | 58) {
                prop_assert_ne!(i1, i2);
            }
        }
    }

    #[test]
    fn icmp_request_and_reply_share_a_key() {
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let (k1, _) = FlowKey::of(&pkt(a, b, 8, 0, 1));
        let (k2, _) = FlowKey::of(&pkt(b, a, 0, 0, 1));
        assert_eq!(k1, k2);
    }
}
