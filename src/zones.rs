//! Trust zones: is an address internal, external or special-purpose (DESIGN §5)?
//!
//! Outbound bytes are bytes an internal endpoint sends to an external one, so every flow's
//! endpoints are classified once, when the flow is created. The first rule that matches wins:
//!
//! 1. the `[networks] internal` / `external` overrides, longest prefix of the two lists;
//! 2. `[networks] home_nets`: internal;
//! 3. the built-in IANA special-purpose ranges: special, neither internal nor external;
//! 4. everything else: external.
//!
//! IPv4-mapped IPv6 addresses (`::ffff:0:0/96`) and NAT64 well-known-prefix addresses
//! (`64:ff9b::/96`, RFC 6052) are classified as the IPv4 address they carry: the first is an
//! IPv4 peer seen through a dual-stack socket, the second is a real IPv4 destination behind a
//! translator. IANA lists `64:ff9b::/96` as globally reachable, so calling it special would
//! hide exfiltration through NAT64.
//!
//! The private-use ranges (RFC 1918, `fc00::/7`) are in the IANA registries too. They are
//! internal through the default `home_nets`; removed from it, they are special rather than
//! external, because such addresses are never a peer on the Internet.
//!
//! Each rule is a `PrefixTable`: one sorted array of network numbers per prefix length,
//! searched from the longest length down, so a lookup is a few binary searches and no
//! allocation.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

use crate::config::NetworksConfig;

/// Which side of the trust boundary an address is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Zone {
    /// Inside the monitored organisation.
    Internal,
    /// On the Internet.
    External,
    /// A special-purpose address (loopback, multicast, documentation …): neither.
    Special,
}

impl Zone {
    /// The EVE `src_zone` / `dest_zone` string.
    pub const fn as_str(self) -> &'static str {
        match self {
            Zone::Internal => "internal",
            Zone::External => "external",
            Zone::Special => "special",
        }
    }
}

impl fmt::Display for Zone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The result of [`Zones::classify`]: the zone and the rule that decided it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ZoneMatch {
    /// The zone.
    pub zone: Zone,
    /// The deciding rule: `networks.internal`, `networks.external`, `home_nets`,
    /// `iana-special:<name>` or `default-external`.
    pub source: &'static str,
    /// The matching prefix; `None` for `default-external`.
    pub prefix: Option<IpNet>,
}

