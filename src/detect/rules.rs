//! The eight rules of DESIGN §6 and their fixed EVE identity: signature id, name, category
//! and severity. `docs/detections.md` documents the same table; the ids never change meaning.

use std::fmt;

use serde::ser::{Serialize, SerializeMap, Serializer};

use crate::config::RuleName;
use crate::output::eve::{AlertMetadata, AlertObj};

/// A detection rule; [`Rule::as_str`] is EVE `xfer.rule`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Rule {
    /// A file-transfer protocol on a port not listed for it.
    PortMismatch,
    /// A file-transfer port carrying something else.
    ExpectedProtocolAbsent,
    /// The two directions of a flow identified as different protocols.
    DirectionDisagreement,
    /// DataFlowDirectionThreshold: a session that mostly sends outbound.
    OutboundRatio,
    /// TransferSizeThreshold: a large file or session outbound.
    TransferSize,
    /// OutboundDataRateThreshold: a host's outbound volume in a sliding window.
    OutboundVolume,
    /// Many sessions from one host to one external service.
    RepeatedConnections,
    /// FilenamePattern: archive, double extension or random-looking outbound file names.
    SuspiciousFilename,
}

/// First signature id of the local range; rule `i` (in [`Rule::ALL`] order) is this + `i`.
pub const SIGNATURE_ID_BASE: u32 = 9_100_001;

impl Rule {
    /// Every rule, in the order of [`crate::config::RULE_NAMES`] and signature ids.
    pub const ALL: [Rule; 8] = [
        Rule::PortMismatch,
        Rule::ExpectedProtocolAbsent,
        Rule::DirectionDisagreement,
        Rule::OutboundRatio,
        Rule::TransferSize,
        Rule::OutboundVolume,
        Rule::RepeatedConnections,
        Rule::SuspiciousFilename,
    ];

    /// Position in [`Rule::ALL`].
    pub const fn index(self) -> usize {
        self as usize
    }

