//! Trust zones (temporary minimal version; replaced by the config branch's classifier).

use std::net::IpAddr;

/// Trust zone of an address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Zone {
    /// In home_nets.
    Internal,
    /// Anything else.
    External,
    /// IANA special-purpose.
    Special,
}

impl Zone {
    /// EVE name.
    pub fn as_str(self) -> &'static str {
        match self {
            Zone::Internal => "internal",
            Zone::External => "external",
            Zone::Special => "special",
        }
    }
}

/// Result of a classification.
#[derive(Debug, Clone, Copy)]
pub struct ZoneMatch {
    /// Zone.
    pub zone: Zone,
    /// List that decided.
    pub source: &'static str,
}

/// Zone classifier.
#[derive(Debug, Clone, Default)]
pub struct Zones;

impl Zones {
    /// Classifies an address.
    pub fn classify(&self, ip: IpAddr) -> ZoneMatch {
        let internal = match ip {
            IpAddr::V4(v) => v.is_private(),
            IpAddr::V6(v) => (v.segments()[0] & 0xfe00) == 0xfc00,
        };
        if internal {
            ZoneMatch {
                zone: Zone::Internal,
                source: "home_nets",
            }
        } else if ip.is_loopback() || ip.is_multicast() {
            ZoneMatch {
                zone: Zone::Special,
                source: "iana-special",
            }
        } else {
            ZoneMatch {
                zone: Zone::External,
                source: "default-external",
            }
        }
    }
}
