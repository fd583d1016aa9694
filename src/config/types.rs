//! Validated value types for `sensor.toml`.
//!
//! Each type checks its value while it is deserialised, so a bad value fails with the span of
//! that value and the error message can point at the exact line and column. Types keep the
//! invariant they check (a [`Count`] is never zero, a [`Port`] never 0), so the code that reads
//! the configuration does not have to check again.

use std::fmt;
use std::net::IpAddr;
use std::num::{NonZeroU32, NonZeroU64};

use ipnet::IpNet;
use serde::de::{self, Deserializer, SeqAccess, Unexpected, Visitor};
use serde::{Deserialize, Serialize, Serializer};

use crate::app_proto::AppProto;

/// Reads a TOML integer (always an `i64`) into `min..=max`, or explains what was expected.
fn int_in_range<E: de::Error>(
    v: i64,
    min: i64,
    max: i64,
    expected: &dyn de::Expected,
) -> Result<i64, E> {
    if (min..=max).contains(&v) {
        Ok(v)
    } else if v < 0 {
        Err(E::invalid_value(Unexpected::Signed(v), expected))
    } else {
        Err(E::invalid_value(
            Unexpected::Unsigned(v.unsigned_abs()),
            expected,
        ))
    }
}

/// Defines a non-zero `u32` newtype that explains itself as `$expecting` when it is zero or
/// out of range.
macro_rules! non_zero_u32 {
    ($(#[$meta:meta])* $name:ident, $expecting:literal) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(NonZeroU32);

        impl $name {
            /// Wraps `n`, or `None` when it is zero.
            pub const fn new(n: u32) -> Option<$name> {
                match NonZeroU32::new(n) {
                    Some(v) => Some($name(v)),
                    None => None,
                }
            }

            /// Wraps a literal default; zero becomes one so the invariant still holds.
            pub(crate) const fn lit(n: u32) -> $name {
                match NonZeroU32::new(n) {
                    Some(v) => $name(v),
                    None => $name(NonZeroU32::MIN),
                }
            }

            /// The value.
            pub const fn get(self) -> u32 {
                self.0.get()
            }

            /// The value as a `usize`, for sizing tables and buffers.
            pub fn as_usize(self) -> usize {
                usize::try_from(self.0.get()).unwrap_or(usize::MAX)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_u32(self.get())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl Visitor<'_> for V {
                    type Value = $name;
                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        f.write_str($expecting)
                    }
                    fn visit_i64<E: de::Error>(self, v: i64) -> Result<$name, E> {
                        let v = int_in_range(v, 1, i64::from(u32::MAX), &self)?;
                        u32::try_from(v)
                            .ok()
                            .and_then($name::new)
                            .ok_or_else(|| E::invalid_value(Unexpected::Signed(v), &self))
                    }
                    fn visit_u64<E: de::Error>(self, v: u64) -> Result<$name, E> {
                        match i64::try_from(v) {
                            Ok(v) => self.visit_i64(v),
                            Err(_) => Err(E::invalid_value(Unexpected::Unsigned(v), &self)),
                        }
                    }
                }
                d.deserialize_i64(V)
            }
        }
    };
}

non_zero_u32!(
    /// A count that must not be zero: table sizes, probe budgets, queue depths, MiB.
    Count,
    "a non-zero count"
);

non_zero_u32!(
    /// A timeout or interval in whole seconds (of packet time) that must not be zero.
    Seconds,
    "a non-zero number of seconds"
);

impl Seconds {
    /// The duration in nanoseconds, the unit of [`crate::time::Ts`].
    pub const fn as_nanos(self) -> u64 {
        (self.get() as u64).saturating_mul(crate::time::Ts::NANOS_PER_SEC)
    }
}

/// A TCP or UDP port number, 1 to 65535.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Port(u16);

impl Port {
    /// Wraps `n`, or `None` for port 0.
    pub const fn new(n: u16) -> Option<Port> {
        if n == 0 { None } else { Some(Port(n)) }
    }

    /// The port number.
    pub const fn get(self) -> u16 {
        self.0
    }
}

