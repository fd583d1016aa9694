//! Validated detection settings, built once from [`Config`]: thresholds in the units the
//! detector compares (bytes, nanoseconds), the allowlist and the table bounds.

use std::net::IpAddr;

use ipnet::IpNet;

use crate::app_proto::AppProto;
use crate::config::{AllowlistEntry, Config};
use crate::time::Ts;

use super::filename::FilenamePatterns;
use super::rules::Rule;

/// Everything the [`super::Detector`] runs with.
#[derive(Debug, Clone)]
pub struct DetectSettings {
    /// `outbound-ratio`: least outbound share.
    pub outbound_ratio: f64,
    /// `outbound-ratio`: least outbound bytes.
    pub outbound_ratio_min_bytes: u64,
    /// `transfer-size`: least outbound bytes of a file or session.
    pub transfer_size_bytes: u64,
    /// `outbound-volume`: host total that must be exceeded.
    pub volume_host_bytes: u64,
    /// `outbound-volume`: host → destination total that must be exceeded.
    pub volume_destination_bytes: u64,
    /// `outbound-volume`: window, seconds.
    pub volume_window_secs: u64,
    /// `repeated-connections`: sessions allowed per window.
    pub repeat_max: u32,
    /// `repeated-connections`: window, seconds.
    pub repeat_window_secs: u64,
    /// `suspicious-filename` patterns.
    pub filenames: FilenamePatterns,
    /// Suppression window per rule ([`Rule::index`] order), seconds; 0 = off.
    pub suppression_secs: [u64; 8],
    /// Suppression keys remembered.
    pub max_suppression_keys: usize,
    /// Allowlist entries, in file order.
    pub allowlist: Vec<Allow>,
    /// Sessions with detection state.
    pub max_sessions: usize,
    /// Hosts with an outbound-volume window.
    pub max_hosts: usize,
    /// Host → destination pairs with an outbound-volume window.
    pub max_destinations: usize,
    /// Host → address:port triples for repeated-connections.
    pub max_connections: usize,
}

impl DetectSettings {
    /// Runtime settings from a validated configuration.
    pub fn from_config(cfg: &Config) -> DetectSettings {
        let t = &cfg.thresholds;
        let default_window = u64::from(cfg.suppression.window_secs);
        let mut suppression_secs = [default_window; 8];
        for (name, secs) in &cfg.suppression.rules {
            if let Some(slot) =
                Rule::from_name(*name).and_then(|r| suppression_secs.get_mut(r.index()))
            {
                *slot = u64::from(*secs);
            }
        }
        DetectSettings {
            outbound_ratio: t.outbound_ratio.get(),
            outbound_ratio_min_bytes: t.outbound_ratio_min_bytes.get(),
            transfer_size_bytes: t.transfer_size_bytes.get(),
            volume_host_bytes: t.outbound_volume_bytes.get(),
            volume_destination_bytes: t.outbound_volume_destination_bytes.get(),
            volume_window_secs: u64::from(t.outbound_volume_window_secs.get()),
            repeat_max: t.repeated_connections_max.get(),
            repeat_window_secs: u64::from(t.repeated_connections_window_secs.get()),
            filenames: FilenamePatterns::from_config(t),
            suppression_secs,
            max_suppression_keys: cfg.suppression.max_keys.as_usize(),
            allowlist: cfg.allowlist.iter().map(Allow::from_entry).collect(),
            max_sessions: cfg.detect.max_tracked_sessions.as_usize(),
            max_hosts: cfg.detect.max_tracked_hosts.as_usize(),
            max_destinations: cfg.detect.max_tracked_destinations.as_usize(),
            max_connections: cfg.detect.max_tracked_connections.as_usize(),
        }
    }

    /// The suppression window of `rule` in nanoseconds (0 = off).
    pub(crate) fn suppression_ns(&self, rule: Rule) -> u64 {
        self.suppression_secs
            .get(rule.index())
            .copied()
            .unwrap_or(0)
            .saturating_mul(Ts::NANOS_PER_SEC)
    }

    /// The first allowlist entry matching `subject`, if any.
    pub(crate) fn allowed(&self, subject: &Subject) -> Option<&Allow> {
        self.allowlist.iter().find(|a| a.matches(subject))
    }
}

impl Default for DetectSettings {
    /// The settings of the shipped `sensor.toml`.
    fn default() -> Self {
        DetectSettings::from_config(&Config::default())
    }
}