    /// The EVE `xfer.rule` name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Rule::PortMismatch => "port-mismatch",
            Rule::ExpectedProtocolAbsent => "expected-protocol-absent",
            Rule::DirectionDisagreement => "direction-disagreement",
            Rule::OutboundRatio => "outbound-ratio",
            Rule::TransferSize => "transfer-size",
            Rule::OutboundVolume => "outbound-volume",
            Rule::RepeatedConnections => "repeated-connections",
            Rule::SuspiciousFilename => "suspicious-filename",
        }
    }

    /// The rule a configured name refers to.
    pub fn from_name(name: RuleName) -> Option<Rule> {
        Rule::ALL
            .iter()
            .copied()
            .find(|r| r.as_str() == name.as_str())
    }

    /// `alert.signature_id`.
    pub const fn signature_id(self) -> u32 {
        SIGNATURE_ID_BASE + self as u32
    }

    /// `alert.signature`: fixed text, so it can be grouped on.
    pub const fn signature(self) -> &'static str {
        match self {
            Rule::PortMismatch => "XFERWATCH file-transfer protocol on an unexpected port",
            Rule::ExpectedProtocolAbsent => {
                "XFERWATCH file-transfer port carrying another protocol"
            }
            Rule::DirectionDisagreement => {
                "XFERWATCH flow directions identify as different protocols"
            }
            Rule::OutboundRatio => {
                "XFERWATCH file-transfer session mostly outbound to an external peer"
            }
            Rule::TransferSize => "XFERWATCH large outbound transfer to an external peer",
            Rule::OutboundVolume => {
                "XFERWATCH internal host outbound volume over file-transfer protocols"
            }
            Rule::RepeatedConnections => {
                "XFERWATCH repeated file-transfer sessions to one external service"
            }
            Rule::SuspiciousFilename => "XFERWATCH suspicious outbound file name",
        }
    }

    /// `alert.category`.
    pub const fn category(self) -> &'static str {
        match self {
            Rule::PortMismatch | Rule::ExpectedProtocolAbsent | Rule::DirectionDisagreement => {
                "Protocol anomaly"
            }
            Rule::RepeatedConnections => {
                "Potential command and control over file-transfer protocol"
            }
            Rule::OutboundRatio
            | Rule::TransferSize
            | Rule::OutboundVolume
            | Rule::SuspiciousFilename => "Potential exfiltration over file-transfer protocol",
        }
    }

    /// `alert.severity`: 1 high, 2 medium, 3 low.
    pub const fn severity(self) -> u8 {
        match self {
            Rule::OutboundVolume => 1,
            Rule::TransferSize | Rule::PortMismatch | Rule::RepeatedConnections => 2,
            Rule::OutboundRatio
            | Rule::SuspiciousFilename
            | Rule::ExpectedProtocolAbsent
            | Rule::DirectionDisagreement => 3,
        }
    }

    /// The EVE `alert` object of this rule.
    pub const fn alert_obj(self) -> AlertObj {
        AlertObj {
            action: "allowed",
            gid: 1,
            signature_id: self.signature_id(),
            rev: 1,
            signature: self.signature(),
            category: self.category(),
            severity: self.severity(),
            metadata: AlertMetadata {
                mitre_tactic_id: ["TA0011"],
                mitre_technique_id: ["T1071"],
                mitre_subtechnique_id: ["T1071.002"],
                detection_strategy: ["DET0416"],
                analytic: ["AN1173"],
                rule: [self.as_str()],
            },
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A counter per rule, serialised as `{"port-mismatch": n, …}` in rule order.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RuleCounts(pub [u64; 8]);

impl RuleCounts {
    /// Adds one for `rule`.
    pub fn bump(&mut self, rule: Rule) {
        if let Some(n) = self.0.get_mut(rule.index()) {
            *n += 1;
        }
    }

    /// The count for `rule`.
    pub fn get(&self, rule: Rule) -> u64 {
        self.0.get(rule.index()).copied().unwrap_or(0)
    }

    /// The sum over all rules.
    pub fn total(&self) -> u64 {
        self.0.iter().sum()
    }
}

impl Serialize for RuleCounts {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(Rule::ALL.len()))?;
        for rule in Rule::ALL {
            map.serialize_entry(rule.as_str(), &self.get(rule))?;
        }
        map.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::RULE_NAMES;

    #[test]
    fn names_ids_and_config_names_agree() {
        for (i, rule) in Rule::ALL.iter().enumerate() {
            assert_eq!(rule.index(), i);
            assert_eq!(RULE_NAMES.get(i), Some(&rule.as_str()));
            assert_eq!(rule.signature_id(), 9_100_001 + i as u32);
            let name = RuleName::new(rule.as_str()).unwrap();
            assert_eq!(Rule::from_name(name), Some(*rule));
            assert!((1..=3).contains(&rule.severity()));
        }
    }

    #[test]
    fn alert_object_carries_mitre_metadata() {
        let json = serde_json::to_string(&Rule::TransferSize.alert_obj()).unwrap();
        assert_eq!(
            json,
            r#"{"action":"allowed","gid":1,"signature_id":9100005,"rev":1,"signature":"XFERWATCH large outbound transfer to an external peer","category":"Potential exfiltration over file-transfer protocol","severity":2,"metadata":{"mitre_tactic_id":["TA0011"],"mitre_technique_id":["T1071"],"mitre_subtechnique_id":["T1071.002"],"detection_strategy":["DET0416"],"analytic":["AN1173"],"rule":["transfer-size"]}}"#
        );
    }

    #[test]
    fn rule_counts_serialise_by_name() {
        let mut c = RuleCounts::default();
        c.bump(Rule::SuspiciousFilename);
        c.bump(Rule::SuspiciousFilename);
        assert_eq!(c.total(), 2);
        let json = serde_json::to_string(&c).unwrap();
        assert!(json.ends_with(r#""repeated-connections":0,"suspicious-filename":2}"#));
    }
}