impl Serialize for Port {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u16(self.0)
    }
}

/// The `expecting` text for a single port.
const PORT_EXPECTING: &str = "a port number from 1 to 65535";

fn port_from_i64<E: de::Error>(v: i64, expected: &dyn de::Expected) -> Result<Port, E> {
    let v = int_in_range(v, 1, 65535, expected)?;
    u16::try_from(v)
        .ok()
        .and_then(Port::new)
        .ok_or_else(|| E::invalid_value(Unexpected::Signed(v), expected))
}

impl<'de> Deserialize<'de> for Port {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Port;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(PORT_EXPECTING)
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Port, E> {
                port_from_i64(v, &self)
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Port, E> {
                self.visit_i64(i64::try_from(v).unwrap_or(i64::MAX))
            }
        }
        d.deserialize_i64(V)
    }
}

/// A list of ports; `ftp = 2121` is accepted as `ftp = [2121]`. Duplicates are dropped, the
/// first occurrence keeps its place.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct PortList(Vec<Port>);

impl PortList {
    /// Builds a list from literal port numbers; zeros and duplicates are skipped.
    pub fn from_ports(ports: &[u16]) -> PortList {
        let mut list = PortList::default();
        for port in ports.iter().copied().filter_map(Port::new) {
            list.push(port);
        }
        list
    }

    fn push(&mut self, port: Port) {
        if !self.0.contains(&port) {
            self.0.push(port);
        }
    }

    /// The ports in configuration order.
    pub fn ports(&self) -> &[Port] {
        &self.0
    }

    /// The port numbers in configuration order.
    pub fn to_u16s(&self) -> Vec<u16> {
        self.0.iter().map(|p| p.get()).collect()
    }

    /// True when `port` is listed.
    pub fn contains(&self, port: u16) -> bool {
        self.0.iter().any(|p| p.get() == port)
    }

    /// True when no port is listed.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl Serialize for PortList {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

impl<'de> Deserialize<'de> for PortList {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = PortList;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a port number or a list of port numbers")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<PortList, E> {
                let port = port_from_i64(v, &PORT_EXPECTING)?;
                Ok(PortList(vec![port]))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<PortList, E> {
                self.visit_i64(i64::try_from(v).unwrap_or(i64::MAX))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<PortList, A::Error> {
                let mut list = PortList::default();
                while let Some(port) = seq.next_element::<Port>()? {
                    list.push(port);
                }
                Ok(list)
            }
        }
        d.deserialize_any(V)
    }
}

/// A non-empty [`PortList`], for entries where an empty list would silently mean nothing.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct NonEmptyPortList(PortList);

impl NonEmptyPortList {
    /// The list.
    pub fn list(&self) -> &PortList {
        &self.0
    }
}

impl Serialize for NonEmptyPortList {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

impl<'de> Deserialize<'de> for NonEmptyPortList {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let list = PortList::deserialize(d)?;
        if list.is_empty() {
            Err(de::Error::invalid_length(0, &"at least one port number"))
        } else {
            Ok(NonEmptyPortList(list))
        }
    }
}

/// An IPv4 or IPv6 network in CIDR notation. A bare address is a host route (/32, /128);
/// host bits after the prefix are cleared (`10.1.2.3/8` is `10.0.0.0/8`), as routers do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Cidr(IpNet);

impl Cidr {
    /// Wraps a network, clearing host bits.
    pub fn new(net: IpNet) -> Cidr {
        Cidr(net.trunc())
    }

    /// The network.
    pub const fn net(self) -> IpNet {
        self.0
    }

    /// Parses `10.0.0.0/8`, `2001:db8::/32` or a bare address.
    pub fn parse(s: &str) -> Option<Cidr> {
        let s = s.trim();
        if let Ok(net) = s.parse::<IpNet>() {
            return Some(Cidr::new(net));
        }
        s.parse::<IpAddr>().ok().map(|ip| Cidr(IpNet::from(ip)))
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl Serialize for Cidr {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Cidr {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Cidr;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a network such as \"10.0.0.0/8\" or \"2001:db8::/32\", or an address")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Cidr, E> {
                Cidr::parse(v).ok_or_else(|| E::invalid_value(Unexpected::Str(v), &self))
            }
        }
        d.deserialize_str(V)
    }
}