/// A built-in special-purpose range: address, prefix length, `source` string.
type Builtin<A> = (A, u8, &'static str);

/// IPv4 special-purpose ranges (IANA IPv4 Special-Purpose Address Registry, plus the
/// multicast block from the IPv4 address space registry).
const SPECIAL_V4: [Builtin<Ipv4Addr>; 19] = [
    (Ipv4Addr::new(0, 0, 0, 0), 8, "iana-special:this-network"),
    (Ipv4Addr::new(10, 0, 0, 0), 8, "iana-special:private-use"),
    (
        Ipv4Addr::new(100, 64, 0, 0),
        10,
        "iana-special:shared-address-space",
    ),
    (Ipv4Addr::new(127, 0, 0, 0), 8, "iana-special:loopback"),
    (Ipv4Addr::new(169, 254, 0, 0), 16, "iana-special:link-local"),
    (Ipv4Addr::new(172, 16, 0, 0), 12, "iana-special:private-use"),
    (
        Ipv4Addr::new(192, 0, 0, 0),
        24,
        "iana-special:ietf-protocol-assignments",
    ),
    (
        Ipv4Addr::new(192, 0, 2, 0),
        24,
        "iana-special:documentation",
    ),
    (
        Ipv4Addr::new(192, 88, 99, 0),
        24,
        "iana-special:6to4-relay-anycast",
    ),
    (
        Ipv4Addr::new(192, 168, 0, 0),
        16,
        "iana-special:private-use",
    ),
    (
        Ipv4Addr::new(198, 18, 0, 0),
        15,
        "iana-special:benchmarking",
    ),
    (
        Ipv4Addr::new(198, 51, 100, 0),
        24,
        "iana-special:documentation",
    ),
    (
        Ipv4Addr::new(203, 0, 113, 0),
        24,
        "iana-special:documentation",
    ),
    (Ipv4Addr::new(224, 0, 0, 0), 4, "iana-special:multicast"),
    (Ipv4Addr::new(240, 0, 0, 0), 4, "iana-special:reserved"),
    (
        Ipv4Addr::new(255, 255, 255, 255),
        32,
        "iana-special:limited-broadcast",
    ),
    // Inside 0.0.0.0/8 and 192.0.0.0/24, named for what they are.
    (Ipv4Addr::new(0, 0, 0, 0), 32, "iana-special:this-host"),
    (Ipv4Addr::new(192, 0, 0, 0), 29, "iana-special:ds-lite"),
    (
        Ipv4Addr::new(192, 0, 0, 170),
        31,
        "iana-special:nat64-discovery",
    ),
];

/// Builds an IPv6 address from its eight 16-bit groups (`Ipv6Addr::new` in const form).
const fn v6(a: u16, b: u16, c: u16, d: u16) -> Ipv6Addr {
    Ipv6Addr::new(a, b, c, d, 0, 0, 0, 0)
}

/// IPv6 special-purpose ranges (IANA IPv6 Special-Purpose Address Registry, plus link-local
/// and multicast from the IPv6 address space registry). `::ffff:0:0/96` and `64:ff9b::/96`
/// are not here: those addresses are classified as the IPv4 address they embed.
const SPECIAL_V6: [Builtin<Ipv6Addr>; 14] = [
    (Ipv6Addr::UNSPECIFIED, 128, "iana-special:unspecified"),
    (Ipv6Addr::LOCALHOST, 128, "iana-special:loopback"),
    (
        v6(0x64, 0xff9b, 1, 0),
        48,
        "iana-special:local-use-translation",
    ),
    (v6(0x100, 0, 0, 0), 64, "iana-special:discard-only"),
    (v6(0x100, 0, 0, 1), 64, "iana-special:dummy-prefix"),
    (
        v6(0x2001, 0, 0, 0),
        23,
        "iana-special:ietf-protocol-assignments",
    ),
    (v6(0x2001, 2, 0, 0), 48, "iana-special:benchmarking"),
    (v6(0x2001, 0xdb8, 0, 0), 32, "iana-special:documentation"),
    (v6(0x3fff, 0, 0, 0), 20, "iana-special:documentation"),
    (v6(0x5f00, 0, 0, 0), 16, "iana-special:srv6-sids"),
    (v6(0xfc00, 0, 0, 0), 7, "iana-special:unique-local"),
    (v6(0xfe80, 0, 0, 0), 10, "iana-special:link-local"),
    (v6(0xff00, 0, 0, 0), 8, "iana-special:multicast"),
    // Teredo sits inside 2001::/23; named so that a tunnel endpoint is recognisable.
    (v6(0x2001, 0, 0, 0), 32, "iana-special:teredo"),
];

/// Networks of one prefix length, sorted for binary search.
#[derive(Debug, Clone)]
struct Group<V> {
    len: u8,
    /// `(network number, network, value)`, sorted by network number, unique.
    entries: Vec<(u128, IpNet, V)>,
}

/// Longest-prefix match over a fixed set of networks of one address family.
#[derive(Debug, Clone)]
struct PrefixTable<V> {
    /// Address width in bits: 32 or 128.
    bits: u8,
    /// Groups by prefix length, longest first.
    groups: Vec<Group<V>>,
}

/// The top `len` bits of a `bits`-wide address held in a `u128`.
fn mask(addr: u128, len: u8, bits: u8) -> u128 {
    let host_bits = u32::from(bits.saturating_sub(len));
    let width = if bits >= 128 {
        u128::MAX
    } else {
        (1u128 << bits) - 1
    };
    let net = width.checked_shl(host_bits).unwrap_or(0) & width;
    addr & net
}

impl<V: Copy> PrefixTable<V> {
    fn new(bits: u8) -> Self {
        PrefixTable {
            bits,
            groups: Vec::new(),
        }
    }

    /// Adds a network (host bits ignored). A network already present keeps its first value.
    fn insert(&mut self, addr: u128, net: IpNet, value: V) {
        let len = net.prefix_len().min(self.bits);
        let key = mask(addr, len, self.bits);
        let at = match self.groups.binary_search_by(|g| len.cmp(&g.len)) {
            Ok(at) => at,
            Err(at) => {
                self.groups.insert(
                    at,
                    Group {
                        len,
                        entries: Vec::new(),
                    },
                );
                at
            }
        };
        if let Some(group) = self.groups.get_mut(at)
            && let Err(pos) = group.entries.binary_search_by_key(&key, |e| e.0)
        {
            group.entries.insert(pos, (key, net.trunc(), value));
        }
    }

    /// The value of the longest prefix containing `addr`.
    fn lookup(&self, addr: u128) -> Option<(IpNet, V)> {
        self.groups.iter().find_map(|g| {
            let key = mask(addr, g.len, self.bits);
            let i = g.entries.binary_search_by_key(&key, |e| e.0).ok()?;
            g.entries.get(i).map(|e| (e.1, e.2))
        })
    }
}

/// One rule of the classification, for both address families.
#[derive(Debug, Clone)]
struct Rule<V> {
    v4: PrefixTable<V>,
    v6: PrefixTable<V>,
}

impl<V: Copy> Rule<V> {
    fn new() -> Self {
        Rule {
            v4: PrefixTable::new(32),
            v6: PrefixTable::new(128),
        }
    }

    fn insert(&mut self, net: IpNet, value: V) {
        match net {
            IpNet::V4(n) => self.v4.insert(u128::from(u32::from(n.addr())), net, value),
            IpNet::V6(n) => self.v6.insert(u128::from(n.addr()), net, value),
        }
    }

    fn lookup(&self, ip: IpAddr) -> Option<(IpNet, V)> {
        match ip {
            IpAddr::V4(a) => self.v4.lookup(u128::from(u32::from(a))),
            IpAddr::V6(a) => self.v6.lookup(u128::from(a)),
        }
    }
}

/// The trust-zone classifier built from `[networks]`.
#[derive(Debug, Clone)]
pub struct Zones {
    overrides: Rule<Zone>,
    home: Rule<()>,
    special: Rule<&'static str>,
}

impl Default for Zones {
    /// The classifier for the default `[networks]` section.
    fn default() -> Self {
        Zones::from_config(&NetworksConfig::default())
    }
}

impl Zones {
    /// Builds the classifier. When a network is in both `internal` and `external` (the config
    /// rejects that), `internal` wins.
    pub fn new(home_nets: &[IpNet], internal: &[IpNet], external: &[IpNet]) -> Zones {
        let mut overrides = Rule::new();
        for net in internal {
            overrides.insert(*net, Zone::Internal);
        }
        for net in external {
            overrides.insert(*net, Zone::External);
        }
        let mut home = Rule::new();
        for net in home_nets {
            home.insert(*net, ());
        }
        let mut special = Rule::new();
        for (addr, len, name) in SPECIAL_V4 {
            if let Ok(net) = Ipv4Net::new(addr, len) {
                special.insert(IpNet::V4(net), name);
            }
        }
        for (addr, len, name) in SPECIAL_V6 {
            if let Ok(net) = Ipv6Net::new(addr, len) {
                special.insert(IpNet::V6(net), name);
            }
        }
        Zones {
            overrides,
            home,
            special,
        }
    }

    /// Builds the classifier from the `[networks]` section.
    pub fn from_config(networks: &NetworksConfig) -> Zones {
        let nets = |list: &[crate::config::Cidr]| list.iter().map(|c| c.net()).collect::<Vec<_>>();
        Zones::new(
            &nets(&networks.home_nets),
            &nets(&networks.internal),
            &nets(&networks.external),
        )
    }

    /// Classifies one address.
    pub fn classify(&self, ip: IpAddr) -> ZoneMatch {
        let ip = embedded_v4(ip);
        if let Some((prefix, zone)) = self.overrides.lookup(ip) {
            let source = match zone {
                Zone::Internal => "networks.internal",
                _ => "networks.external",
            };
            return ZoneMatch {
                zone,
                source,
                prefix: Some(prefix),
            };
        }
        if let Some((prefix, ())) = self.home.lookup(ip) {
            return ZoneMatch {
                zone: Zone::Internal,
                source: "home_nets",
                prefix: Some(prefix),
            };
        }
        if let Some((prefix, source)) = self.special.lookup(ip) {
            return ZoneMatch {
                zone: Zone::Special,
                source,
                prefix: Some(prefix),
            };
        }
        ZoneMatch {
            zone: Zone::External,
            source: "default-external",
            prefix: None,
        }
    }

    /// Shorthand for `classify(ip).zone`.
    pub fn zone(&self, ip: IpAddr) -> Zone {
        self.classify(ip).zone
    }
}

/// The IPv4 address inside an IPv4-mapped or NAT64 well-known-prefix IPv6 address, else `ip`.
fn embedded_v4(ip: IpAddr) -> IpAddr {
    let IpAddr::V6(v6) = ip else { return ip };
    if let Some(v4) = v6.to_ipv4_mapped() {
        return IpAddr::V4(v4);
    }
    let bits = u128::from(v6);
    const NAT64_WKP: u128 = 0x0064_ff9b_0000_0000_0000_0000_0000_0000;
    if bits & !0xffff_ffff == NAT64_WKP {
        let low = u32::try_from(bits & 0xffff_ffff).unwrap_or(0);
        return IpAddr::V4(Ipv4Addr::from(low));
    }
    ip
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter().map(|s| net(s)).collect()
    }

    #[test]
    fn zone_names() {
        assert_eq!(Zone::Internal.as_str(), "internal");
        assert_eq!(Zone::External.to_string(), "external");
        assert_eq!(Zone::Special.as_str(), "special");
    }

    #[test]
    fn defaults_make_private_ranges_internal() {
        let z = Zones::default();
        for (addr, prefix) in [
            ("10.1.2.3", "10.0.0.0/8"),
            ("172.31.255.255", "172.16.0.0/12"),
            ("192.168.0.1", "192.168.0.0/16"),
            ("fd12:3456::1", "fc00::/7"),
        ] {
            let m = z.classify(ip(addr));
            assert_eq!(
                m,
                ZoneMatch {
                    zone: Zone::Internal,
                    source: "home_nets",
                    prefix: Some(net(prefix))
                }
            );
        }
        let m = z.classify(ip("8.8.8.8"));
        assert_eq!(
            m,
            ZoneMatch {
                zone: Zone::External,
                source: "default-external",
                prefix: None
            }
        );
        assert_eq!(z.zone(ip("172.32.0.1")), Zone::External);
        assert_eq!(z.zone(ip("2a00:1450::1")), Zone::External);
    }

    /// Every built-in range: its first and last address are special with the expected name,
    /// and the addresses just outside it are not covered by it.
    #[test]
    fn every_builtin_range_is_special() {
        let z = Zones::new(&[], &[], &[]);
        let cases: &[(&str, &str, &str, &str)] = &[
            ("0.0.0.0/8", "0.0.0.1", "0.255.255.255", "this-network"),
            ("10.0.0.0/8", "10.0.0.0", "10.255.255.255", "private-use"),
            (
                "100.64.0.0/10",
                "100.64.0.0",
                "100.127.255.255",
                "shared-address-space",
            ),
            ("127.0.0.0/8", "127.0.0.0", "127.255.255.255", "loopback"),
            (
                "169.254.0.0/16",
                "169.254.0.0",
                "169.254.255.255",
                "link-local",
            ),
            (
                "172.16.0.0/12",
                "172.16.0.0",
                "172.31.255.255",
                "private-use",
            ),
            (
                "192.0.0.0/24",
                "192.0.0.172",
                "192.0.0.255",
                "ietf-protocol-assignments",
            ),
            ("192.0.0.0/29", "192.0.0.0", "192.0.0.7", "ds-lite"),
            (
                "192.0.0.170/31",
                "192.0.0.170",
                "192.0.0.171",
                "nat64-discovery",
            ),
            ("192.0.2.0/24", "192.0.2.0", "192.0.2.255", "documentation"),
            (
                "192.88.99.0/24",
                "192.88.99.0",
                "192.88.99.255",
                "6to4-relay-anycast",
            ),
            (
                "192.168.0.0/16",
                "192.168.0.0",
                "192.168.255.255",
                "private-use",
            ),
            (
                "198.18.0.0/15",
                "198.18.0.0",
                "198.19.255.255",
                "benchmarking",
            ),
            (
                "198.51.100.0/24",
                "198.51.100.0",
                "198.51.100.255",
                "documentation",
            ),
            (
                "203.0.113.0/24",
                "203.0.113.0",
                "203.0.113.255",
                "documentation",
            ),
            ("224.0.0.0/4", "224.0.0.0", "239.255.255.255", "multicast"),
            ("240.0.0.0/4", "240.0.0.0", "255.255.255.254", "reserved"),
            (
                "255.255.255.255/32",
                "255.255.255.255",
                "255.255.255.255",
                "limited-broadcast",
            ),
            ("0.0.0.0/32", "0.0.0.0", "0.0.0.0", "this-host"),
            ("::/128", "::", "::", "unspecified"),
            ("::1/128", "::1", "::1", "loopback"),
            (
                "64:ff9b:1::/48",
                "64:ff9b:1::",
                "64:ff9b:1:ffff:ffff:ffff:ffff:ffff",
                "local-use-translation",
            ),
            (
                "100::/64",
                "100::",
                "100::ffff:ffff:ffff:ffff",
                "discard-only",
            ),
            (
                "100:0:0:1::/64",
                "100:0:0:1::",
                "100::1:ffff:ffff:ffff:ffff",
                "dummy-prefix",
            ),
            (
                "2001::/23",
                "2001:1::1",
                "2001:1ff:ffff:ffff:ffff:ffff:ffff:ffff",
                "ietf-protocol-assignments",
            ),
            (
                "2001::/32",
                "2001::",
                "2001:0:ffff:ffff:ffff:ffff:ffff:ffff",
                "teredo",
            ),
            (
                "2001:2::/48",
                "2001:2::",
                "2001:2:0:ffff:ffff:ffff:ffff:ffff",
                "benchmarking",
            ),
            (
                "2001:db8::/32",
                "2001:db8::",
                "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff",
                "documentation",
            ),
            (
                "3fff::/20",
                "3fff::",
                "3fff:fff:ffff:ffff:ffff:ffff:ffff:ffff",
                "documentation",
            ),
            (
                "5f00::/16",
                "5f00::",
                "5f00:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
                "srv6-sids",
            ),
            (
                "fc00::/7",
                "fc00::",
                "fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
                "unique-local",
            ),
            (
                "fe80::/10",
                "fe80::",
                "febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
                "link-local",
            ),
            (
                "ff00::/8",
                "ff00::",
                "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
                "multicast",
            ),
        ];
        for (prefix, first, last, name) in cases {
            for addr in [first, last] {
                let m = z.classify(ip(addr));
                assert_eq!(m.zone, Zone::Special, "{addr}");
                assert_eq!(m.source, format!("iana-special:{name}"), "{addr}");
                assert_eq!(m.prefix, Some(net(prefix)), "{addr}");
            }
        }
        // Neighbours of the ranges are ordinary Internet addresses.
        for addr in [
            "1.0.0.0",
            "9.255.255.255",
            "11.0.0.0",
            "100.63.255.255",
            "100.128.0.0",
            "126.255.255.255",
            "128.0.0.0",
            "169.253.255.255",
            "172.15.255.255",
            "172.32.0.0",
            "192.0.1.0",
            "192.0.3.0",
            "192.88.98.255",
            "192.167.255.255",
            "198.17.255.255",
            "198.20.0.0",
            "198.51.99.255",
            "203.0.112.255",
            "203.0.114.0",
            "223.255.255.255",
            "::2",
            "64:ff9a:ffff::1",
            "100:0:0:2::",
            "2001:200::",
            "2001:db7::",
            "2001:db9::",
            "3fff:1000::",
            "5eff::",
            "5f01::",
            "fbff::",
            "fe00::",
            "fec0::",
            "2002::1",
        ] {
            let m = z.classify(ip(addr));
            assert_eq!(m.zone, Zone::External, "{addr} {m:?}");
        }
    }

    #[test]
    fn removing_private_ranges_from_home_nets_makes_them_special() {
        let z = Zones::new(&nets(&["10.20.0.0/16"]), &[], &[]);
        assert_eq!(z.classify(ip("10.20.1.1")).source, "home_nets");
        let m = z.classify(ip("10.30.1.1"));
        assert_eq!(
            (m.zone, m.source),
            (Zone::Special, "iana-special:private-use")
        );
        assert_eq!(z.classify(ip("fd00::1")).zone, Zone::Special);
    }

    #[test]
    fn overrides_beat_home_nets_and_builtins() {
        let z = Zones::new(
            &nets(&["10.0.0.0/8"]),
            &nets(&["198.51.100.0/24", "10.9.9.0/24"]),
            &nets(&["203.0.113.0/24", "10.9.0.0/16", "2001:db8::/32"]),
        );
        let m = z.classify(ip("203.0.113.5"));
        assert_eq!(
            m,
            ZoneMatch {
                zone: Zone::External,
                source: "networks.external",
                prefix: Some(net("203.0.113.0/24"))
            }
        );
        let m = z.classify(ip("198.51.100.7"));
        assert_eq!((m.zone, m.source), (Zone::Internal, "networks.internal"));
        // Longest prefix across both override lists.
        assert_eq!(z.classify(ip("10.9.1.1")).source, "networks.external");
        assert_eq!(z.classify(ip("10.9.9.1")).source, "networks.internal");
        assert_eq!(z.classify(ip("10.8.0.1")).source, "home_nets");
        assert_eq!(z.zone(ip("2001:db8::1")), Zone::External);
        // A network in both lists: internal wins (the config refuses this anyway).
        let z = Zones::new(&[], &nets(&["192.0.2.0/24"]), &nets(&["192.0.2.0/24"]));
        assert_eq!(z.zone(ip("192.0.2.1")), Zone::Internal);
    }

    #[test]
    fn host_routes_and_catch_alls() {
        let z = Zones::new(&nets(&["0.0.0.0/0"]), &[], &nets(&["8.8.8.8/32", "::/0"]));
        assert_eq!(z.classify(ip("8.8.4.4")).source, "home_nets");
        assert_eq!(z.classify(ip("8.8.8.8")).prefix, Some(net("8.8.8.8/32")));
        assert_eq!(z.classify(ip("::1")).source, "networks.external");
        // Host bits in a configured network are ignored.
        let z = Zones::new(&nets(&["10.1.2.3/16"]), &[], &[]);
        assert_eq!(
            z.classify(ip("10.1.200.1")).prefix,
            Some(net("10.1.0.0/16"))
        );
    }

    #[test]
    fn mapped_and_nat64_addresses_use_the_embedded_ipv4() {
        let z = Zones::default();
        let m = z.classify(ip("::ffff:10.1.2.3"));
        assert_eq!(
            (m.zone, m.prefix),
            (Zone::Internal, Some(net("10.0.0.0/8")))
        );
        assert_eq!(
            z.classify(ip("::ffff:127.0.0.1")).source,
            "iana-special:loopback"
        );
        assert_eq!(z.zone(ip("::ffff:8.8.8.8")), Zone::External);
        assert_eq!(z.zone(ip("64:ff9b::8.8.8.8")), Zone::External);
        assert_eq!(z.zone(ip("64:ff9b::192.168.1.1")), Zone::Internal);
        // Overrides on the IPv4 address apply to its mapped form.
        let z = Zones::new(&[], &[], &nets(&["192.0.2.0/24"]));
        assert_eq!(
            z.classify(ip("::ffff:192.0.2.9")).source,
            "networks.external"
        );
    }

    #[test]
    fn built_from_config() {
        let c = crate::config::Config::from_toml_str(
            "[networks]\nhome_nets = [\"10.0.0.0/8\"]\nexternal = [\"203.0.113.0/24\"]\n",
            "test",
        )
        .unwrap();
        let z = Zones::from_config(&c.networks);
        assert_eq!(z.zone(ip("203.0.113.1")), Zone::External);
        assert_eq!(z.zone(ip("192.168.1.1")), Zone::Special);
        assert_eq!(z.zone(ip("10.0.0.1")), Zone::Internal);
    }

    #[test]
    fn mask_edges() {
        assert_eq!(mask(0xffff_ffff, 0, 32), 0);
        assert_eq!(mask(0xffff_ffff, 32, 32), 0xffff_ffff);
        assert_eq!(mask(0xffff_ffff, 8, 32), 0xff00_0000);
        assert_eq!(mask(u128::MAX, 0, 128), 0);
        assert_eq!(mask(u128::MAX, 128, 128), u128::MAX);
        assert_eq!(mask(u128::MAX, 1, 128), 1 << 127);
    }

    /// The obvious implementation: scan every list, longest prefix wins within a rule.
    fn reference(home: &[IpNet], internal: &[IpNet], external: &[IpNet], ip: IpAddr) -> Zone {
        let ip = embedded_v4(ip);
        let longest = |list: &[IpNet]| {
            list.iter()
                .filter(|n| n.contains(&ip))
                .map(|n| n.prefix_len())
                .max()
        };
        match (longest(internal), longest(external)) {
            (Some(i), Some(e)) => {
                return if i >= e {
                    Zone::Internal
                } else {
                    Zone::External
                };
            }
            (Some(_), None) => return Zone::Internal,
            (None, Some(_)) => return Zone::External,
            (None, None) => {}
        }
        if longest(home).is_some() {
            return Zone::Internal;
        }
        let special_v4 = SPECIAL_V4
            .iter()
            .map(|(a, l, _)| IpNet::from(Ipv4Net::new(*a, *l).unwrap()));
        let special_v6 = SPECIAL_V6
            .iter()
            .map(|(a, l, _)| IpNet::from(Ipv6Net::new(*a, *l).unwrap()));
        if special_v4.chain(special_v6).any(|n| n.contains(&ip)) {
            return Zone::Special;
        }
        Zone::External
    }

    fn arb_ip() -> impl Strategy<Value = IpAddr> {
        prop_oneof![
            any::<u32>().prop_map(|a| IpAddr::V4(Ipv4Addr::from(a))),
            any::<u128>().prop_map(|a| IpAddr::V6(Ipv6Addr::from(a))),
            // Addresses near the interesting ranges, so they are actually hit.
            (0usize..SPECIAL_V4.len(), any::<u32>()).prop_map(|(i, low)| {
                let (a, l, _) = SPECIAL_V4[i];
                let host = low.checked_shr(u32::from(l)).unwrap_or(0);
                IpAddr::V4(Ipv4Addr::from(u32::from(a) | host))
            }),
            (0usize..SPECIAL_V6.len(), any::<u128>()).prop_map(|(i, low)| {
                let (a, l, _) = SPECIAL_V6[i];
                let host = low.checked_shr(u32::from(l)).unwrap_or(0);
                IpAddr::V6(Ipv6Addr::from(u128::from(a) | host))
            }),
            any::<u32>().prop_map(|a| IpAddr::V6(Ipv4Addr::from(a).to_ipv6_mapped())),
        ]
    }

    fn arb_net() -> impl Strategy<Value = IpNet> {
        prop_oneof![
            (any::<u32>(), 0u8..=32)
                .prop_map(|(a, l)| IpNet::from(Ipv4Net::new(Ipv4Addr::from(a), l).unwrap())),
            (any::<u128>(), 0u8..=128)
                .prop_map(|(a, l)| IpNet::from(Ipv6Net::new(Ipv6Addr::from(a), l).unwrap())),
            // Short IPv4 prefixes near 10/8 so that lists overlap each other.
            (0u32..=0xff, 8u8..=24).prop_map(|(b, l)| IpNet::from(
                Ipv4Net::new(Ipv4Addr::new(10, b as u8, 0, 0), l).unwrap()
            )),
        ]
    }

    proptest! {
        #[test]
        fn classify_never_panics_and_matches_the_reference(
            home in proptest::collection::vec(arb_net(), 0..6),
            internal in proptest::collection::vec(arb_net(), 0..6),
            external in proptest::collection::vec(arb_net(), 0..6),
            addrs in proptest::collection::vec(arb_ip(), 1..16),
        ) {
            let z = Zones::new(&home, &internal, &external);
            for a in addrs {
                let m = z.classify(a);
                prop_assert_eq!(m.zone, reference(&home, &internal, &external, a), "{} {:?}", a, m);
                if let Some(p) = m.prefix {
                    prop_assert!(p.contains(&embedded_v4(a)));
                }
            }
        }
    }
}