/// What an alert is about, as the allowlist sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Subject {
    /// The rule.
    pub rule: Rule,
    /// The internal endpoint when the alert crosses the trust boundary, else the client.
    pub source: IpAddr,
    /// The external endpoint when the alert crosses the trust boundary, else the server.
    pub destination: IpAddr,
    /// Server port of the session's control/request flow.
    pub port: u16,
    /// Session protocol, or the protocol found (mismatch rules).
    pub protocol: AppProto,
}

/// One allowlist entry in runtime form; `None` fields match anything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Allow {
    /// Source network.
    pub source: Option<IpNet>,
    /// Network matching either endpoint.
    pub host: Option<IpNet>,
    /// Destination network.
    pub destination: Option<IpNet>,
    /// Server port.
    pub port: Option<u16>,
    /// Protocol.
    pub protocol: Option<AppProto>,
    /// Rule.
    pub rule: Option<Rule>,
    /// The entry's comment.
    pub comment: String,
}

impl Allow {
    fn from_entry(e: &AllowlistEntry) -> Allow {
        Allow {
            source: e.cidr.map(|c| c.net()),
            host: e.host.map(|c| c.net()),
            destination: e.destination.map(|c| c.net()),
            port: e.port.map(|p| p.get()),
            protocol: e.protocol.map(|p| p.0),
            rule: e.rule.and_then(Rule::from_name),
            comment: e.comment.clone(),
        }
    }

    /// True when every field given matches `s`.
    pub(crate) fn matches(&self, s: &Subject) -> bool {
        let net = |n: &Option<IpNet>, ip: IpAddr| n.is_none_or(|n| n.contains(&ip));
        net(&self.source, s.source)
            && net(&self.destination, s.destination)
            && self
                .host
                .is_none_or(|n| n.contains(&s.source) || n.contains(&s.destination))
            && self.port.is_none_or(|p| p == s.port)
            && self.protocol.is_none_or(|p| p == s.protocol)
            && self.rule.is_none_or(|r| r == s.rule)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subject() -> Subject {
        Subject {
            rule: Rule::TransferSize,
            source: "10.1.2.3".parse().unwrap(),
            destination: "198.51.100.7".parse().unwrap(),
            port: 21,
            protocol: AppProto::Ftp,
        }
    }

    #[test]
    fn every_given_field_must_match() {
        let cfg = Config::from_toml_str(
            "[[allowlist]]\ncidr = \"10.1.0.0/16\"\ndestination = \"198.51.100.0/24\"\n\
             protocol = \"ftp\"\nrule = \"transfer-size\"\ncomment = \"backup\"\n\
             [[allowlist]]\nhost = \"198.51.100.99\"\n\
             [[allowlist]]\nport = 2121\n",
            "t",
        )
        .unwrap();
        let s = DetectSettings::from_config(&cfg);
        assert_eq!(
            s.allowed(&subject()).map(|a| a.comment.as_str()),
            Some("backup")
        );
        let other_rule = Subject {
            rule: Rule::OutboundRatio,
            ..subject()
        };
        assert!(s.allowed(&other_rule).is_none());
        let other_proto = Subject {
            protocol: AppProto::Smb,
            ..subject()
        };
        assert!(s.allowed(&other_proto).is_none());
        // `host` matches either side.
        let via_host = Subject {
            rule: Rule::OutboundRatio,
            destination: "198.51.100.99".parse().unwrap(),
            ..subject()
        };
        assert!(s.allowed(&via_host).is_some());
        let swapped = Subject {
            source: "198.51.100.99".parse().unwrap(),
            destination: "10.9.9.9".parse().unwrap(),
            ..via_host
        };
        assert!(s.allowed(&swapped).is_some());
        let by_port = Subject {
            rule: Rule::PortMismatch,
            source: "10.200.0.1".parse().unwrap(),
            port: 2121,
            ..subject()
        };
        assert!(s.allowed(&by_port).is_some());
    }

    #[test]
    fn per_rule_suppression_windows() {
        let cfg = Config::from_toml_str(
            "[suppression]\nwindow_secs = 100\nrules = { suspicious-filename = 0, outbound-volume = 7 }\n",
            "t",
        )
        .unwrap();
        let s = DetectSettings::from_config(&cfg);
        assert_eq!(
            s.suppression_ns(Rule::TransferSize),
            100 * Ts::NANOS_PER_SEC
        );
        assert_eq!(s.suppression_ns(Rule::SuspiciousFilename), 0);
        assert_eq!(
            s.suppression_ns(Rule::OutboundVolume),
            7 * Ts::NANOS_PER_SEC
        );
    }
}