/// A fraction from 0 to 1 inclusive (a share of bytes, a probability).
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd)]
pub struct Ratio(f64);

impl Ratio {
    /// Wraps `v`, or `None` when it is outside `0.0..=1.0` or not a number.
    pub fn new(v: f64) -> Option<Ratio> {
        (0.0..=1.0).contains(&v).then_some(Ratio(v))
    }

    /// Wraps a literal default, clamped into range (NaN becomes 1) so the invariant holds.
    pub(crate) fn lit(v: f64) -> Ratio {
        Ratio::new(v).unwrap_or(Ratio(if v < 0.0 { 0.0 } else { 1.0 }))
    }

    /// The value.
    pub const fn get(self) -> f64 {
        self.0
    }
}

impl Serialize for Ratio {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(self.0)
    }
}

impl<'de> Deserialize<'de> for Ratio {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Ratio;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a ratio from 0 to 1, such as 0.9")
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Ratio, E> {
                Ratio::new(v).ok_or_else(|| E::invalid_value(Unexpected::Float(v), &self))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Ratio, E> {
                // `1` and `0` are natural to write; anything else cannot be a ratio.
                match v {
                    0 => Ok(Ratio(0.0)),
                    1 => Ok(Ratio(1.0)),
                    _ => Err(E::invalid_value(Unexpected::Signed(v), &self)),
                }
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Ratio, E> {
                self.visit_i64(i64::try_from(v).unwrap_or(i64::MAX))
            }
        }
        d.deserialize_any(V)
    }
}

// `Ratio::new` refuses NaN, so equality is reflexive and `Eq` holds.
impl Eq for Ratio {}

/// A byte count that must not be zero (thresholds), up to 2^63 − 1 (TOML integers are
/// signed 64-bit).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Bytes(NonZeroU64);

impl Bytes {
    /// Wraps `n`, or `None` when it is zero.
    pub const fn new(n: u64) -> Option<Bytes> {
        match NonZeroU64::new(n) {
            Some(v) => Some(Bytes(v)),
            None => None,
        }
    }

    /// Wraps a literal default; zero becomes one so the invariant still holds.
    pub(crate) const fn lit(n: u64) -> Bytes {
        match NonZeroU64::new(n) {
            Some(v) => Bytes(v),
            None => Bytes(NonZeroU64::MIN),
        }
    }

    /// The value.
    pub const fn get(self) -> u64 {
        self.0.get()
    }
}

impl fmt::Display for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl Serialize for Bytes {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(self.get())
    }
}

impl<'de> Deserialize<'de> for Bytes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Bytes;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a non-zero number of bytes")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Bytes, E> {
                let v = int_in_range(v, 1, i64::MAX, &self)?;
                u64::try_from(v)
                    .ok()
                    .and_then(Bytes::new)
                    .ok_or_else(|| E::invalid_value(Unexpected::Signed(v), &self))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Bytes, E> {
                match i64::try_from(v) {
                    Ok(v) => self.visit_i64(v),
                    Err(_) => Err(E::invalid_value(Unexpected::Unsigned(v), &self)),
                }
            }
        }
        d.deserialize_i64(V)
    }
}

/// Shannon entropy in bits per character, above 0 and at most 8 (the most a byte can carry).
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd)]
pub struct Bits(f64);

// `Bits::new` refuses NaN, so equality is reflexive and `Eq` holds.
impl Eq for Bits {}

impl Bits {
    /// Wraps `v`, or `None` when it is not in `(0, 8]`.
    pub fn new(v: f64) -> Option<Bits> {
        (v > 0.0 && v <= 8.0).then_some(Bits(v))
    }

    /// Wraps a literal default; out of range (or NaN) becomes 8 so the invariant holds.
    pub(crate) fn lit(v: f64) -> Bits {
        Bits::new(v).unwrap_or(Bits(8.0))
    }

