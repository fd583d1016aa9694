//! Addresses, endpoints and the capture's address plan (see `pcaps/README.md`).
//!
//! Internal hosts live in 10.0.0.0/8, 192.168.0.0/16 and fd00::/8. "External" servers use
//! the documentation ranges 192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24 and 2001:db8::/32,
//! which the sensor only treats as external when its config says so.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use serde::Serialize;

use crate::rng::mix;

/// The MAC of the border router: frames to and from external hosts carry it.
pub const ROUTER_MAC: [u8; 6] = [0x02, 0x1b, 0x00, 0x00, 0x00, 0x01];

/// An IPv4 address.
pub const fn v4(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(a, b, c, d))
}

/// An IPv6 address from its eight groups.
pub const fn v6(g: [u16; 8]) -> IpAddr {
    let [a, b, c, d, e, f, h, i] = g;
    IpAddr::V6(Ipv6Addr::new(a, b, c, d, e, f, h, i))
}

/// One side of a flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Endpoint {
    /// Address.
    pub ip: IpAddr,
    /// TCP or UDP port.
    pub port: u16,
}

impl Endpoint {
    /// `ip:port`.
    pub const fn new(ip: IpAddr, port: u16) -> Endpoint {
        Endpoint { ip, port }
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.ip {
            IpAddr::V4(a) => write!(f, "{a}:{}", self.port),
            IpAddr::V6(a) => write!(f, "[{a}]:{}", self.port),
        }
    }
}

/// Which side of the trust boundary an address sits on, per the captures' address plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Zone {
    /// RFC 1918 or unique-local IPv6: a home net by default.
    Internal,
    /// A documentation range standing in for the Internet. The sensor needs these listed
    /// as external in its config to count bytes toward them as outbound.
    External,
}

/// The zone of `ip`. Everything outside the internal ranges counts as external here,
/// because the captures only use internal and documentation addresses.
pub fn zone(ip: IpAddr) -> Zone {
    let internal = match ip {
        IpAddr::V4(a) => {
            let [o1, o2, ..] = a.octets();
            o1 == 10 || (o1 == 192 && o2 == 168) || (o1 == 172 && (16..32).contains(&o2))
        }
        IpAddr::V6(a) => (a.segments().first().copied().unwrap_or(0) & 0xfe00) == 0xfc00,
    };
    if internal {
        Zone::Internal
    } else {
        Zone::External
    }
}

/// The MAC address a frame uses for `ip` on the monitored segment: the host's own for
/// internal hosts, the router's for anything beyond it.
pub fn mac(ip: IpAddr) -> [u8; 6] {
    if zone(ip) == Zone::External {
        return ROUTER_MAC;
    }
    let bits = match ip {
        IpAddr::V4(a) => u64::from(u32::from(a)),
        IpAddr::V6(a) => {
            let v = u128::from(a);
            (v as u64) ^ ((v >> 64) as u64)
        }
    };
    let h = mix(bits).to_be_bytes();
    // 02: locally administered unicast.
    [0x02, 0x00, h[0], h[1], h[2], h[3]]
}

/// The IP TTL / hop limit a packet from `ip` carries when it reaches the sensor: 64 for
/// local senders, a few hops less for the Internet.
pub fn ttl(ip: IpAddr) -> u8 {
    match zone(ip) {
        Zone::Internal => 64,
        Zone::External => 52,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn address_plan_zones() {
        assert_eq!(zone(v4(10, 1, 2, 10)), Zone::Internal);
        assert_eq!(zone(v4(192, 168, 10, 5)), Zone::Internal);
        assert_eq!(zone(v4(203, 0, 113, 50)), Zone::External);
        assert_eq!(
            zone(v6([0xfd00, 0x10, 1, 2, 0, 0, 0, 0x10])),
            Zone::Internal
        );
        assert_eq!(
            zone(v6([0x2001, 0xdb8, 0x50, 0, 0, 0, 0, 0x21])),
            Zone::External
        );
        assert_eq!(mac(v4(198, 51, 100, 1)), ROUTER_MAC);
        assert_ne!(mac(v4(10, 0, 0, 1)), mac(v4(10, 0, 0, 2)));
        let e = Endpoint::new(v6([0x2001, 0xdb8, 0, 0, 0, 0, 0, 1]), 21);
        assert_eq!(e.to_string(), "[2001:db8::1]:21");
    }
}