    /// The value.
    pub const fn get(self) -> f64 {
        self.0
    }
}

impl Serialize for Bits {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(self.0)
    }
}

impl<'de> Deserialize<'de> for Bits {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Bits;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("bits per character above 0 and at most 8, such as 3.3")
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Bits, E> {
                Bits::new(v).ok_or_else(|| E::invalid_value(Unexpected::Float(v), &self))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Bits, E> {
                // Whole numbers are natural to write (`4`); the range still applies.
                match u8::try_from(v) {
                    Ok(n @ 1..=8) => Ok(Bits(f64::from(n))),
                    _ => Err(E::invalid_value(Unexpected::Signed(v), &self)),
                }
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Bits, E> {
                self.visit_i64(i64::try_from(v).unwrap_or(i64::MAX))
            }
        }
        d.deserialize_any(V)
    }
}

/// Longest file-name extension accepted in a pattern list.
pub const MAX_EXTENSION_LEN: usize = 16;

/// A file-name extension for the filename patterns: stored lower-case without the leading
/// dot; `".ZIP"` and `"zip"` are the same. It may not be empty, contain a dot, whitespace or
/// a path separator, or be longer than [`MAX_EXTENSION_LEN`] characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Extension(String);

impl Extension {
    /// Normalises and checks `s`; the error says what is wrong.
    pub fn parse(s: &str) -> Result<Extension, String> {
        let ext = s.strip_prefix('.').unwrap_or(s);
        let bad = |why: &str| Err(format!("invalid extension `{s}`: {why}"));
        if ext.is_empty() {
            return bad("empty");
        }
        if ext.chars().count() > MAX_EXTENSION_LEN {
            return bad("longer than 16 characters");
        }
        if ext
            .chars()
            .any(|c| c == '.' || c == '/' || c == '\\' || c.is_whitespace() || c.is_control())
        {
            return bad("only the last extension is matched, so no dots, spaces or slashes");
        }
        Ok(Extension(ext.to_lowercase()))
    }

    /// The extension, lower-case, without the dot.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Serialize for Extension {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Extension {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_str(StrVisitor(
            "a file-name extension such as \"zip\"",
            Extension::parse,
        ))
    }
}

/// Protocols that have a port policy row in `[ports]` (DESIGN §4), in table order.
pub const PORT_POLICY_PROTOS: [AppProto; 5] = [
    AppProto::Ftp,
    AppProto::FtpData,
    AppProto::Ftps,
    AppProto::Smb,
    AppProto::Tftp,
];

/// Joins names as "`a`, `b`, `c`" for error messages.
fn quoted_list<'a>(names: impl IntoIterator<Item = &'a str>) -> String {
    let mut out = String::new();
    for (i, name) in names.into_iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        out.push('`');
        out.push_str(name);
        out.push('`');
    }
    out
}

/// Any application-protocol label by its EVE name (`ftp`, `smb`, `http` …).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ProtoName(pub AppProto);

impl Serialize for ProtoName {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.0.as_str())
    }
}

impl<'de> Deserialize<'de> for ProtoName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_str(StrVisitor("a protocol name such as \"ftp\"", |name| {
            AppProto::from_name(name).map(ProtoName).ok_or_else(|| {
                format!(
                    "unknown protocol `{name}`, expected one of {}",
                    quoted_list(AppProto::ALL.iter().map(|p| p.as_str()))
                )
            })
        }))
    }
}

/// A protocol that has a port policy row: `ftp`, `ftp-data`, `ftps`, `smb` or `tftp`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PolicyProto(AppProto);

impl PolicyProto {
    /// Wraps `proto` when it has a port policy row.
    pub fn new(proto: AppProto) -> Option<PolicyProto> {
        PORT_POLICY_PROTOS
            .contains(&proto)
            .then_some(PolicyProto(proto))
    }

    /// The protocol.
    pub const fn get(self) -> AppProto {
        self.0
    }
}

impl Serialize for PolicyProto {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.0.as_str())
    }
}

impl<'de> Deserialize<'de> for PolicyProto {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_str(StrVisitor("a protocol name such as \"ftp\"", |name| {
            let expected = quoted_list(PORT_POLICY_PROTOS.iter().map(|p| p.as_str()));
            match AppProto::from_name(name) {
                Some(proto) => PolicyProto::new(proto).ok_or_else(|| {
                    format!("protocol `{name}` has no port policy, expected one of {expected}")
                }),
                None => Err(format!(
                    "unknown protocol `{name}`, expected one of {expected}"
                )),
            }
        }))
    }
}

/// The detection rule names of DESIGN §6, the values of EVE `xfer.rule`.
pub const RULE_NAMES: [&str; 8] = [
    "port-mismatch",
    "expected-protocol-absent",
    "direction-disagreement",
    "outbound-ratio",
    "transfer-size",
    "outbound-volume",
    "repeated-connections",
    "suspicious-filename",
];

/// The name of a detection rule, one of [`RULE_NAMES`] (for allowlists and suppression).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RuleName(&'static str);

impl RuleName {
    /// Looks `name` up in [`RULE_NAMES`].
    pub fn new(name: &str) -> Option<RuleName> {
        RULE_NAMES.iter().find(|r| **r == name).map(|r| RuleName(r))
    }

    /// The rule name as it appears in EVE `xfer.rule`.
    pub const fn as_str(self) -> &'static str {
        self.0
    }
}

impl Serialize for RuleName {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.0)
    }
}

impl<'de> Deserialize<'de> for RuleName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_str(StrVisitor(
            "a rule name such as \"outbound-ratio\"",
            |name| {
                RuleName::new(name).ok_or_else(|| {
                    format!(
                        "unknown rule `{name}`, expected one of {}",
                        quoted_list(RULE_NAMES)
                    )
                })
            },
        ))
    }
}

/// A string that must not be empty (file paths).
pub(crate) fn non_empty_string<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    d.deserialize_str(StrVisitor("a non-empty string", |s| {
        if s.is_empty() {
            Err("invalid value: empty string, expected a non-empty string".to_owned())
        } else {
            Ok(s.to_owned())
        }
    }))
}

/// A number of seconds where 0 is allowed and means "off" (the suppression windows), so a
/// negative value is explained in those words rather than as "expected u32".
struct SecsOrZero;

impl Visitor<'_> for SecsOrZero {
    type Value = u32;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a number of seconds, 0 (off) or more")
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<u32, E> {
        let v = int_in_range(v, 0, i64::from(u32::MAX), &self)?;
        u32::try_from(v).map_err(|_| E::invalid_value(Unexpected::Signed(v), &self))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<u32, E> {
        u32::try_from(v).map_err(|_| E::invalid_value(Unexpected::Unsigned(v), &self))
    }
}

/// `serde(deserialize_with)` for a window in seconds where 0 turns it off.
pub(crate) fn secs_or_zero<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    d.deserialize_i64(SecsOrZero)
}

/// `serde(deserialize_with)` for a map of rule name → window in seconds (0 = off).
pub(crate) fn rule_windows<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<std::collections::BTreeMap<RuleName, u32>, D::Error> {
    /// One map value, read with [`SecsOrZero`] while its span is still known.
    struct Window(u32);
    impl<'de> Deserialize<'de> for Window {
        fn deserialize<D2: Deserializer<'de>>(d: D2) -> Result<Window, D2::Error> {
            d.deserialize_i64(SecsOrZero).map(Window)
        }
    }
    let raw = std::collections::BTreeMap::<RuleName, Window>::deserialize(d)?;
    Ok(raw.into_iter().map(|(k, Window(v))| (k, v)).collect())
}

/// Checks a string inside the visitor, while the deserialiser still knows the value's span
/// (an error raised after `String::deserialize` returns would point at the enclosing array).
struct StrVisitor<T>(&'static str, fn(&str) -> Result<T, String>);

impl<T> Visitor<'_> for StrVisitor<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
        (self.1)(v).map_err(E::custom)
    }
}
